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

Three options beyond the paper (all off in the paper configuration; the demo's
measured choice is on, ``docs/training.md``):

- ``mask_input``: the object mask enters as a fourth input channel (in [-1, 1]), so
  ``G`` knows which pixels were pasted instead of having to find them.
- ``skip``: U-Net skip connections: before every decoder deconvolution but the first,
  the encoder activation of the same resolution is concatenated (the deconvolution's
  input width doubles).
- ``output="affine"``: instead of an image, the decoder stops at ``affine_grid`` x
  ``affine_grid`` and a 3x3 convolution (with bias, initialised to zero) predicts a
  per-pixel affine colour transform ``y = x + A(p) x + b(p)`` (9 + 3 channels), which
  is bilinearly up-sampled to ``S x S`` and applied to the input composite inside the
  mask (needs ``mask_input``): ``G(x) = x + m (y - x)``, clipped to [-1, 1]. ``G`` then
  only changes colours inside the object and starts as the identity (copy-paste).

The module layout mirrors the authors' Chainer ``EncoderDecoder`` (``encoder`` /
``bn`` / ``decoder`` lists whose indices count the activation layers too), so their
released ``blending_gan.npz`` and ``unsupervised_blending_gan.npz`` map onto our
``state_dict`` key for key and load as they are (:mod:`gpgan.chainer`); batch norm
uses Chainer's ``eps=2e-5`` for the same reason.

