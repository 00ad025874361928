"""Image-quality metrics for blends against a ground truth.

All functions take float images of shape ``(H, W, 3)`` with values in ``[0, 1]`` (the
:mod:`gpgan` convention) and masks of shape ``(H, W)`` in ``[0, 1]`` (1 = pasted object).

Definitions (``a`` = blend, ``b`` = ground truth, ``C = 3`` channels):

- ``mse``: mean of ``(a - b)**2`` over all pixels and channels.
- ``psnr``: ``10 log10(peak**2 / mse)`` with a **fixed peak of 1.0** (the range of the
  images, not their maximum); ``inf`` for identical images.
- ``ssim``: scikit-image's :func:`skimage.metrics.structural_similarity` (Wang et al.
  2004; 7x7 uniform window) with ``channel_axis=2, data_range=1``, averaged over channels.
- ``fmse`` / ``fpsnr``: the image-harmonization "foreground" MSE: the squared error
  summed over the masked pixels ``M`` and the channels, divided by ``C * |M|``. ``M`` is
  the mask thresholded at 0.5 (``mask >= 0.5``), so soft masks count their mostly-object
  pixels. ``fpsnr = 10 log10(1 / fmse)``. An empty ``M`` gives ``nan``.
- ``edge_mse``: the same mean squared error over the *edge band*: pixels within
  ``band_px`` pixels (Euclidean) of the border of ``M``, on both sides. Seams and colour
  bleeding live there. An empty band gives ``nan``.
- ``lpips``: LPIPS (Zhang et al., CVPR 2018) with the AlexNet backbone and the published
  v0.1 linear layers of the ``lpips`` package, inputs scaled to ``[-1, 1]``, spatially
  averaged. The backbone is loaded only from a local folder provisioned by
  :func:`gpgan.weights.fetch_lpips_weights` (``gpgan fetch-weights``); nothing is
  downloaded here.

One metric needs no ground truth: :func:`realism`, the score of a trained realism
judge (:mod:`gpgan.realism`; higher = more realistic).
"""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path

import numpy as np

from .errors import InputError, ModelError
from .weights import lpips_weights_path

__all__ = [
    "METRICS",
    "HIGHER_IS_BETTER",
    "mse",
    "psnr",
    "ssim",
    "foreground_mask",
    "edge_band",
    "fmse",
    "fpsnr",
    "edge_mse",
    "lpips_distance",
    "load_lpips",
    "compute_metrics",
    "realism",
]

#: Every metric :func:`compute_metrics` can produce, in table order.
METRICS = ("mse", "psnr", "ssim", "fmse", "fpsnr", "edge_mse", "lpips")
#: Direction of each metric (and of ``seconds``, timing).
HIGHER_IS_BETTER = {"mse": False, "psnr": True, "ssim": True, "fmse": False, "fpsnr": True,
                    "edge_mse": False, "lpips": False, "seconds": False}

PEAK = 1.0
MASK_THRESHOLD = 0.5
DEFAULT_BAND_PX = 3


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.shape != b.shape:
        raise InputError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"expected (H, W, 3) images, got shape {a.shape}")
    return a, b


def _region(mask, shape) -> np.ndarray:
    m = np.asarray(mask, dtype=np.float32)
    if m.shape != tuple(shape[:2]):
        raise InputError(f"mask of shape {m.shape} does not fit images of shape {shape}")
    return m


def _psnr_from_mse(value: float) -> float:
    if math.isnan(value):
        return math.nan
    if value <= 0.0:
        return math.inf
    return 10.0 * math.log10(PEAK * PEAK / value)


