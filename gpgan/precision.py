"""Training precision: float32, or bfloat16 / float16 autocast, chosen where it runs.

``amp: auto`` (the default of every configuration) decides in two steps:

1. **Can the hardware compute bfloat16 natively?** A CPU with AVX-512 BF16 or AMX
   (``torch.cpu``'s capability checks) whose PyTorch kernels may use them:
   ``ATEN_CPU_CAPABILITY`` (what ``torch.backends.cpu.get_cpu_capability()`` reports)
   is AVX-512, and ``ONEDNN_MAX_CPU_ISA`` / ``DNNL_MAX_CPU_ISA``, if set, allows at least
   ``AVX512_CORE_BF16``; or a CUDA GPU of compute capability 8.0 or newer
   (``torch.cuda.is_bf16_supported()`` also says yes on older GPUs, which emulate it).
   If not: float32, at no cost. Emulated bfloat16 is never tried: on an AVX2-only
   CPU one demo training iteration takes 24-27x as long as in float32.
2. **Is this model faster in bfloat16 here?** Where it is native, the trainer times a
   few iterations of its own networks both ways (``probe``, :func:`choose_precision`)
   and takes bfloat16 only when its iteration takes at most :data:`PROBE_MARGIN`
   (0.95) of float32's. Native bfloat16 does not speed up every model: on two cores of
   an AMD EPYC with AVX-512 BF16 the paper's Blending GAN iterates 1.6-1.8x faster in
   it, the demo's ``G(z)`` 1.4-1.5x, but the demo's small Blending GAN is as fast or
   slower (0.169 against 0.158 s on two threads; ``benchmarks/RESULTS.md``). The timings are kept in
   :func:`gpgan.io.cache_dir` (``precision.json``), keyed by the machine (CPU model
   and flags or GPU, kernel restrictions, torch version, threads) and the model, so
   the same configuration on the same machine always gets the same precision (and
   the same trained weights), whatever the load when it was first timed.

``amp: true`` forces autocast (``amp_dtype``, bfloat16 by default; float16 on CUDA
only, with gradient scalers) and warns once where bfloat16 is emulated; ``amp:
false`` is float32. The choice and its reason are logged by the trainer and stored
in every training checkpoint (:meth:`Precision.as_dict`), so a resumed run keeps
the precision it started with (``recorded``).
"""

from __future__ import annotations

import json
import os
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

from .errors import ConfigError
from .io import atomic_path, cache_dir

__all__ = ["AMP_CHOICES", "PROBE_MARGIN", "Precision", "native_bf16", "machine_key",
           "choose_precision"]

#: Values of the ``amp`` training option.
AMP_CHOICES = (True, False, "auto")

#: ``amp: auto`` takes bfloat16 only when the probe finds its iteration at most this
#: fraction of float32's: a near-tie (within the probe's run-to-run spread of a few
#: per cent) goes to float32, the more precise of the two.
PROBE_MARGIN = 0.95

#: oneDNN ISA limits (``ONEDNN_MAX_CPU_ISA``) under which bfloat16 is computed
#: natively (oneDNN's ``cpu_isa_t`` names, case-insensitive).
_ONEDNN_BF16_ISAS = frozenset({
    "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX",
    "AVX10_1_512_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16", "AVX10_2_512",
    "AVX10_2_512_AMX_2", "ALL", "DEFAULT"})


@dataclass(frozen=True)
class Precision:
    """How a training run computes: ``dtype`` ``"float32"`` (no autocast),
    ``"bfloat16"`` or ``"float16"`` (autocast), and why (one line)."""

    dtype: str
    reason: str

    @property
    def autocast(self) -> bool:
        return self.dtype != "float32"

    @property
    def scaled(self) -> bool:
        """float16 autocast needs gradient scalers."""
        return self.dtype == "float16"

    def context(self, device_type: str):
        """A factory of the autocast context (a no-op context for float32)."""
        if not self.autocast:
            return nullcontext
        import torch

        dtype = getattr(torch, self.dtype)
        return lambda: torch.autocast(device_type, dtype=dtype)

    def as_dict(self) -> dict:
        return {"dtype": self.dtype, "reason": self.reason}

    def describe(self) -> str:
        what = "float32" if not self.autocast else f"{self.dtype} autocast"
        return f"{what} ({self.reason})"


def _cpu_bf16() -> tuple[bool, str]:
    import torch

    has = [name for name, check in (("AVX-512 BF16", "_is_avx512_bf16_supported"),
                                    ("AMX", "_is_amx_tile_supported"))
           if getattr(torch.cpu, check, lambda: False)()]
    if not has:
        return False, "this CPU has no AVX-512 BF16 or AMX: bfloat16 would be emulated"
    capability = torch.backends.cpu.get_cpu_capability()
    if not capability.startswith("AVX512"):
        return False, (f"PyTorch's CPU kernels are limited to {capability} "
                       "(ATEN_CPU_CAPABILITY): bfloat16 would be emulated")
    for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        isa = os.environ.get(var, "").strip().upper()
        if isa and isa not in _ONEDNN_BF16_ISAS:
            return False, f"{var}={isa} keeps oneDNN from bfloat16: it would be emulated"
    return True, f"this CPU has {' and '.join(has)}"


def _cuda_bf16(device) -> tuple[bool, str]:
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    name = torch.cuda.get_device_name(device)
    if major >= 8:
        return True, f"{name} (compute capability {major}.{minor}) computes in bfloat16"
    return False, (f"{name} (compute capability {major}.{minor} < 8.0) would emulate "
                   "bfloat16")