Images cross this module's public boundary as ``float32 (H, W, 3)`` in ``[0, 1]``
(:func:`generate_color`); the networks themselves work on ``(N, 3, S, S)`` tensors in
``[-1, 1]``.
"""

from __future__ import annotations

import math
import os
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
    "LatentGenerator",
    "resolve_device",
    "load_generator",
    "load_checkpoint",
    "list_checkpoints",
    "generator_from_checkpoint",
    "generator_from_state",
    "save_generator",
    "generate_color",
    "CHECKPOINT_FORMAT",
]

#: Value of the ``"format"`` entry of every checkpoint this package writes.
CHECKPOINT_FORMAT = "gpgan-checkpoint-v1"

_BN_EPS = 2e-5  # Chainer's BatchNormalization default (the reference implementation)
_SLOPE = 0.2  # LeakyReLU negative slope


def check_arch(image_size: int, n_bottleneck: int, base_width: int) -> None:
    for name, value in (("image_size", image_size), ("n_bottleneck", n_bottleneck),
                        ("base_width", base_width)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if image_size < 8 or image_size & (image_size - 1):
        raise ConfigError(f"image_size must be a power of two >= 8, got {image_size}")


#: Generator output kinds (see the module docstring).
OUTPUTS = ("image", "affine")


def _check_options(image_size: int, mask_input, skip, output: str, affine_grid: int) -> None:
    for name, value in (("mask_input", mask_input), ("skip", skip)):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
    if output not in OUTPUTS:
        raise ConfigError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    if output == "affine":
        if not mask_input:
            raise ConfigError("output='affine' applies its colour transform inside the "
                              "mask: it needs mask_input=true")
        ok = [4 * 2 ** k for k in range(_n_halvings(image_size))]
        if affine_grid not in ok:
            raise ConfigError(f"affine_grid must be one of {ok} for image_size "
                              f"{image_size}, got {affine_grid!r}")


def _n_halvings(image_size: int) -> int:
    """Number of stride-2 convolutions from ``image_size`` down to 4x4."""
    return int(round(math.log2(image_size))) - 2


def _encoder(image_size: int, base_width: int, n_out: int, n_in: int = 3) -> nn.Sequential:
    """DCGAN encoder: ``(N, n_in, S, S) -> (N, n_out, 1, 1)`` (Chainer ``DCGAN_D`` order)."""
    layers: list[nn.Module] = [
        nn.Conv2d(n_in, base_width, 4, 2, 1, bias=False),
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


def dcgan_decoder(image_size: int, base_width: int, n_in: int, *, skip: bool = False,
             stop_at: int | None = None) -> nn.Sequential:
    """DCGAN decoder: ``(N, n_in, 1, 1) -> (N, 3, S, S)`` in [-1, 1] (Chainer ``DCGAN_G``).

    ``skip``: every deconvolution after the first also takes the same-resolution
    encoder activation (its input width doubles). ``stop_at``: end with the ReLU block
    at that resolution (no image layer), for the affine head.
    """
    width = base_width * 2 ** (_n_halvings(image_size) - 1)
    wide = 2 if skip else 1
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(n_in, width, 4, 1, 0, bias=False),  # 1x1 -> 4x4
        nn.BatchNorm2d(width, eps=_BN_EPS),
        nn.ReLU(),
    ]
    res = 4
    for _ in range(_n_halvings(image_size) - 1):
        if res == stop_at:
            return nn.Sequential(*layers)
        layers += [
            nn.ConvTranspose2d(wide * width, width // 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width // 2, eps=_BN_EPS),
            nn.ReLU(),
        ]
        width //= 2
        res *= 2
    if res == stop_at:
        return nn.Sequential(*layers)
    layers += [nn.ConvTranspose2d(wide * width, 3, 4, 2, 1, bias=False), nn.Tanh()]
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
    mask_input, skip : bool
        The mask as a fourth input channel; U-Net skip connections (paper: False).
    output : {"image", "affine"}
        An image (paper) or a per-pixel affine colour transform applied inside the
        mask (module docstring).
    affine_grid : int
        Resolution of the affine head (``output="affine"``), 4 .. ``S/2``.

    Notes
    -----
    ``forward(x, mask=None)`` maps ``(N, 3, S, S)`` float tensors in [-1, 1] (and, with
    ``mask_input``, a ``(N, 1, S, S)`` mask in [0, 1]) to ``(N, 3, S, S)`` in [-1, 1].
    ``arch`` holds the constructor arguments (stored in checkpoints).
    """

    def __init__(self, image_size: int = 64, n_bottleneck: int = 4000, base_width: int = 64,
                 *, mask_input: bool = False, skip: bool = False, output: str = "image",
                 affine_grid: int = 16):
        super().__init__()
        check_arch(image_size, n_bottleneck, base_width)
        _check_options(image_size, mask_input, skip, output, affine_grid)
        self.arch = {"image_size": int(image_size), "n_bottleneck": int(n_bottleneck),
                     "base_width": int(base_width), "mask_input": mask_input, "skip": skip,
                     "output": output, "affine_grid": int(affine_grid)}
        self.encoder = _encoder(image_size, base_width, n_bottleneck, 4 if mask_input else 3)
        self.bn = nn.BatchNorm2d(n_bottleneck, eps=_BN_EPS)  # bottleneck BN (Chainer name)
        affine = output == "affine"
        self.decoder = dcgan_decoder(image_size, base_width, n_bottleneck, skip=skip,
                                stop_at=affine_grid if affine else None)
        init_weights(self)
        if affine:  # zero-initialised: G starts as the identity (copy-paste)
            width = base_width * 2 ** (_n_halvings(image_size) - 1) // (affine_grid // 4)
            self.head = nn.Conv2d(width, 12, 3, 1, 1)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def _input(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if not self.arch["mask_input"]:
            return x
        if mask is None:
            raise ModelError("this generator takes the object mask as input "
                             "(mask_input=true): pass mask")
        return torch.cat([x, mask.to(x.dtype) * 2.0 - 1.0], dim=1)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, 3, S, S)`` in [-1, 1] -> bottleneck code ``(N, n_bottleneck, 1, 1)``."""
        return nn.functional.leaky_relu(self.bn(self.encoder(self._input(x, mask))), _SLOPE)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if not self.arch["skip"]:
            h = self.decoder(self.encode(x, mask))
        else:
            skips, h = [], self._input(x, mask)
            for layer in self.encoder:
                h = layer(h)
                if isinstance(layer, nn.LeakyReLU):
                    skips.append(h)
            h = nn.functional.leaky_relu(self.bn(h), _SLOPE)
            first = True
            for layer in self.decoder:
                if isinstance(layer, nn.ConvTranspose2d):
                    if not first:
                        h = torch.cat([h, skips.pop()], dim=1)
                    first = False
                h = layer(h)
        if self.arch["output"] == "image":
            return h
        return self._apply_affine(x, mask, self.head(h))

    @staticmethod
    def _apply_affine(x: torch.Tensor, mask: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
        """``x + m (x + A x + b - x)`` with ``A, b`` up-sampled from ``coef`` (N, 12, g, g)."""
        n, _, h, w = x.shape
        coef = nn.functional.interpolate(coef.float(), size=(h, w), mode="bilinear",
                                         align_corners=False)
        xf = x.float()
        a = coef[:, :9].reshape(n, 3, 3, h, w)
        delta = torch.einsum("nijhw,njhw->nihw", a, xf) + coef[:, 9:]
        return torch.clamp(xf + mask.float() * delta, -1.0, 1.0)

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
        check_arch(image_size, 1, base_width)
        self.arch = {"image_size": int(image_size), "base_width": int(base_width)}
        self.encoder = _encoder(image_size, base_width, 1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).mean(dim=(1, 2, 3))

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.arch.items())


class LatentGenerator(nn.Module):
    """DCGAN generator ``G(z)``: a latent vector to a ``S x S`` image in [-1, 1].

    Parameters
    ----------
    image_size : int
        Side ``S`` of the output (power of two, >= 8). Paper: 64.
    nz : int
        Length of ``z``. Paper: 100.
    base_width : int
        Width of the last deconvolution's input; the earlier ones double per layer
        (paper: 512-256-128-64).

    Notes
    -----
    ``forward(z)`` maps ``(N, nz)`` or ``(N, nz, 1, 1)`` float tensors to
    ``(N, 3, S, S)``. ``arch`` holds the constructor arguments plus
    ``"kind": "latent"`` (stored in checkpoints; it tells this model from a
    Blending GAN generator).
    """

    def __init__(self, image_size: int = 64, nz: int = 100, base_width: int = 64):
        super().__init__()
        if not isinstance(nz, (int, np.integer)) or isinstance(nz, bool) or nz < 1:
            raise ConfigError(f"nz must be a positive integer, got {nz!r}")
        check_arch(image_size, 1, base_width)
        self.arch = {"kind": "latent", "image_size": int(image_size), "nz": int(nz),
                     "base_width": int(base_width)}
        self.decoder = dcgan_decoder(image_size, base_width, nz)
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z.reshape(z.shape[0], self.arch["nz"], 1, 1))

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.arch.items() if k != "kind")


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

def load_checkpoint(path) -> dict:
    """``torch.load(weights_only=True)`` of a checkpoint dict, to the CPU, with one-line
    :class:`ModelError`s for a missing, unreadable or non-dict file; the authors' npz
    loads as its cached conversion (:func:`gpgan.chainer.converted_checkpoint`)."""
    from . import chainer  # lazy: gpgan.chainer imports this module

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model checkpoint")
    if chainer.is_chainer_npz(path):
        return chainer.converted_checkpoint(path)[1]
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


def list_checkpoints(entries) -> list[Path]:
    """Checkpoint files from a path or a list of files and/or folders; a folder stands
    for its ``iter_<N>.pt`` files in iteration order (other names are ignored)."""
    if isinstance(entries, (str, os.PathLike)):
        entries = [entries]
    files: list[Path] = []
    for entry in entries:
        entry = Path(entry)
        if not entry.is_dir():
            files.append(entry)
            continue
        found = []
        for p in entry.glob("iter_*.pt"):
            try:
                found.append((int(p.stem.split("_")[1]), p))
            except (IndexError, ValueError):
                continue
        files += [p for _, p in sorted(found)]
    return files


def _deconvs(state_dict: dict) -> list[int]:
    return sorted(int(k.split(".")[1]) for k in state_dict
                  if k.startswith("decoder.") and k.endswith(".weight")
                  and getattr(state_dict[k], "ndim", 0) == 4)


def infer_generator_arch(state_dict: dict) -> dict:
    """Recover ``Generator`` (or ``LatentGenerator``: a decoder alone) arguments from a
    bare generator ``state_dict``.

    Raises :class:`ModelError` when the keys do not look like a generator.
    """
    if "encoder.0.weight" not in state_dict and "decoder.0.weight" in state_dict:
        deconvs = _deconvs(state_dict)  # the unsupervised G(z): DCGAN_G alone
        return {"kind": "latent", "image_size": 2 ** (len(deconvs) + 1),
                "nz": int(state_dict["decoder.0.weight"].shape[0]),
                "base_width": int(state_dict[f"decoder.{deconvs[-1]}.weight"].shape[0])}
    try:
        first = state_dict["encoder.0.weight"]
        convs = sorted(int(k.split(".")[1]) for k in state_dict
                       if k.startswith("encoder.") and k.endswith(".weight")
                       and state_dict[k].ndim == 4)
        last = state_dict[f"encoder.{convs[-1]}.weight"]
        base_width, n_bottleneck = int(first.shape[0]), int(last.shape[0])
        image_size = 2 ** (len(convs) + 1)  # (halvings + final conv) + 2 - 1
        deconvs = _deconvs(state_dict)
        # a skip decoder's second deconvolution takes twice the first one's output
        skip = len(deconvs) > 1 and int(state_dict[f"decoder.{deconvs[1]}.weight"].shape[0]) \
            == 2 * int(state_dict[f"decoder.{deconvs[0]}.weight"].shape[1])
        affine = "head.weight" in state_dict
        grid = 4 * 2 ** (len(deconvs) - 1) if affine else 16
    except (KeyError, IndexError, AttributeError, ValueError) as exc:
        raise ModelError(f"state dict is not a Generator's (missing {exc})") from None
    return {"image_size": image_size, "n_bottleneck": n_bottleneck, "base_width": base_width,
            "mask_input": int(first.shape[1]) == 4, "skip": bool(skip),
            "output": "affine" if affine else "image", "affine_grid": grid}


def generator_from_state(state: dict, arch: dict, origin: str):
    """A :class:`Generator` (or, for ``arch["kind"] == "latent"``, a
    :class:`LatentGenerator`) of ``arch`` holding ``state``; :class:`ModelError`
    (naming ``origin``) when the weights do not fit."""
    arch = dict(arch)
    cls = LatentGenerator if arch.pop("kind", None) == "latent" else Generator
    try:
        gen = cls(**arch)
    except (TypeError, ConfigError) as exc:
        raise ModelError(f"{origin}: bad architecture {arch!r} ({exc})") from None
    try:
        gen.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise ModelError(f"{origin}: weights do not fit {cls.__name__}({_fmt(arch)}): "
                         f"{detail[:300]}") from None
    return gen


def _fmt(arch: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in arch.items())


def generator_from_checkpoint(obj: dict, origin: str = "checkpoint"):
    """Build a :class:`Generator` or :class:`LatentGenerator` (``arch["kind"] ==
    "latent"``) from an already loaded checkpoint dict.

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
    elif "encoder.0.weight" in obj or "decoder.0.weight" in obj:
        state, arch = obj, infer_generator_arch(obj)
    else:
        keys = ", ".join(sorted(map(str, obj))[:6])
        raise ModelError(f"{origin}: no generator weights in checkpoint (keys: {keys})")
    if not isinstance(arch, dict):
        raise ModelError(f"{origin}: 'arch' entry is not a dict")
    return generator_from_state(state, dict(arch), origin)


