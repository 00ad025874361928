"""Blending GAN: the encoder-decoder generator and the WGAN critic (``torch.nn``).

Architecture (SPEC.md, "Blending GAN"; Wu et al. 2019, Sec. 3.1), for the paper
configuration ``image_size=64, n_bottleneck=4000, base_width=64``::

    Generator
      encoder  conv 3->64 k4s2p1, LeakyReLU(0.2)                       64 -> 32
               conv 64->128 k4s2p1, BN, LeakyReLU(0.2)                  32 -> 16
               conv 128->256 k4s2p1, BN, LeakyReLU(0.2)                 16 -> 8
               conv 256->512 k4s2p1, BN, LeakyReLU(0.2)                  8 -> 4
               conv 512->4000 k4s1p0                                     4 -> 1
      bn       BN(4000), LeakyReLU(0.2)                                  1x1 bottleneck
      decoder  deconv 4000->512 k4s1p0, BN, ReLU                         1 -> 4
               deconv 512->256 / 256->128 / 128->64 k4s2p1, BN, ReLU     4 -> 32
               deconv 64->3 k4s2p1, tanh                                32 -> 64

    Critic     the encoder with a final conv 512->1 (no sigmoid); output averaged.

No layer has a bias. Convolution weights are drawn from N(0, 0.02), batch-norm
scales from N(1, 0.02) and batch-norm shifts are 0. Other image sizes (a power of two,
>= 8) follow the DCGAN rule: one stride-2 layer per halving down to 4x4, widths
``base_width * 2**i``. The paper generator has 71,058,880 parameters.

The module layout deliberately mirrors the authors' Chainer ``EncoderDecoder``
(``encoder`` / ``bn`` / ``decoder`` lists whose indices count the activation layers
too), so their released ``blending_gan.npz`` maps onto our ``state_dict`` key for key
(:func:`convert_chainer_npz`). Batch-norm uses Chainer's ``eps=2e-5`` for the same
reason.

Images cross this module's public boundary as ``float32 (H, W, 3)`` in ``[0, 1]``
(:func:`generate_color`); the networks themselves work on ``(N, 3, S, S)`` tensors in
``[-1, 1]``.
"""

from __future__ import annotations

import math
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, ModelError
from .io import atomic_path

__all__ = [
    "Generator",
    "Critic",
    "resolve_device",
    "load_generator",
    "generator_from_checkpoint",
    "save_generator",
    "generate_color",
    "convert_chainer_npz",
    "CHECKPOINT_FORMAT",
]

#: Value of the ``"format"`` entry of every checkpoint this package writes.
CHECKPOINT_FORMAT = "gpgan-checkpoint-v1"

_BN_EPS = 2e-5  # Chainer's BatchNormalization default (the reference implementation)
_SLOPE = 0.2  # LeakyReLU negative slope