def mse(a, b) -> float:
    """Mean squared error over all pixels and channels.

    Parameters
    ----------
    a, b : ndarray, float (H, W, 3) in [0, 1]

    Returns
    -------
    float
    """
    a, b = _pair(a, b)
    d = a.astype(np.float64) - b
    return float(np.mean(d * d))


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB with a fixed peak of 1.0; ``inf`` if identical."""
    return _psnr_from_mse(mse(a, b))


def ssim(a, b) -> float:
    """Structural similarity (scikit-image, ``channel_axis=2``, ``data_range=1``).

    Images must be at least 7x7 (the default window).
    """
    from skimage.metrics import structural_similarity

    a, b = _pair(a, b)
    if min(a.shape[:2]) < 7:
        raise InputError(f"SSIM needs images of at least 7x7 pixels, got {a.shape[:2]}")
    return float(structural_similarity(a, b, channel_axis=2, data_range=1.0))


def foreground_mask(mask) -> np.ndarray:
    """Binary foreground ``M = mask >= 0.5`` of a (soft) mask, bool (H, W)."""
    return np.asarray(mask, dtype=np.float32) >= MASK_THRESHOLD


def edge_band(mask, band_px: int = DEFAULT_BAND_PX) -> np.ndarray:
    """Pixels within ``band_px`` pixels of the border of ``M = mask >= 0.5``.

    A pixel of ``M`` is in the band when its Euclidean distance to the nearest pixel
    outside ``M`` is at most ``band_px``; a pixel outside ``M`` when its distance to the
    nearest pixel of ``M`` is at most ``band_px``. The image border is not a mask border.

    Parameters
    ----------
    mask : ndarray, float (H, W) in [0, 1]
    band_px : int
        Half-width of the band in pixels (>= 1); ``band_px=1`` is the two pixel rings that
        touch the border.

    Returns
    -------
    ndarray, bool (H, W)
        All False when ``M`` is empty or covers the whole image.
    """
    from scipy.ndimage import distance_transform_edt

    if band_px < 1:
        raise InputError(f"band_px must be >= 1, got {band_px}")
    m = foreground_mask(mask)
    if m.all() or not m.any():
        return np.zeros(m.shape, dtype=bool)
    inside = distance_transform_edt(m)  # distance of object pixels to the scene
    outside = distance_transform_edt(~m)  # distance of scene pixels to the object
    return (m & (inside <= band_px)) | (~m & (outside <= band_px))


def _masked_mse(a, b, region: np.ndarray) -> float:
    n = int(region.sum())
    if n == 0:
        return math.nan
    d = a[region].astype(np.float64) - b[region]
    return float(np.sum(d * d) / (a.shape[2] * n))


def fmse(a, b, mask) -> float:
    """Foreground MSE: sum over pixels of ``M`` and channels / ``(C * |M|)``; nan if ``M`` empty."""
    a, b = _pair(a, b)
    return _masked_mse(a, b, foreground_mask(_region(mask, a.shape)))


def fpsnr(a, b, mask) -> float:
    """Foreground PSNR ``10 log10(1 / fmse)`` in dB (peak 1.0)."""
    return _psnr_from_mse(fmse(a, b, mask))


def edge_mse(a, b, mask, band_px: int = DEFAULT_BAND_PX) -> float:
    """MSE over the edge band (:func:`edge_band`) around the mask border; nan if empty."""
    a, b = _pair(a, b)
    return _masked_mse(a, b, edge_band(_region(mask, a.shape), band_px))


@functools.lru_cache(maxsize=2)
def _lpips_model(weights_file: str):
    import torch

    with warnings.catch_warnings():
        # lpips 0.1.4 still passes torchvision's deprecated ``pretrained=`` argument.
        warnings.simplefilter("ignore", UserWarning)
        import lpips

        # pnet_rand=True: build the AlexNet without asking torchvision to download it;
        # pretrained=True: load the v0.1 linear layers shipped inside the lpips package.
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True,
                            verbose=False)
    try:
        features = torch.load(weights_file, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt / truncated file
        raise ModelError(f"{weights_file}: unreadable LPIPS weights ({exc.__class__.__name__}); "
                         "re-run `gpgan fetch-weights --force`") from None
    # lpips splits AlexNet.features into slices that keep the torchvision indices.
    slot = {}
    for key in model.net.state_dict():
        _, idx, kind = key.split(".")
        slot[f"{idx}.{kind}"] = key
    if set(features) != set(slot):
        raise ModelError(f"{weights_file}: not an AlexNet `features` state dict; "
                         "re-run `gpgan fetch-weights --force`")
    model.net.load_state_dict({slot[k]: v for k, v in features.items()}, strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_lpips(weights_dir=None):
    """Return the LPIPS (AlexNet, v0.1) ``torch.nn.Module`` with the local backbone.

    Parameters
    ----------
    weights_dir : str or Path, optional
        Folder provisioned by :func:`gpgan.weights.fetch_lpips_weights`. Default:
        ``$GPGAN_LPIPS_DIR`` or ``resources/lpips``.

    Raises
    ------
    ModelError
        If the folder holds no weights (the message says how to get them).
    """
    path = lpips_weights_path(weights_dir)
    if not path.is_file():
        raise ModelError(f"LPIPS AlexNet weights not found: {path} is missing; run "
                         f"`gpgan fetch-weights --dest {path.parent}` (or skip LPIPS)")
    return _lpips_model(str(Path(path).resolve()))


def lpips_distance(a, b, *, weights_dir=None) -> float:
    """LPIPS distance (AlexNet, v0.1 linear layers, spatial average) between two images.

    Parameters
    ----------
    a, b : ndarray, float (H, W, 3) in [0, 1]
        Scaled to ``[-1, 1]`` inside. Both sides must be at least 32 pixels (AlexNet's
        receptive field).
    weights_dir : str or Path, optional
        See :func:`load_lpips`.

    Returns
    -------
    float
        0 for identical images; larger is more different (about 0.1-0.8 in practice).
    """
    import torch

    a, b = _pair(a, b)
    if min(a.shape[:2]) < 32:
        raise InputError(f"LPIPS needs images of at least 32x32 pixels, got {a.shape[:2]}")
    model = load_lpips(weights_dir)

    def tensor(x):
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None] * 2.0 - 1.0

    with torch.inference_mode():
        d = model(tensor(a), tensor(b))
    return float(d.reshape(-1)[0])


def compute_metrics(pred, gt, mask, *, metrics=METRICS, band_px: int = DEFAULT_BAND_PX,
                    lpips_weights=None) -> dict:
    """Compute several metrics of a blend against its ground truth.

    Parameters
    ----------
    pred, gt : ndarray, float (H, W, 3) in [0, 1]
    mask : ndarray, float (H, W) in [0, 1]
    metrics : sequence of str
        Names from :data:`METRICS`.
    band_px : int
        Edge-band half-width for ``edge_mse``.
    lpips_weights : str or Path, optional
        Weights folder for ``lpips``.

    Returns
    -------
    dict of str to float
        In the order of ``metrics``.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise InputError(f"unknown metric(s) {unknown}; choose from {list(METRICS)}")
    pred, gt = _pair(pred, gt)
    mask = _region(mask, pred.shape)
    funcs = {
        "mse": lambda: mse(pred, gt),
        "psnr": lambda: psnr(pred, gt),
        "ssim": lambda: ssim(pred, gt),
        "fmse": lambda: fmse(pred, gt, mask),
        "fpsnr": lambda: fpsnr(pred, gt, mask),
        "edge_mse": lambda: edge_mse(pred, gt, mask, band_px),
        "lpips": lambda: lpips_distance(pred, gt, weights_dir=lpips_weights),
    }
    return {name: funcs[name]() for name in metrics}


