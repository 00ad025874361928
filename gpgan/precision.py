"""Training precision: float32, or bfloat16 / float16 autocast, chosen where it runs.

``amp: auto`` (the default of every configuration) turns bfloat16 autocast on only
where the hardware computes in bfloat16 natively, and leaves float32 otherwise:

- **CPU**: native when the CPU has AVX-512 BF16 or AMX (``torch.cpu``'s capability
  checks) *and* PyTorch's kernels may use them: ``ATEN_CPU_CAPABILITY`` (what
  ``torch.backends.cpu.get_cpu_capability()`` reports) is AVX-512, and
  ``ONEDNN_MAX_CPU_ISA`` / ``DNNL_MAX_CPU_ISA``, if set, allows at least
  ``AVX512_CORE_BF16``. Elsewhere oneDNN emulates bfloat16 convolutions.
- **CUDA**: native on compute capability 8.0 and newer (Ampere, Hopper, ...);
  ``torch.cuda.is_bf16_supported()`` also says yes on older GPUs, where bfloat16 is
  emulated.

Why a capability check and not a timed probe (measured with
``benchmarks/bench_train.py``, ``benchmarks/RESULTS.md``): on an AMD EPYC with
AVX-512 BF16 a demo generator step takes 0.20 s in bfloat16 against 0.27 s in
float32; restricted to AVX2 (the two variables above) 8-9 s against 0.31 s, as on an
AVX2-only EPYC (8.87 s against 0.367 s). The check gives the faster answer in both
cases at no cost, while a probe would spend seconds (one emulated step is 9 s) and,
on a loaded machine, could answer differently from one run to the next: the
precision, and with it every trained weight, would then depend on the load.

``amp: true`` forces autocast (``amp_dtype``, bfloat16 by default; float16 on CUDA
only, with gradient scalers) and warns once where bfloat16 is emulated; ``amp:
false`` is float32. The choice and its reason are logged by the trainer and stored
in every training checkpoint (:meth:`Precision.as_dict`), so a resumed run keeps
the precision it started with (:func:`choose_precision`, ``recorded``).
"""

from __future__ import annotations

import os
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["AMP_CHOICES", "Precision", "native_bf16", "choose_precision"]

#: Values of the ``amp`` training option.
AMP_CHOICES = (True, False, "auto")

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


def choose_precision(amp, amp_dtype: str, device, recorded: dict | None = None) -> Precision:
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
    if native:
        return Precision("bfloat16", f"amp: auto; {why}")
    return Precision("float32", f"amp: auto; {why}")
