"""Embedded demo dataset: real photos, relit into "same place, different time" scenes.

The Transient Attributes data (8,571 webcam images, 1.8 GB) cannot be fetched in an
offline test run, so the default configuration trains and evaluates on a small
stand-in built from colour photographs that ship inside installed packages:

=================  ==============================================  ===========
name               source                                          size (HxW)
=================  ==============================================  ===========
``rocket``         ``skimage.data.rocket()`` (outdoor launch pad)  427 x 640
``coffee``         ``skimage.data.coffee()``                       400 x 600
``chelsea``        ``skimage.data.chelsea()`` (cat)                300 x 451
``astronaut``      ``skimage.data.astronaut()``                    512 x 512
``motorcycle``     ``skimage.data.stereo_motorcycle()[0]``         500 x 741
``grace_hopper``   matplotlib sample data ``grace_hopper.jpg``     600 x 512
=================  ==============================================  ===========

All load offline (scikit-image >= 0.19 bundles them; loaders that need a download,
e.g. ``lily``, are not used). scikit-learn's sample images are not used (not a
dependency).

Each **scene** is a seeded crop of one photo (crop side 50-90 % of the photo's short
side, aspect 1, 4/3 or 3/2, resized with Lanczos so the short side is ``size``). Each
scene gets ``n_variants`` **variants**, the same pixels under a different sampled
illumination and camera, so two variants play the role of two webcam frames of one
place at two times. The relighting model (all operations in linear RGB unless noted):

1. **Decode** sRGB to linear light ``J`` (IEC 61966-2-1 transfer function).
2. **Illumination** ``L(x) = 2**ev * (w * s(x) * c_sun + (1 - w) * c_sky) / n``:
   exposure ``ev ~ U(-0.9, 0.6)`` stops; a direct-sun share ``w ~ U(0, 0.85)``
   (0 = overcast); sun colour ``c_sun`` = white-balance gains of a black body at
   ``T_sun ~ U(3300, 6500)`` K and skylight colour ``c_sky`` at ``T_sky ~ U(7000,
   14000)`` K, both relative to a camera balanced for 6500 K (Tanner Helland's
   black-body fit, linearised, green = 1), times a small green/magenta tint
   ``U(-0.04, 0.04)``; ``s(x) in [0, 1]`` a smooth sun/shade field (logistic of a
   random linear ramp, the sun direction, plus a random low-frequency Fourier field
   with <= 2.5 cycles per image, the cloud/occluder shadows); ``n`` normalises the
   mean illumination to ``2**ev``. ``J <- J * L``.
3. **Haze** (probability 0.4) toward an airlight ``A``: ``J <- J * t + A * (1 - t)``
   with transmission ``t = exp(-k * d(x))``, density ``k ~ U(0.05, 0.8)``, depth proxy
   ``d`` = height in the frame (top is far) plus a smooth random field, clipped to
   [0, 1]; ``A`` = brightness ``U(0.45, 0.9)`` times a half-saturated skylight
   colour.
4. **Camera**: clip to [0, 1], encode to sRGB, tone curve ``y = x**g``
   (``g ~ U(0.85, 1.18)``), contrast about mid-grey ``y = 0.5 + c (y - 0.5)``
   (``c ~ U(0.8, 1.25)``), saturation about Rec.709 luma (``U(0.7, 1.35)``).
5. **Sensor noise**: Gaussian with variance ``a * y + b**2`` (shot + read noise,
   ``a ~ U(0, 4e-4)``, ``b ~ U(0.002, 0.008)``), then 8-bit quantisation.

Geometry never changes between variants (the webcams are aligned), so for any
two variants A, B of one scene, B is the exact ground truth of "A's content under
B's lighting".

Randomness: ``numpy.random.SeedSequence(seed).spawn(n_scenes)`` gives each scene its
own stream (crop box, then the variants in order), so the same arguments give
byte-identical PNG files on one platform (PNG encoding by Pillow is deterministic).
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError, InputError
from ..io import atomic_path

__all__ = [
    "DEMO_PHOTOS",
    "load_photo",
    "sample_relight_params",
    "relight",
    "build_demo_dataset",
]

log = logging.getLogger(__name__)


def _skimage(name):
    def load():
        import skimage.data

        img = getattr(skimage.data, name)()
        return img[0] if isinstance(img, tuple) else img
    return load


def _grace_hopper():
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        return np.asarray(im.convert("RGB"))


#: Photo name -> loader returning uint8 (H, W, 3). Order matters: scenes are dealt
#: round-robin over this order.
DEMO_PHOTOS = {
    "rocket": _skimage("rocket"),
    "coffee": _skimage("coffee"),
    "chelsea": _skimage("chelsea"),
    "astronaut": _skimage("astronaut"),
    "motorcycle": _skimage("stereo_motorcycle"),
    "grace_hopper": _grace_hopper,
}


def load_photo(name: str) -> np.ndarray:
    """Load one demo photo as uint8 ``(H, W, 3)``.

    Raises :class:`InputError` for an unknown name or a photo that cannot be loaded
    offline.
    """
    if name not in DEMO_PHOTOS:
        raise InputError(f"unknown demo photo {name!r} (choose from {', '.join(DEMO_PHOTOS)})")
    try:
        img = np.asarray(DEMO_PHOTOS[name]())
    except Exception as exc:  # missing optional data file, no network, ...
        raise InputError(f"demo photo {name!r} cannot be loaded ({exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3]).astype(np.uint8, copy=False)


# ----------------------------------------------------------------- relighting model
def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def _blackbody_srgb(kelvin: float) -> np.ndarray:
    """Approximate sRGB colour (0-255 scale) of a black body (Tanner Helland's fit)."""
    t = kelvin / 100.0
    if t <= 66:
        r = 255.0
        g = 99.4708025861 * np.log(t) - 161.1195681661
        b = 0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307
    else:
        r = 329.698727446 * (t - 60) ** -0.1332047592
        g = 288.1221695283 * (t - 60) ** -0.0755148492
        b = 255.0
    return np.clip(np.array([r, g, b], dtype=np.float64), 1.0, 255.0)


def _wb_gains(kelvin: float, tint: float = 0.0) -> np.ndarray:
    """Linear RGB gains of light at ``kelvin`` seen by a camera balanced for 6500 K."""
    c = _srgb_to_linear(_blackbody_srgb(kelvin) / 255.0)
    ref = _srgb_to_linear(_blackbody_srgb(6500.0) / 255.0)
    gains = c / ref
    gains = gains / gains[1]
    gains[1] *= 1.0 + tint
    return gains


def _fourier_field(rng: np.random.Generator, h: int, w: int, *, terms: int = 8,
                   max_cycles: float = 2.5) -> np.ndarray:
    """Smooth random field, zero mean, unit std, float64 (h, w)."""
    yy = (np.arange(h, dtype=np.float64) + 0.5) / max(h, w)
    xx = (np.arange(w, dtype=np.float64) + 0.5) / max(h, w)
    freq = rng.uniform(-max_cycles, max_cycles, size=(terms, 2))
    phase = rng.uniform(0, 2 * np.pi, size=terms)
    amp = rng.normal(size=terms) / (1.0 + np.hypot(freq[:, 0], freq[:, 1]))
    # sum_k a_k cos(u_k(y) + v_k(x)) as a rank-2k product (separable, cheap)
    u = 2 * np.pi * freq[:, :1] * yy[None, :]                 # (terms, h)
    v = 2 * np.pi * freq[:, 1:] * xx[None, :] + phase[:, None]  # (terms, w)
    f = (amp[:, None] * np.cos(u)).T @ np.cos(v) - (amp[:, None] * np.sin(u)).T @ np.sin(v)
    f -= f.mean()
    std = f.std()
    return f / std if std > 1e-12 else f


def sample_relight_params(rng: np.random.Generator) -> dict:
    """Draw one set of relighting parameters (see the module docstring for the model).

    Returns a flat dict of Python floats (recorded in the dataset's ``variants.csv``)
    plus ``"seed"``, the integer that seeds the spatial fields and the noise.
    """
    p = {
        "ev": rng.uniform(-0.9, 0.6),
        "sun_share": rng.uniform(0.0, 0.85),
        "t_sun": rng.uniform(3300.0, 6500.0),
        "t_sky": rng.uniform(7000.0, 14000.0),
        "tint": rng.uniform(-0.04, 0.04),
        "sun_angle": rng.uniform(0.0, 2 * np.pi),
        "sun_ramp": rng.uniform(0.0, 4.0),
        "shadow_amp": rng.uniform(0.0, 2.5),
        "shadow_bias": rng.uniform(-1.0, 1.5),
        "haze": rng.uniform(0.05, 0.8) if rng.random() < 0.4 else 0.0,
        "airlight": rng.uniform(0.45, 0.9),
        "gamma": rng.uniform(0.85, 1.18),
        "contrast": rng.uniform(0.8, 1.25),
        "saturation": rng.uniform(0.7, 1.35),
        "shot_noise": rng.uniform(0.0, 4e-4),
        "read_noise": rng.uniform(0.002, 0.008),
    }
    p = {k: float(v) for k, v in p.items()}
    p["seed"] = int(rng.integers(0, 2**31 - 1))
    return p


def relight(img: np.ndarray, params: dict) -> np.ndarray:
    """Apply the relighting model to one image.

    Parameters
    ----------
    img : np.ndarray
        float32 ``(H, W, 3)`` sRGB in [0, 1].
    params : dict
        From :func:`sample_relight_params`.

    Returns
    -------
    np.ndarray
        uint8 ``(H, W, 3)``: the relit, noisy, quantised image.
    """
    h, w = img.shape[:2]
    rng = np.random.default_rng(params["seed"])
    lin = _srgb_to_linear(img.astype(np.float32))

    # 2. illumination: direct sun (warm, spatially varying) + skylight (cool, uniform)
    yy = (np.arange(h) + 0.5)[:, None] / max(h, w) - 0.5 * h / max(h, w)
    xx = (np.arange(w) + 0.5)[None, :] / max(h, w) - 0.5 * w / max(h, w)
    ramp = np.cos(params["sun_angle"]) * xx + np.sin(params["sun_angle"]) * yy
    shade = _fourier_field(rng, h, w)
    s = 1.0 / (1.0 + np.exp(-(params["sun_ramp"] * ramp + params["shadow_amp"] * shade
                             + params["shadow_bias"])))
    c_sun = _wb_gains(params["t_sun"], params["tint"])
    c_sky = _wb_gains(params["t_sky"], params["tint"])
    wsun = params["sun_share"]
    s = s.astype(np.float32)
    c_sun, c_sky = c_sun.astype(np.float32), c_sky.astype(np.float32)
    illum = wsun * s[:, :, None] * c_sun + np.float32(1 - wsun) * c_sky
    illum *= 2.0 ** params["ev"] / max(float(illum[:, :, 1].mean()), 1e-6)
    lin = lin * illum

    # 3. haze toward the airlight (Koschmieder's law)
    if params["haze"] > 0:
        depth = 1.0 - (np.arange(h) + 0.5)[:, None] / h
        depth = np.clip(depth + 0.15 * _fourier_field(rng, h, w), 0.0, 1.0)
        t = np.exp(-params["haze"] * depth).astype(np.float32)[:, :, None]
        air = params["airlight"] * (0.5 + 0.5 * c_sky / c_sky.mean())
        lin = lin * t + air.astype(np.float32) * (1 - t)

    # 4. camera: clip, sRGB encode, tone curve, contrast, saturation
    y = _linear_to_srgb(lin) ** params["gamma"]
    y = np.clip(0.5 + params["contrast"] * (y - 0.5), 0.0, 1.0)
    luma = (y @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32))[:, :, None]
    y = np.clip(luma + params["saturation"] * (y - luma), 0.0, 1.0)

    # 5. sensor noise (shot + read), 8-bit quantisation
    sigma = np.sqrt(params["shot_noise"] * y + params["read_noise"] ** 2)
    y = y + sigma * rng.standard_normal(y.shape, dtype=np.float32)
    return np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)


