"""The authors' released Chainer weights, used as they are.

Two files were released with the original (Chainer) GP-GAN:

``blending_gan.npz``
    the Blending GAN, an ``EncoderDecoder`` (keys ``encoder/<i>/W``, ``bn/gamma``,
    ``decoder/<i>/W``, ...): our :class:`gpgan.models.Generator`.
``unsupervised_blending_gan.npz``
    the unsupervised GP-GAN's ``DCGAN_G`` ChainList saved bare (keys ``<i>/W``,
    ``<i>/gamma``, ``<i>/beta``, ``<i>/avg_mean``, ``<i>/avg_var``, ``<i>/N``): our
    :class:`gpgan.models.LatentGenerator`, whose ``decoder`` list it fills.

Our modules count the activation layers exactly as Chainer's ``ChainList`` s do, so
keys map one to one (:func:`chainer_key_to_torch`) and the arrays are copied
unchanged (``docs/training.md``).

Every loader of the package (:func:`gpgan.models.load_checkpoint` and so
:func:`gpgan.models.load_generator`, ``gpgan.blend(..., model=)``, ``gpgan blend
--model``, ``gpgan serve --model``) recognises such a file (:func:`is_chainer_npz`),
converts it once to a ``.pt`` cached beside it (``blending_gan.npz`` ->
``blending_gan.gpgan.pt``) or, when that folder is not writable, in
:func:`cache_dir`, and loads the cache from then on (:func:`converted_checkpoint`,
:func:`resolve_model_file`). The cache records the source's size, modification time
and SHA-256; a changed source (other size or time and other hash) is converted again.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, ModelError, OutputError
from .io import atomic_path, cache_dir
from .models import (Generator, LatentGenerator, infer_generator_arch, load_checkpoint,
                     save_generator)

__all__ = ["chainer_key_to_torch", "convert_chainer_npz", "generator_from_chainer_npz",
           "is_chainer_npz", "converted_checkpoint", "resolve_model_file", "cache_dir",
           "cache_candidates", "file_sha256", "EXPECTED_LAYOUT", "CACHE_SUFFIX",
           "install_released_model"]

#: What a Chainer file must hold (the tail of every layout error).
EXPECTED_LAYOUT = ("expected the authors' blending_gan.npz (keys encoder/0/W ... "
                   "decoder/N/W) or unsupervised_blending_gan.npz (keys 0/W, 1/gamma, ...)")

#: Name of a converted file: ``blending_gan.npz`` -> ``blending_gan.gpgan.pt``.
CACHE_SUFFIX = ".gpgan.pt"

_CHAINER_SUFFIX = {"W": "weight", "gamma": "weight", "beta": "bias",
                   "avg_mean": "running_mean", "avg_var": "running_var"}
_TORCH_SUFFIX_BN = {"weight": "gamma", "bias": "beta", "running_mean": "avg_mean",
                    "running_var": "avg_var"}
_SNAPSHOT_PREFIXES = ("main", "G", "gen", "updater", "model")
_ENCODER_DECODER = ("encoder", "bn", "decoder")


def _key_parts(key: str) -> list[str]:
    parts = key.strip("/").split("/")
    if len(parts) > 1 and parts[0] in _SNAPSHOT_PREFIXES:  # trainer snapshot prefixes
        parts = parts[1:]
    return parts


def chainer_key_to_torch(key: str) -> str | None:
    """Map a key of the authors' npz files to our ``state_dict`` key.

    ``EncoderDecoder`` (``blending_gan.npz``): ``encoder/2/W -> encoder.2.weight``,
    ``decoder/1/gamma -> decoder.1.weight``, ``bn/avg_var -> bn.running_var``. A bare
    ``DCGAN_G`` ChainList (``unsupervised_blending_gan.npz``) is our
    :class:`~gpgan.models.LatentGenerator`'s ``decoder``: ``3/W -> decoder.3.weight``.
    Chainer's batch-norm counter ``N`` has no counterpart and maps to ``None``; an
    unknown parameter name raises :class:`ModelError`.
    """
    parts = _key_parts(key)
    if parts[-1] == "N":
        return None
    if parts[-1] not in _CHAINER_SUFFIX or len(parts) < 2:
        raise ModelError(f"unexpected key {key!r} in Chainer npz; {EXPECTED_LAYOUT}")
    if parts[0].isdigit():
        parts = ["decoder"] + parts
    return ".".join(parts[:-1] + [_CHAINER_SUFFIX[parts[-1]]])


def is_chainer_npz(path) -> bool:
    """Whether ``path`` is a numpy ``.npz`` (what Chainer's ``save_npz`` writes) rather
    than a torch checkpoint: named ``*.npz``, or a zip archive whose members are all
    ``.npy`` arrays (a torch checkpoint is a zip too, of ``data.pkl`` and storages)."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix.lower() == ".npz":
        return True
    try:
        with open(path, "rb") as f:
            if f.read(2) != b"PK":
                return False
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return bool(names) and all(n.endswith(".npy") for n in names)


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise ValueError("a single array")
            return {k: np.asarray(npz[k]) for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: not a readable npz ({exc.__class__.__name__}); "
                         f"{EXPECTED_LAYOUT}") from None


def _layout(keys, origin: str) -> str:
    """``"encoder-decoder"`` or ``"latent"`` (a bare ``DCGAN_G``), from the key names."""
    heads = {_key_parts(k)[0] for k in keys}
    if heads and all(h.isdigit() for h in heads):
        return "latent"
    if heads and heads <= set(_ENCODER_DECODER) and "encoder" in heads:
        return "encoder-decoder"
    odd = sorted(k for k in keys if _key_parts(k)[0] not in _ENCODER_DECODER)[:3]
    shown = f"keys {', '.join(odd or sorted(keys)[:3])}" if keys else "no arrays"
    raise ModelError(f"{origin}: not a GP-GAN generator's npz ({shown}); {EXPECTED_LAYOUT}")


def _chainer_name(model: nn.Module, name: str, layout: str) -> str:
    """Our ``state_dict`` key back in the npz's spelling (for messages)."""
    module_name, param = name.rsplit(".", 1)
    bn = isinstance(model.get_submodule(module_name), nn.BatchNorm2d)
    parts = module_name.split(".")[1 if layout == "latent" else 0:]
    return "/".join(parts + [_TORCH_SUFFIX_BN[param] if bn else "W"])


def _check_fit(model: nn.Module, state: dict, keys: dict, layout: str, origin: str) -> None:
    """One-line :class:`ModelError` naming missing, extra or misshapen arrays (``keys``:
    our name -> the npz's key)."""
    want = {k: v for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}
    missing = [_chainer_name(model, k, layout) for k in want if k not in state]
    extra = [keys[k] for k in state if k not in want]
    shapes = [f"{keys[k]} {tuple(state[k].shape)} instead of {tuple(want[k].shape)}"
              for k in want if k in state and tuple(state[k].shape) != tuple(want[k].shape)]
    problems = [f"{label} {', '.join(names[:3])}"
                + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
                for label, names in (("missing", missing), ("unexpected", extra),
                                     ("shape of", shapes)) if names]
    if not problems:
        return
    first = state.get("decoder.0.weight")
    if layout == "latent" and getattr(first, "ndim", 0) == 4 and int(first.shape[1]) == 3:
        raise ModelError(f"{origin}: a critic (DCGAN_D: its first layer is a convolution of "
                         f"the 3 image channels), not a generator; {EXPECTED_LAYOUT}")
    arch = ", ".join(f"{k}={v}" for k, v in model.arch.items() if k != "kind")
    raise ModelError(f"{origin}: weights do not fit {type(model).__name__}({arch}): "
                     f"{'; '.join(problems)}; {EXPECTED_LAYOUT}")


def generator_from_chainer_npz(npz_path) -> Generator | LatentGenerator:
    """Read the authors' ``blending_gan.npz`` (a :class:`~gpgan.models.Generator`) or
    ``unsupervised_blending_gan.npz`` (a :class:`~gpgan.models.LatentGenerator`); the
    architecture comes from the array shapes. Any other content (a critic, other
    keys, missing arrays, other shapes) raises a one-line :class:`ModelError` naming
    what was expected."""
    origin = str(npz_path)
    arrays = _read_npz(Path(npz_path))
    layout = _layout(arrays, origin)
    state, keys = {}, {}
    for key, arr in arrays.items():
        try:
            name = chainer_key_to_torch(key)
        except ModelError as exc:
            raise ModelError(f"{origin}: {exc}") from None
        if name is None:
            continue
        if not np.issubdtype(arr.dtype, np.number):
            raise ModelError(f"{origin}: array {key!r} holds {arr.dtype}, not numbers; "
                             f"{EXPECTED_LAYOUT}")
        state[name], keys[name] = torch.from_numpy(np.ascontiguousarray(arr, np.float32)), key
    if layout == "encoder-decoder" and "encoder.0.weight" not in state:
        raise ModelError(f"{origin}: missing encoder/0/W; {EXPECTED_LAYOUT}")
    try:
        arch = infer_generator_arch(state)
        kind = arch.pop("kind", None)
        model = (LatentGenerator if kind == "latent" else Generator)(**arch)
    except (ModelError, ConfigError, KeyError, IndexError, AttributeError, ValueError,
            TypeError) as exc:
        detail = str(exc).split("\n")[0][:120]
        raise ModelError(f"{origin}: the arrays do not make a generator ({detail}); "
                         f"{EXPECTED_LAYOUT}") from None
    _check_fit(model, state, keys, layout, origin)
    for name in list(state):  # batch-norm counters Chainer does not store
        if name.endswith(".running_mean"):
            state[name[:-len("running_mean")] + "num_batches_tracked"] = torch.tensor(0)
    model.load_state_dict(state, strict=True)
    return model.eval()


def file_sha256(path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _source_record(path: Path, st: os.stat_result, sha256: str) -> dict:
    """What a conversion records of its source (``"chainer_source"``)."""
    return {"name": path.name, "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns),
            "sha256": sha256}


def convert_chainer_npz(npz_path, out_path) -> Path:
    """Convert one of the authors' released npz files to a generator checkpoint.

    Parameters
    ----------
    npz_path : str or Path
        ``chainer.serializers.save_npz`` output of their ``EncoderDecoder``
        (``blending_gan.npz``: keys such as ``encoder/0/W``, ``bn/gamma``,
        ``decoder/12/W``) or of the bare ``DCGAN_G``
        (``unsupervised_blending_gan.npz``: ``0/W``, ``1/gamma``, ...). Chainer and
        PyTorch store convolution ``(out, in, kh, kw)`` and transposed-convolution
        ``(in, out, kh, kw)`` weights alike, so arrays are copied unchanged.
    out_path : str or Path
        Where to write the checkpoint (atomically; see
        :func:`gpgan.models.save_generator`). It records the source's name, size,
        modification time and SHA-256 (entry ``"chainer_source"``).

    Returns
    -------
    Path
        ``out_path``. The architecture is inferred from the array shapes.

    Raises
    ------
    ModelError
        Unreadable file, or not one of the two layouts (one line naming them).
    """
    npz_path = Path(npz_path)
    gen = generator_from_chainer_npz(npz_path)
    record = _source_record(npz_path, npz_path.stat(), file_sha256(npz_path))
    return save_generator(gen, out_path, extra={"source": f"chainer:{npz_path.name}",
                                                "chainer_source": record})


def cache_candidates(npz_path) -> list[Path]:
    """The converted file's two possible places, in the order tried: beside the npz
    (``<stem>.gpgan.pt``), then in :func:`cache_dir` (``<stem>-<hash of the npz's
    absolute path>.gpgan.pt``, so same-named files in different folders do not
    collide)."""
    npz_path = Path(npz_path)
    tag = hashlib.sha256(str(npz_path.resolve()).encode()).hexdigest()[:12]
    return [npz_path.with_name(npz_path.stem + CACHE_SUFFIX),
            cache_dir() / f"{npz_path.stem}-{tag}{CACHE_SUFFIX}"]


class _Source:
    """The npz's stat, and its SHA-256 computed at most once, on demand."""

    def __init__(self, path: Path):
        self.path, self.stat, self._sha = path, path.stat(), None

    @property
    def sha256(self) -> str:
        if self._sha is None:
            self._sha = file_sha256(self.path)
        return self._sha


def _cached(pt: Path, src: _Source) -> dict | None:
    """The checkpoint at ``pt`` when it is a conversion of ``src`` as it is now."""
    if not pt.is_file():
        return None
    try:
        ckpt = load_checkpoint(pt)
    except ModelError:  # damaged: convert again
        return None
    rec = ckpt.get("chainer_source")
    if not isinstance(rec, dict):
        return None
    if rec.get("size") == src.stat.st_size and rec.get("mtime_ns") == src.stat.st_mtime_ns:
        return ckpt
    if rec.get("sha256") != src.sha256:
        return None
    # same content, new time (copied, touched): record it, so the next load needs no hash
    ckpt["chainer_source"] = _source_record(src.path, src.stat, src.sha256)
    if os.access(pt.parent, os.W_OK):
        try:
            with atomic_path(pt) as tmp:
                torch.save(ckpt, tmp)
        except OutputError:
            pass
    return ckpt


def converted_checkpoint(npz_path) -> tuple[Path, dict]:
    """The checkpoint converted from the authors' npz, converting it when needed.

    A valid conversion in one of :func:`cache_candidates` is loaded as it is (silently).
    Otherwise the npz is converted (one line on stderr: ``converted X -> Y (once;
    cached)``) and written beside it when that folder is writable, else in
    :func:`cache_dir`. Returns ``(path of the .pt, its checkpoint dict)``.
    """
    npz_path = Path(npz_path)
    if not npz_path.is_file():
        raise ModelError(f"{npz_path}: no such model checkpoint")
    src = _Source(npz_path)
    places = cache_candidates(npz_path)
    for pt in places:
        ckpt = _cached(pt, src)
        if ckpt is not None:
            return pt, ckpt
    t0 = time.perf_counter()
    gen = generator_from_chainer_npz(npz_path)
    extra = {"source": f"chainer:{npz_path.name}",
             "chainer_source": _source_record(npz_path, src.stat, src.sha256)}
    if not os.access(npz_path.parent, os.W_OK):
        places = places[1:]
    for i, pt in enumerate(places):
        try:
            save_generator(gen, pt, extra=extra)
            break
        except OutputError:
            if i == len(places) - 1:
                raise
    print(f"converted {npz_path} -> {pt} (once; cached; {time.perf_counter() - t0:.1f} s)",
          file=sys.stderr, flush=True)
    return pt, load_checkpoint(pt)


def resolve_model_file(path) -> Path:
    """The file to load for a model path: the cached conversion of the authors' npz
    (:func:`converted_checkpoint`, converting it once), or ``path`` itself for
    anything else (a ``.pt``; a missing file is left to the loader's message)."""
    path = Path(path)
    return converted_checkpoint(path)[0] if is_chainer_npz(path) else path


#: The generator kind each GAN method runs (``arch["kind"]``; absent = Blending GAN).
_METHOD_KINDS = {"gp-gan": None, "gp-gan-unsupervised": "latent"}


def install_released_model(source, dest, method: str) -> Path:
    """Write a released generator (the authors' ``.npz``, converted, or a gpgan
    ``.pt``) as ``dest``, the generator-only checkpoint ``method`` runs.

    The workflow's ``released_*`` rules call this instead of training when the config's
    ``models`` section names a file. Raises :class:`ModelError` (one line) for an
    unreadable file or a generator of the other kind (a ``G(z)`` for ``gp-gan`` or a
    Blending GAN for ``gp-gan-unsupervised``).
    """
    from .models import generator_from_checkpoint, load_checkpoint

    if method not in _METHOD_KINDS:
        raise ConfigError(f"released models are for {', '.join(_METHOD_KINDS)}, "
                          f"not {method!r}")
    source = Path(source)
    gen = generator_from_checkpoint(load_checkpoint(source), str(source))
    if gen.arch.get("kind") != _METHOD_KINDS[method]:
        want = "an unsupervised G(z)" if _METHOD_KINDS[method] else "a Blending GAN"
        raise ModelError(f"{source}: models.{method} needs {want} generator, this file "
                         f"holds the other kind")
    return save_generator(gen, dest, extra={"source": f"released:{source.name}"})
