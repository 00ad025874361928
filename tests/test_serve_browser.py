"""`gpgan serve` in a real browser: headless Chromium (Debian's package, driven by
Playwright through ``executable_path``) uploads two photos, paints a mask stroke,
drags the object, blends with ``poisson`` and ``gp``, and the downloaded PNGs must
equal :func:`gpgan.blend` on the same files, the mask the page sent (its "Download
mask" link) and the offset it shows; then the missing-mask error.

The module fixture installs Chromium with ``tests/browser/setup_chromium.sh`` (root +
apt, as ``tests/slurm/setup_slurm.sh`` installs SLURM; ~15 s the first time). Without
root, apt, Playwright or a Chromium that starts, the test is SKIPPED WITH THE REASON;
``GPGAN_BROWSER_REQUIRED=1`` makes that a failure instead.

``GPGAN_SERVE_SCREENSHOT=docs/img/serve.png`` also saves the page after the ``gp``
blend: the README's screenshot is made this way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gpgan
from gpgan.io import png_bytes, read_image, read_mask, write_image

from conftest import blob_mask
from serve_helpers import REPO, Server

SETUP = REPO / "tests" / "browser" / "setup_chromium.sh"
SETUP_TIMEOUT_S = 420  # apt-get update + install included
SETUP_REASONS = {10: "not root", 11: "Chromium cannot be installed",
                 13: "Chromium does not start"}
# The flags the machine notes give for headless Chromium without a network (Playwright
# adds --headless and a fresh --user-data-dir itself).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
TIMEOUT_MS = 90_000  # one action or wait (a blend on a loaded 2-core machine)


def _skip_or_fail(reason: str):
    if os.environ.get("GPGAN_BROWSER_REQUIRED") == "1":
        pytest.fail(f"GPGAN_BROWSER_REQUIRED=1 but: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium():
    """Path of a Chromium that starts headless, installed by the setup script."""
    if sys.platform != "linux":
        _skip_or_fail("the browser test installs Debian's chromium: Linux only")
    try:
        proc = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True,
                              timeout=SETUP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _skip_or_fail(f"tests/browser/setup_chromium.sh took longer than {SETUP_TIMEOUT_S} s")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        what = SETUP_REASONS.get(proc.returncode, f"exit {proc.returncode}")
        _skip_or_fail(f"tests/browser/setup_chromium.sh failed ({what}): {last}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def browser(chromium):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("playwright is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=chromium, headless=True,
                                   args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - any launch failure is a skip reason
            _skip_or_fail(f"Playwright cannot start {chromium}: {str(exc).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("serve"))
    yield srv
    srv.stop()


@pytest.fixture()
def inputs(tmp_path, photos):
    """Two real photos as files (PNG object, JPEG scene), different sizes."""
    src = tmp_path / "astronaut.png"
    dst = tmp_path / "coffee.jpg"
    write_image(src, photos["astronaut"][40:296, 100:420])   # 320x256
    write_image(dst, photos["coffee"][40:340, 60:460])       # 400x300
    return src, dst


def open_page(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    page.wait_for_selector("body[data-state=ready]")
    return page


def load(page, role: str, path: Path) -> None:
    page.set_input_files(f"#{role}-file", str(path))
    page.wait_for_function(f"document.getElementById('{role}-canvas').width > 0 && "
                           "document.body.dataset.state === 'idle'")


def paint_stroke(page, points) -> None:
    """A brush stroke on the source canvas through ``points`` (fractions of its box)."""
    box = page.locator("#src-canvas").bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def drag_object(page, dx: float, dy: float) -> None:
    box = page.locator("#dst-canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=6)
    page.mouse.up()


def blend_on_page(page, method: str, folder: Path):
    """Choose ``method``, press Blend, download the result and the mask the page sent;
    returns (result path, mask path, offset (y, x) shown on the page)."""
    page.select_option("#method", method)
    page.click("#blend")
    page.wait_for_function("['done', 'error'].includes(document.body.dataset.state)")
    assert page.evaluate("document.body.dataset.state") == "done", page.text_content("#message")
    paths = []
    for link in ("#download-result", "#download-mask"):
        with page.expect_download() as info:
            page.click(link)
        path = folder / f"{method}-{info.value.suggested_filename}"
        info.value.save_as(path)
        paths.append(path)
    offset = (int(page.input_value("#offset-y")), int(page.input_value("#offset-x")))
    return paths[0], paths[1], offset


@pytest.mark.browser
def test_page_blends_like_gpgan_blend(browser, server, inputs, tmp_path):
    t0 = time.monotonic()
    src_path, dst_path = inputs
    page = open_page(browser, server)
    load(page, "src", src_path)
    load(page, "dst", dst_path)
    # the face, painted in zig-zag strokes
    paint_stroke(page, [(0.32 + 0.1 * (k % 2), 0.16 + 0.04 * k) for k in range(12)])
    paint_stroke(page, [(0.52 - 0.1 * (k % 2), 0.16 + 0.04 * k) for k in range(12)])
    centred = (int(page.input_value("#offset-y")), int(page.input_value("#offset-x")))
    assert centred == (22, 40)  # (300 - 256) / 2, (400 - 320) / 2
    drag_object(page, 30, -41)  # onto the coffee
    src, dst = read_image(src_path), read_image(dst_path)
    for method in ("poisson", "gp"):
        result_png, mask_png, offset = blend_on_page(page, method, tmp_path)
        assert offset != centred  # the drag moved the object
        mask = read_mask(mask_png)
        assert mask.shape == src.shape[:2] and 0.03 < (mask > 0.5).mean() < 0.5
        expected = gpgan.blend(src, dst, mask, method=method, offset=offset)
        got = np.asarray(Image.open(result_png))
        assert got.shape == (300, 400, 3)
        assert np.array_equal(got, np.asarray(Image.open(_png(expected, tmp_path)))), method
        info = page.text_content("#message")
        assert info.startswith(f"{method}: 400x300 in ")
        assert f"(offset {offset[0]},{offset[1]}, scale 1)" in info
        assert page.get_attribute("#cp-img", "src").startswith("blob:")
    shot = os.environ.get("GPGAN_SERVE_SCREENSHOT")
    if shot:
        page.screenshot(path=str(REPO / shot), full_page=True)

    # an uploaded mask (alpha channel) replaces the painted one
    alpha = np.zeros((256, 320, 4), np.uint8)
    alpha[..., 3] = (blob_mask(256, 320, 100, 150, 60, 45) * 255).astype(np.uint8)
    Image.fromarray(alpha, "RGBA").save(tmp_path / "alpha_mask.png")
    page.set_input_files("#mask-file", str(tmp_path / "alpha_mask.png"))
    page.wait_for_function("document.getElementById('message').textContent.includes("
                           "'alpha_mask.png loaded')")
    result_png, mask_png, offset = blend_on_page(page, "poisson", tmp_path)
    assert np.array_equal(read_mask(mask_png), read_mask(tmp_path / "alpha_mask.png"))
    expected = gpgan.blend(src, dst, read_mask(mask_png), method="poisson", offset=offset)
    assert np.array_equal(np.asarray(Image.open(result_png)),
                          np.asarray(Image.open(_png(expected, tmp_path))))

    # no mask painted: one line on the page, and the server goes on
    page.click("#clear-mask")
    page.click("#blend")
    page.wait_for_selector("body[data-state=error]")
    message = page.text_content("#message")
    assert message == ("error: no mask: paint the object on the source image with the "
                       "brush (or upload a mask) before blending")
    # an unreadable file: one line naming it
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    page.set_input_files("#dst-file", str(bad))
    page.wait_for_selector("body[data-state=error]")
    page.wait_for_function("document.getElementById('message').textContent.includes('notes')")
    assert page.text_content("#message") == ("error: destination image 'notes.png': not a "
                                             "readable image (UnidentifiedImageError)")
    # still serving: paint again and blend
    paint_stroke(page, [(0.4, 0.3), (0.6, 0.6)])
    blend_on_page(page, "copy-paste", tmp_path)
    assert server.alive()
    page.close()
    print(f"browser test: {time.monotonic() - t0:.1f} s")


def _png(img, folder: Path) -> Path:
    path = folder / "expected.png"
    path.write_bytes(png_bytes(img))
    return path