# ----------------------------------------------------------------------- dataset
_ASPECTS = (1.0, 4 / 3, 3 / 2)
_PNG_LEVEL = 1  # fast zlib level: noisy images barely compress better at level 6


def _scene_crop(photo: np.ndarray, rng: np.random.Generator, size: int,
                crop=(0.5, 0.9)):
    ph, pw = photo.shape[:2]
    aspect = float(rng.choice(_ASPECTS))
    short = rng.uniform(*crop) * min(ph, pw)
    landscape = pw >= ph
    ch, cw = (short, short * aspect) if landscape else (short * aspect, short)
    scale = min(1.0, ph / ch, pw / cw)
    ch, cw = int(round(ch * scale)), int(round(cw * scale))
    y0 = int(rng.integers(0, ph - ch + 1))
    x0 = int(rng.integers(0, pw - cw + 1))
    crop = photo[y0:y0 + ch, x0:x0 + cw]
    if ch <= cw:
        oh, ow = size, int(round(size * cw / ch))
    else:
        oh, ow = int(round(size * ch / cw)), size
    out = Image.fromarray(crop).resize((ow, oh), Image.Resampling.LANCZOS)
    return np.asarray(out, dtype=np.float32) / 255.0, (y0, x0, y0 + ch, x0 + cw)