@functools.lru_cache(maxsize=2)
def _judge(path: str, device: str):
    from .realism import load_judge

    return load_judge(path, device=device)


def find_judge(model=None, root=".") -> Path:
    """The realism judge to use: ``model`` if given, else ``$GPGAN_REALISM_JUDGE``, else
    the one ``results/*/realism/judge.pt`` under ``root`` (an error if none or several)."""
    import os

    if model is None:
        model = os.environ.get("GPGAN_REALISM_JUDGE") or None
    if model is not None:
        return Path(model)
    found = sorted(Path(root).glob("results/*/realism/judge.pt"))
    if len(found) != 1:
        what = "none" if not found else ", ".join(str(p) for p in found)
        raise ModelError(f"name the realism judge with --model (results/*/realism/judge.pt: "
                         f"{what}); the workflow's train_realism rule makes one")
    return found[0]


def realism(images, masks=None, *, model=None, device: str = "auto") -> np.ndarray:
    """Realism scores of images (no ground truth needed; higher = more realistic).

    Parameters
    ----------
    images : sequence of ndarray (H, W, 3)
        Blends or photographs, float in ``[0, 1]`` or uint8.
    masks : sequence of ndarray (H, W) or None, optional
        The pasted region of each image: the judge then looks at the square around it
        (:func:`gpgan.realism.view`); ``None`` (or a ``None`` entry): the whole image.
    model : str or Path, optional
        A ``judge.pt`` (:func:`find_judge` when omitted).
    device : {"auto", "cpu", "cuda"}

    Returns
    -------
    ndarray, float64 (N,)
        The judge's log-odds that each image is natural (0 = undecided).
    """
    from .realism import score_images

    return score_images(_judge(str(find_judge(model).resolve()), device), images, masks)