def _check_arch(image_size: int, n_bottleneck: int, base_width: int) -> None:
    for name, value in (("image_size", image_size), ("n_bottleneck", n_bottleneck),
                        ("base_width", base_width)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if image_size < 8 or image_size & (image_size - 1):
        raise ConfigError(f"image_size must be a power of two >= 8, got {image_size}")


def _n_halvings(image_size: int) -> int:
    """Number of stride-2 convolutions from ``image_size`` down to 4x4."""
    return int(round(math.log2(image_size))) - 2


def _encoder(image_size: int, base_width: int, n_out: int) -> nn.Sequential:
    """DCGAN encoder: ``(N, 3, S, S) -> (N, n_out, 1, 1)`` (Chainer ``DCGAN_D`` order)."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, base_width, 4, 2, 1, bias=False),
        nn.LeakyReLU(_SLOPE),
    ]
    width = base_width
    for _ in range(_n_halvings(image_size) - 1):
        layers += [
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width, eps=_BN_EPS),
            nn.LeakyReLU(_SLOPE),
        ]
        width *= 2
    layers.append(nn.Conv2d(width, n_out, 4, 1, 0, bias=False))  # 4x4 -> 1x1
    return nn.Sequential(*layers)


def _decoder(image_size: int, base_width: int, n_in: int) -> nn.Sequential:
    """DCGAN decoder: ``(N, n_in, 1, 1) -> (N, 3, S, S)`` in [-1, 1] (Chainer ``DCGAN_G``)."""
    width = base_width * 2 ** (_n_halvings(image_size) - 1)
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(n_in, width, 4, 1, 0, bias=False),  # 1x1 -> 4x4
        nn.BatchNorm2d(width, eps=_BN_EPS),
        nn.ReLU(),
    ]
    for _ in range(_n_halvings(image_size) - 1):
        layers += [
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width // 2, eps=_BN_EPS),
            nn.ReLU(),
        ]
        width //= 2
    layers += [nn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def init_weights(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """DCGAN initialisation in place: conv N(0, 0.02), BN scale N(1, 0.02), BN shift 0.

    Parameters
    ----------
    module : torch.nn.Module
        Any module; its convolutions and batch norms are re-initialised.
    generator : torch.Generator, optional
        Source of randomness (default: the global torch RNG, seed it first).
    """
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.normal_(0.0, 0.02, generator=generator)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1.0, 0.02, generator=generator)
                m.bias.zero_()


class Generator(nn.Module):
    """Blending GAN generator: 64x64 copy-paste composite -> 64x64 blended image.

    Parameters
    ----------
    image_size : int
        Side ``S`` of the square input/output (power of two, >= 8). Paper: 64.
    n_bottleneck : int
        Channels of the 1x1 bottleneck. Paper: 4000.
    base_width : int
        Width of the first encoder / last decoder layer; the others double per
        stride-2 layer (paper: 64 -> 64-128-256-512).

    Notes
    -----
    ``forward`` maps ``(N, 3, S, S)`` float tensors in [-1, 1] to the same shape in
    [-1, 1] (tanh). ``arch`` holds the constructor arguments (stored in checkpoints).
    """

    def __init__(self, image_size: int = 64, n_bottleneck: int = 4000, base_width: int = 64):
        super().__init__()
        _check_arch(image_size, n_bottleneck, base_width)
        self.arch = {"image_size": int(image_size), "n_bottleneck": int(n_bottleneck),
                     "base_width": int(base_width)}
        self.encoder = _encoder(image_size, base_width, n_bottleneck)
        self.bn = nn.BatchNorm2d(n_bottleneck, eps=_BN_EPS)  # bottleneck BN (Chainer name)
        self.decoder = _decoder(image_size, base_width, n_bottleneck)
        init_weights(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` in [-1, 1] -> bottleneck code ``(N, n_bottleneck, 1, 1)``."""
        return nn.functional.leaky_relu(self.bn(self.encoder(x)), _SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.arch.items())


class Critic(nn.Module):
    """WGAN critic: the generator's encoder ending in one channel, averaged.

    Parameters
    ----------
    image_size, base_width : int
        As for :class:`Generator` (paper: 64, 64).

    Notes
    -----
    ``forward`` maps ``(N, 3, S, S)`` in [-1, 1] to ``(N,)`` unbounded scores (no
    sigmoid); the WGAN losses average them over the batch.
    """

    def __init__(self, image_size: int = 64, base_width: int = 64):
        super().__init__()
        _check_arch(image_size, 1, base_width)
        self.arch = {"image_size": int(image_size), "base_width": int(base_width)}
        self.encoder = _encoder(image_size, base_width, 1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).mean(dim=(1, 2, 3))

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.arch.items())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` / ``"cpu"`` / ``"cuda"`` (or ``"cuda:N"``) into a ``torch.device``.

    ``"auto"`` picks CUDA when available, else CPU. Asking for CUDA on a machine
    without it raises :class:`~gpgan.errors.ConfigError`.
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available")
        try:
            return torch.device(name)
        except RuntimeError:
            pass
    raise ConfigError(f"unknown device {device!r} (use auto, cpu or cuda)")


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------

def _torch_load(path: Path) -> dict:
    """``torch.load(weights_only=True)`` to CPU with one-line :class:`ModelError`s."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model checkpoint")
    expected = ("expected a .pt checkpoint written by gpgan train or the workflow, e.g. "
                "results/demo/model/best.pt")
    with open(path, "rb") as f:
        head = f.read(2)
    # torch.save writes a zip archive (b"PK"), older versions a pickle (b"\x80")
    if head[:2] != b"PK" and head[:1] != b"\x80":
        raise ModelError(f"{path}: not a torch checkpoint; {expected}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelError(f"{path}: not a readable torch checkpoint (it holds objects other "
                         f"than tensors and plain data, never unpickled); {expected}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError,
            IndexError) as exc:
        raise ModelError(f"{path}: not a readable torch checkpoint (damaged or truncated: "
                         f"{type(exc).__name__}); {expected}") from None
    if not isinstance(obj, dict):
        raise ModelError(f"{path}: checkpoint holds a {type(obj).__name__}, expected a dict")
    return obj


def infer_generator_arch(state_dict: dict) -> dict:
    """Recover ``Generator`` arguments from a bare generator ``state_dict``.

    Raises :class:`ModelError` when the keys do not look like a generator.
    """
    try:
        first = state_dict["encoder.0.weight"]
        convs = sorted(int(k.split(".")[1]) for k in state_dict
                       if k.startswith("encoder.") and k.endswith(".weight")
                       and state_dict[k].ndim == 4)
        last = state_dict[f"encoder.{convs[-1]}.weight"]
        base_width, n_bottleneck = int(first.shape[0]), int(last.shape[0])
        image_size = 2 ** (len(convs) + 1)  # (halvings + final conv) + 2 - 1
    except (KeyError, IndexError, AttributeError, ValueError) as exc:
        raise ModelError(f"state dict is not a Generator's (missing {exc})") from None
    return {"image_size": image_size, "n_bottleneck": n_bottleneck, "base_width": base_width}


def _generator_from_state(state: dict, arch: dict, origin: str) -> Generator:
    try:
        gen = Generator(**arch)
    except (TypeError, ConfigError) as exc:
        raise ModelError(f"{origin}: bad architecture {arch!r} ({exc})") from None
    try:
        gen.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise ModelError(f"{origin}: weights do not fit Generator({_fmt(arch)}): "
                         f"{detail[:300]}") from None
    return gen


def _fmt(arch: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in arch.items())


def generator_from_checkpoint(obj: dict, origin: str = "checkpoint") -> Generator:
    """Build a :class:`Generator` from an already loaded checkpoint dict.

    ``obj`` is a dict with a ``"generator"`` state dict (and ideally ``"arch"``), or a
    bare generator state dict. Raises :class:`ModelError` (naming ``origin``) when the
    weights are missing or belong to another architecture.
    """
    if "generator" in obj:
        state = obj["generator"]
        arch = obj.get("arch")
        if not isinstance(state, dict):
            raise ModelError(f"{origin}: 'generator' entry is not a state dict")
        if arch is None:
            arch = infer_generator_arch(state)
    elif "encoder.0.weight" in obj:
        state, arch = obj, infer_generator_arch(obj)
    else:
        keys = ", ".join(sorted(map(str, obj))[:6])
        raise ModelError(f"{origin}: no generator weights in checkpoint (keys: {keys})")
    if not isinstance(arch, dict):
        raise ModelError(f"{origin}: 'arch' entry is not a dict")
    return _generator_from_state(state, dict(arch), origin)


def load_generator(path, device: str | torch.device = "auto") -> Generator:
    """Load a generator from a checkpoint written by this package, ready for inference.

    Accepts a training checkpoint (:mod:`gpgan.train`), a generator-only file
    (:func:`save_generator`, ``best.pt``, ``final.pt``, :func:`convert_chainer_npz`) or a
    bare ``Generator.state_dict()`` (architecture inferred from the shapes).
    Loading uses ``torch.load(..., weights_only=True)``: no code is unpickled.

    Parameters
    ----------
    path : str or Path
        Checkpoint file.
    device : str or torch.device
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    Generator
        In eval mode (batch norm uses its running statistics), on ``device``.

    Raises
    ------
    ModelError
        Missing/unreadable file, or weights of another architecture (one line).
    """
    path = Path(path)
    gen = generator_from_checkpoint(_torch_load(path), str(path))
    return gen.to(resolve_device(device)).eval()


def save_generator(generator: Generator, path, *, extra: dict | None = None) -> Path:
    """Write a generator-only checkpoint atomically (loadable by :func:`load_generator`).

    The file holds ``{"format", "kind": "generator", "arch", "generator"}`` plus the
    plain-data entries of ``extra`` (e.g. the iteration and the training config).
    """
    state = {k: v.detach().cpu() for k, v in generator.state_dict().items()}
    ckpt = {"format": CHECKPOINT_FORMAT, "kind": "generator", "arch": dict(generator.arch),
            "generator": state}
    if extra:
        ckpt.update(extra)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


# --------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------

def generate_color(generator: Generator, composite: np.ndarray) -> np.ndarray:
    """Run the Blending GAN on one low-resolution copy-paste composite.

    This is GP-GAN's colour image ``x_l`` (SPEC.md, pyramid level 0).

    Parameters
    ----------
    generator : Generator
        Typically from :func:`load_generator`; it is switched to eval mode.
    composite : numpy.ndarray
        ``float32 (S, S, 3)`` in [0, 1], ``S = generator.arch["image_size"]`` (64).

    Returns
    -------
    numpy.ndarray
        ``float32 (S, S, 3)`` in [0, 1].
    """
    size = generator.arch["image_size"]
    x = np.asarray(composite, dtype=np.float32)
    if x.shape != (size, size, 3):
        raise ModelError(f"generate_color expects a ({size}, {size}, 3) image, "
                         f"got shape {x.shape}")
    param = next(generator.parameters())
    generator.eval()
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    t = t.to(device=param.device, dtype=param.dtype) * 2.0 - 1.0
    with torch.no_grad():
        y = generator(t)[0]
    y = ((y.float().cpu().numpy().transpose(1, 2, 0) + 1.0) / 2.0).clip(0.0, 1.0)
    return np.ascontiguousarray(y, dtype=np.float32)


# --------------------------------------------------------------------------------------
# The authors' released Chainer weights
# --------------------------------------------------------------------------------------

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
    gen = _generator_from_state(state, arch, str(npz_path))
    return save_generator(gen, out_path, extra={"source": f"chainer:{npz_path.name}"})