def _write_png(path: Path, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=_PNG_LEVEL)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def _photo_list(photos, photo_dirs) -> list[tuple[str, str, object]]:
    """``[(name, group, loader)]``: the package photos, then every ``photos.csv`` row."""
    from .photos import read_photo_table

    names = list(DEMO_PHOTOS) if photos is None else list(photos)
    out = [(name, name, lambda name=name: load_photo(name)) for name in dict.fromkeys(names)]
    for folder in photo_dirs or ():
        for row in read_photo_table(folder):
            out.append((row["name"], row["group"], lambda f=row["file"]: _read_rgb(f)))
    seen = set()
    for name, _, _ in out:
        if name in seen:
            raise ConfigError(f"photo name {name!r} appears twice")
        seen.add(name)
    return out


def _read_rgb(path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable photo ({exc.__class__.__name__})") from None


def build_demo_dataset(out_dir, *, n_scenes: int | None = None, n_variants: int = 8,
                       size: int = 256, seed: int = 0, photos=None, photo_dirs=(),
                       crop=(0.5, 0.9)) -> list[Path]:
    """Build the demo scenes: ``<out_dir>/<scene>/<k>.png``.

    Parameters
    ----------
    out_dir : path-like
        Output folder (created). Scene folders are named ``<photo>_<j>`` (``j`` two
        digits, counted per photo); variant files ``00.png`` ... (two digits, so they
        sort). ``<out_dir>/variants.csv`` records each file's photo, its group, the
        crop box and the relighting parameters (its ``scene`` and ``group`` columns are
        what :func:`gpgan.data.scenes.read_groups` reads).
    n_scenes : int, optional
        Number of scenes, dealt round-robin over the photos; default one per photo.
    n_variants : int
        Relit variants per scene (>= 2: training pairs need two).
    size : int
        Short side of every scene image in pixels (32-1024); the long side is 1, 4/3
        or 3/2 times that.
    seed : int
        Seed of everything random (crop boxes, relighting, noise).
    photos : sequence of str, optional
        Names from :data:`DEMO_PHOTOS` (default: all, in that order; ``[]`` for none).
        Each is its own group.
    photo_dirs : sequence of path-like
        Folders with a ``photos.csv`` (:func:`gpgan.data.photos.fetch_mvtb_photos`),
        whose photos follow the package photos, with the table's groups.
    crop : (float, float)
        Range of a scene's crop side as a fraction of the photo's short side.

    Returns
    -------
    list of pathlib.Path
        The variant images written, sorted (``n_scenes * n_variants`` paths), 8-bit
        RGB PNG, all images of one scene the same size.

    Raises
    ------
    gpgan.errors.ConfigError
        Out-of-range arguments.
    gpgan.errors.InputError
        A photo that cannot be loaded.
    """
    if n_scenes is not None and n_scenes < 1:
        raise ConfigError(f"n_scenes must be >= 1, got {n_scenes}")
    if n_variants < 2:
        raise ConfigError(f"n_variants must be >= 2 (training pairs need two), got {n_variants}")
    if not 32 <= size <= 1024:
        raise ConfigError(f"size must be in [32, 1024], got {size}")
    lo, hi = (float(c) for c in crop)
    if not 0 < lo <= hi <= 1:
        raise ConfigError(f"crop range must satisfy 0 < lo <= hi <= 1, got {crop}")
    listed = _photo_list(photos, photo_dirs)
    if not listed:
        raise ConfigError("no photos: name at least one demo photo or a photo folder")
    n_scenes = len(listed) if n_scenes is None else n_scenes
    loaded: dict[str, np.ndarray] = {}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    children = np.random.SeedSequence(int(seed)).spawn(n_scenes)
    per_photo: dict[str, int] = {}
    written: list[Path] = []
    rows = []
    for i, child in enumerate(children):
        name, group, load = listed[i % len(listed)]
        if name not in loaded:
            loaded[name] = load()
        j = per_photo.get(name, 0)
        per_photo[name] = j + 1
        scene = f"{name}_{j:02d}"
        rng = np.random.default_rng(child)
        base, box = _scene_crop(loaded[name], rng, size, (lo, hi))
        for k in range(n_variants):
            params = sample_relight_params(rng)
            path = out_dir / scene / f"{k:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_png(path, relight(base, params))
            written.append(path)
            rows.append({"scene": scene, "file": f"{scene}/{k:02d}.png", "photo": name,
                         "group": group, "crop_y0": box[0], "crop_x0": box[1],
                         "crop_y1": box[2], "crop_x1": box[3],
                         **{key: (round(v, 6) if isinstance(v, float) else v)
                            for key, v in params.items()}})
        if i + len(listed) >= n_scenes:  # the photo's last scene: free it
            loaded.pop(name, None)
    with atomic_path(out_dir / "variants.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    log.info("demo dataset: %d scenes x %d variants in %s", n_scenes, n_variants, out_dir)
    return sorted(written)
