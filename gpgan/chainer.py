"""The authors' released Chainer weights (``blending_gan.npz``) as a generator checkpoint.

Our :class:`gpgan.models.Generator` mirrors the authors' Chainer ``EncoderDecoder``
(``encoder`` / ``bn`` / ``decoder`` lists whose indices count the activation layers
too), so their keys map onto our ``state_dict`` one to one (``docs/training.md``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from .errors import ModelError
from .models import generator_from_state, infer_generator_arch, save_generator

__all__ = ["chainer_key_to_torch", "convert_chainer_npz"]


_CHAINER_SUFFIX = {"W": "weight", "gamma": "weight", "beta": "bias",
                   "avg_mean": "running_mean", "avg_var": "running_var"}


def chainer_key_to_torch(key: str) -> str | None:
    """Map a key of the authors' ``EncoderDecoder`` npz to our ``state_dict`` key.

    The Chainer model is ``encoder`` (``DCGAN_D`` ChainList), ``bn``
    (``BatchNormalization``) and ``decoder`` (``DCGAN_G`` ChainList); list indices count
    the activation links as ours count the activation modules, so
    ``encoder/2/W -> encoder.2.weight``, ``decoder/1/gamma -> decoder.1.weight``,
    ``bn/avg_var -> bn.running_var``. Chainer's batch-norm counter ``N`` has no
    counterpart and maps to ``None``.
    """
    parts = key.strip("/").split("/")
    if parts and parts[0] in ("main", "G", "gen", "updater", "model"):  # snapshot prefixes
        parts = parts[1:]
    if parts[-1] == "N":
        return None
    if parts[-1] not in _CHAINER_SUFFIX:
        raise ModelError(f"unexpected key {key!r} in Chainer npz")
    return ".".join(parts[:-1] + [_CHAINER_SUFFIX[parts[-1]]])


def convert_chainer_npz(npz_path, out_path) -> Path:
    """Convert the authors' released ``blending_gan.npz`` to a generator checkpoint.

    Parameters
    ----------
    npz_path : str or Path
        ``chainer.serializers.save_npz`` output of their ``EncoderDecoder`` (keys such as
        ``encoder/0/W``, ``bn/gamma``, ``decoder/12/W``). Chainer and PyTorch store
        convolution ``(out, in, kh, kw)`` and transposed-convolution
        ``(in, out, kh, kw)`` weights alike, so arrays are copied unchanged.
    out_path : str or Path
        Where to write the checkpoint (atomically; see :func:`save_generator`).

    Returns
    -------
    Path
        ``out_path``. The architecture is inferred from the array shapes.

    Raises
    ------
    ModelError
        Unreadable file, unknown keys, or shapes that do not fit the architecture.
    """
    npz_path = Path(npz_path)
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{npz_path}: not a readable npz ({exc.__class__.__name__})") from None
    state = {}
    for key, arr in arrays.items():
        name = chainer_key_to_torch(key)
        if name is not None:
            state[name] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    for name in list(state):  # batch-norm counters Chainer does not store
        if name.endswith(".running_mean"):
            state[name[:-len("running_mean")] + "num_batches_tracked"] = torch.tensor(0)
    arch = infer_generator_arch(state)
    gen = generator_from_state(state, arch, str(npz_path))
    return save_generator(gen, out_path, extra={"source": f"chainer:{npz_path.name}"})