def load_generator(path, device: str | torch.device = "auto") -> Generator:
    """Load a generator from a checkpoint written by this package, ready for inference.

    Accepts a training checkpoint, a generator-only file (:func:`save_generator`), a
    bare ``state_dict`` (architecture from the shapes) or the authors' released npz
    (converted once to a cached ``.pt``, :mod:`gpgan.chainer`). Loading uses
    ``torch.load(..., weights_only=True)``: no code is unpickled.

    Parameters
    ----------
    path : str or Path
        Checkpoint file (``.pt``) or one of the authors' ``.npz`` files.
    device : str or torch.device
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    Generator or LatentGenerator
        In eval mode (batch norm uses its running statistics), on ``device``; a
        :class:`LatentGenerator` (``arch["kind"] == "latent"``) for an unsupervised
        GP-GAN checkpoint.

    Raises
    ------
    ModelError
        Missing/unreadable file, or weights of another architecture (one line).
    """
    path = Path(path)
    gen = generator_from_checkpoint(load_checkpoint(path), str(path))
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

def generate_color(generator: Generator, composite: np.ndarray,
                   mask: np.ndarray | None = None) -> np.ndarray:
    """Run the Blending GAN on one low-resolution copy-paste composite.

    This is GP-GAN's colour image ``x_l`` (SPEC.md, pyramid level 0).

    Parameters
    ----------
    generator : Generator
        Typically from :func:`load_generator`; it is switched to eval mode.
    composite : numpy.ndarray
        ``float32 (S, S, 3)`` in [0, 1], ``S = generator.arch["image_size"]`` (64).
    mask : numpy.ndarray, optional
        ``float32 (S, S)`` in [0, 1], the object mask at the same size; needed by a
        generator with ``mask_input``, ignored otherwise.

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
    m = None
    if generator.arch.get("mask_input"):
        if mask is None or np.shape(mask) != (size, size):
            raise ModelError(f"this generator takes the object mask: pass a ({size}, {size}) "
                             f"mask, got {None if mask is None else np.shape(mask)}")
        m = torch.from_numpy(np.array(mask, dtype=np.float32))[None, None]
        m = m.to(device=param.device, dtype=param.dtype)
    with torch.no_grad():
        y = generator(t, m)[0]
    y = ((y.float().cpu().numpy().transpose(1, 2, 0) + 1.0) / 2.0).clip(0.0, 1.0)
    return np.ascontiguousarray(y, dtype=np.float32)