def native_bf16(device) -> tuple[bool, str]:
    """Whether ``device`` (a ``torch.device``) computes in bfloat16 natively, and why."""
    if device.type == "cuda":
        return _cuda_bf16(device)
    if device.type == "cpu":
        return _cpu_bf16()
    return False, f"no bfloat16 check for device type {device.type!r}"


def machine_key(device) -> str:
    """What the speed of a precision depends on besides the model: the CPU (model name
    and its SIMD flags) or GPU, the kernel restrictions in force, torch and its
    threads."""
    import torch

    if device.type == "cuda":
        hw = f"{torch.cuda.get_device_name(device)} {torch.cuda.get_device_capability(device)}"
    else:
        model, flags = "unknown", ""
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.strip() == "model name" and model == "unknown":
                        model = value.strip()
                    elif key.strip() == "flags":
                        flags = " ".join(sorted(v for v in value.split()
                                                if v.startswith(("avx", "amx", "fma"))))
                        break
        except OSError:
            pass
        hw = f"{model} [{flags}] {torch.backends.cpu.get_cpu_capability()}"
    env = ",".join(f"{v}={os.environ[v]}" for v in ("ATEN_CPU_CAPABILITY",
                                                    "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
                   if v in os.environ)
    return f"{hw} | {env} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def _probe_file():
    return cache_dir() / "precision.json"


def _cached_probe(key: str) -> dict | None:
    try:
        found = json.loads(_probe_file().read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    ok = isinstance(found, dict) and all(isinstance(found.get(d), (int, float))
                                         for d in ("float32", "bfloat16"))
    return found if ok else None


def _store_probe(key: str, seconds: dict) -> None:
    """Add one probe to the cache file (atomically; silently skipped when the cache
    folder cannot be written: the choice then stands for this run only)."""
    path = _probe_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            table = json.loads(path.read_text())
            table = table if isinstance(table, dict) else {}
        except (OSError, ValueError):
            table = {}
        table[key] = seconds
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass


def _probed(device, why: str, probe, probe_key: str) -> Precision:
    key = f"{machine_key(device)} | {probe_key}"
    seconds, source = _cached_probe(key), "timed earlier on this machine"
    if seconds is None:
        seconds = {"float32": float(probe(Precision("float32", "probe"))),
                   "bfloat16": float(probe(Precision("bfloat16", "probe")))}
        _store_probe(key, seconds)
        source = "timed now"
    f32, bf16 = seconds["float32"], seconds["bfloat16"]
    dtype = "bfloat16" if bf16 <= PROBE_MARGIN * f32 else "float32"
    return Precision(dtype, f"amp: auto; {why}; this model's iteration: float32 "
                            f"{f32:.3g} s, bfloat16 {bf16:.3g} s ({source})")


def choose_precision(amp, amp_dtype: str, device, recorded: dict | None = None, *,
                     probe=None, probe_key: str = "") -> Precision:
    """The precision of a training run on ``device``.

    Parameters
    ----------
    amp : {"auto", True, False}
        The ``amp`` option (module docstring).
    amp_dtype : {"bfloat16", "float16"}
        Autocast type of ``amp: true``.
    device : torch.device
    recorded : dict, optional
        The precision stored in the run's newest checkpoint (:meth:`Precision.as_dict`):
        with ``amp: auto`` a resumed run keeps it.
    probe : callable, optional
        ``probe(precision) -> seconds`` of one training iteration of the run's model in
        that precision; called (twice) only with ``amp: auto`` where bfloat16 is
        native and no earlier timing of ``probe_key`` on this machine is cached.
        Without it, native bfloat16 is taken as it is.
    probe_key : str
        What identifies the model being timed (architecture, batch, schedule).

    Raises
    ------
    ConfigError
        float16 autocast on the CPU, or an unknown ``amp`` / ``amp_dtype``.
    """
    if amp not in AMP_CHOICES or isinstance(amp, int) and not isinstance(amp, bool):
        raise ConfigError(f"amp={amp!r}: use auto, true or false")
    if amp_dtype not in ("bfloat16", "float16"):
        raise ConfigError(f"amp_dtype={amp_dtype!r}: use bfloat16 or float16")
    if amp == "auto" and recorded and recorded.get("dtype") in ("float32", "bfloat16",
                                                                "float16"):
        chosen = Precision(recorded["dtype"], f"recorded when the run started: "
                                              f"{recorded.get('reason', 'no reason kept')}")
        if chosen.dtype == "float16" and device.type != "cuda":
            raise ConfigError("this run started in float16 autocast (CUDA only); resume it "
                              "on CUDA or set amp: false")
        if chosen.dtype == "bfloat16":
            native, why = native_bf16(device)
            if not native:
                warnings.warn(f"resuming in bfloat16 autocast as the run started, but {why} "
                              "and slow here (amp: false trains on in float32)", stacklevel=2)
        return chosen
    if amp is False:
        return Precision("float32", "amp: false")
    if amp is True:
        if device.type == "cpu" and amp_dtype != "bfloat16":
            raise ConfigError("amp on the CPU needs amp_dtype: bfloat16")
        if amp_dtype == "bfloat16":
            native, why = native_bf16(device)
            if not native:
                warnings.warn(f"amp: true: {why} and slow here (amp: auto picks float32)",
                              stacklevel=2)
            return Precision("bfloat16", f"amp: true; {why}")
        return Precision("float16", "amp: true, amp_dtype: float16")
    native, why = native_bf16(device)
    if not native:
        return Precision("float32", f"amp: auto; {why}")
    if probe is None:
        return Precision("bfloat16", f"amp: auto; {why}")
    return _probed(device, why, probe, probe_key)
