"""`gpgan serve` without a browser: the server-side functions (options from the page's
flags, uploads, scaling, the blend) and the real server over HTTP (errors are one line,
the server goes on, limits hold, gp-gan with a model found in results/)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

import gpgan
from gpgan.cli import main
from gpgan.commands.blend import gp_options
from gpgan.errors import InputError
from gpgan.io import png_bytes, read_image, read_mask
from gpgan.serve import (find_models, option_parser, page_blend, page_options, read_upload,
                         scale_object)

from conftest import blob_mask
from serve_helpers import REPO, Server


def _png(img) -> bytes:
    return png_bytes(img)


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(BytesIO(data)))


@pytest.fixture(scope="module")
def small(photos):
    """A 100x120 object with its mask, and a 160x200 scene."""
    src = photos["astronaut"][60:160, 160:280]
    mask = blob_mask(100, 120, 50, 60, 40, 45)
    dst = photos["coffee"][100:260, 200:400]
    return src, dst, mask


# --- options: the CLI's parser and gp_options --------------------------------------------
def test_page_options_are_the_cli_options():
    method, kwargs = page_options([])
    assert method == "gp"
    defaults = gp_options(option_parser().parse_args([]))
    assert kwargs == dict(defaults, offset=(0, 0), scale=1.0)
    method, kwargs = page_options(["--method", "poisson", "--offset=-10,20", "--scale", "0.5",
                                   "--color-weight", "0.25", "--preserve-background",
                                   "--band", "3", "--solver", "cg"])
    assert method == "poisson"
    assert kwargs["offset"] == (-10, 20) and kwargs["scale"] == 0.5
    assert kwargs["color_weight"] == 0.25 and kwargs["preserve_background"] is True
    assert kwargs["band"] == 3


@pytest.mark.parametrize("flags, message", [
    (["--color-weight", "x"], "argument --color-weight: invalid float value: 'x'"),
    (["--method", "magic"], "argument --method: invalid choice: 'magic'"),
    (["--band", "-1"], "--band must be >= 0, got -1"),
    (["--offset", "3"], "argument --offset: expected Y,X integers, got '3'"),
    (["--model", "/etc/passwd"], "argument --model: invalid choice"),
    (["--rm"], "unrecognized arguments: --rm"),
    (["--method", "gp-gan"], "gp-gan needs a generator: start gpgan serve --model PATH"),
    (["--method", "gp-gan-unsupervised"], "gp-gan-unsupervised needs a generator: start"),
    ("--method gp", "args must be a JSON list of strings"),
])
def test_bad_flags_are_one_line(flags, message):
    with pytest.raises(InputError) as err:
        page_options(flags)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_models_are_labels_never_paths(tmp_path):
    for run in ("b", "a"):
        (tmp_path / "results" / run / "model").mkdir(parents=True)
        (tmp_path / "results" / run / "model" / "best.pt").write_bytes(b"")
    models = find_models(root=tmp_path)
    assert list(models) == ["results/a/model/best.pt", "results/b/model/best.pt"]
    method, kwargs = page_options(["--model", "results/b/model/best.pt"], models)
    assert method == "gp-gan" and kwargs["model"] == tmp_path / "results/b/model/best.pt"
    assert kwargs["gan_region"] == "mask"
    assert find_models(root=tmp_path / "results") == {}
    with pytest.raises(InputError, match="--model nope.pt: no such file"):
        find_models("nope.pt")


# --- pixels ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["poisson", "gp", "laplacian"])
def test_page_blend_is_gpgan_blend_with_offset(small, method):
    src, dst, mask = small
    result, copy, info = page_blend(src, dst, mask, method, offset=(-20, 110),
                                    color_weight=0.5)
    assert np.array_equal(result, gpgan.blend(src, dst, mask, method=method,
                                              offset=(-20, 110), color_weight=0.5))
    assert np.array_equal(copy, gpgan.blend(src, dst, mask, method="copy-paste",
                                            offset=(-20, 110)))
    assert info["width"] == 200 and info["height"] == 160 and info["offset"] == [-20, 110]


def test_scale_resamples_the_object_before_the_blend(small):
    src, dst, mask = small
    s, m = scale_object(src, mask, 0.55)
    assert s.shape == (55, 66, 3) and m.shape == (55, 66)
    assert s.dtype == np.float32 and 0 <= s.min() and s.max() <= 1 and 0 <= m.min() <= m.max() <= 1
    result, _, info = page_blend(src, dst, mask, "poisson", offset=(30, 40), scale=0.55)
    assert np.array_equal(result, gpgan.blend(s, dst, m, method="poisson", offset=(30, 40)))
    assert info["scale"] == 0.55
    big, bm = scale_object(src, mask, 2.0)
    assert big.shape == (200, 240, 3) and abs(bm.mean() - mask.mean()) < 0.01
    assert scale_object(src, mask, 1.0)[0] is src
    with pytest.raises(InputError, match="more than the limit of 0.01 megapixels"):
        scale_object(src, mask, 1.0001 * 10, max_megapixels=0.01)
    with pytest.raises(InputError, match="scale must be > 0"):
        scale_object(src, mask, 0.0)


def test_no_mask_and_wrong_mask_are_one_line(small):
    src, dst, mask = small
    with pytest.raises(InputError, match="^no mask: paint the object"):
        page_blend(src, dst, np.zeros_like(mask), "gp")
    with pytest.raises(InputError, match="the mask is 120x99 but the source is 120x100"):
        page_blend(src, dst, mask[:99], "gp", scale=0.5)


def test_uploads_follow_the_io_rules(small, tmp_path):
    src, _, mask = small
    assert np.array_equal(read_upload(_png(src), "src", "a.png"), read_image_bytes(src))
    m = read_upload(_png(mask), "mask")
    assert np.array_equal(m, mask)
    with pytest.raises(InputError) as err:
        read_upload(b"GIF89a nonsense", "dst", "scene.gif")
    assert str(err.value) == ("destination image 'scene.gif': not a readable image "
                              "(UnidentifiedImageError)")
    with pytest.raises(InputError, match=r"^source image 'x.png': 120x100 is 0.0 megapixels, "
                                         "more than the limit of 0.001"):
        read_upload(_png(src), "src", "x.png", max_megapixels=0.001)
    with pytest.raises(InputError, match="^mask: empty upload"):
        read_upload(b"", "mask")
    # EXIF orientation is applied, as for files
    buf = BytesIO()
    im = Image.fromarray((src * 255).astype(np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(buf, format="JPEG", exif=exif)
    assert read_upload(buf.getvalue(), "src").shape == (120, 100, 3)


def read_image_bytes(img) -> np.ndarray:
    """What read_image gives for the PNG of ``img``."""
    return np.asarray(Image.open(BytesIO(_png(img))), dtype=np.float32) / 255.0


# --- the command without the extra --------------------------------------------------------
def test_serve_without_the_extra_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi -> ImportError
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: gpgan serve needs the optional package(s) fastapi: "
                   "pip install -e .[serve]\n")


def test_gpgan_does_not_import_the_server_packages():
    code = ("import sys, gpgan, gpgan.cli; gpgan.cli.build_parser(); "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'python_multipart') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout
    assert out.strip() == "[]"


# --- the real server over HTTP --------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`gpgan serve` with small limits, in a folder holding a (tiny) trained model."""
    from gpgan.models import Generator, save_generator

    folder = tmp_path_factory.mktemp("served")
    save_generator(Generator(64, 32, 8), folder / "results" / "demo" / "model" / "best.pt")
    srv = Server(folder, "--max-megapixels", "0.1", "--max-upload-mb", "1")
    yield srv
    srv.stop()


def _files(src, dst, mask):
    return {"src": ("src.png", _png(src)), "dst": ("dst.png", _png(dst)),
            "mask": ("mask.png", _png(mask))}


def test_http_blend_config_and_gp_gan(served, small):
    status, body = served.get("api/config")
    config = json.loads(body)
    assert status == 200 and config["methods"][-2:] == ["gp-gan", "gp-gan-unsupervised"]
    assert config["models"] == ["results/demo/model/best.pt"]
    assert config["defaults"]["method"] == "gp-gan" and config["max_megapixels"] == 0.1
    status, page = served.get("")
    assert status == 200 and b"class=\"chooser\" data-role=\"src\"" in page
    src, dst, mask = small
    args = ["--method", "gp-gan", "--offset=10,20", "--model", "results/demo/model/best.pt"]
    status, out = served.post_json("api/blend", {"args": json.dumps(args)},
                                   _files(src, dst, mask))
    assert status == 200, out
    model = served_model(served)
    expected = gpgan.blend(read_image_bytes(src), read_image_bytes(dst),
                           read_mask_bytes(mask), method="gp-gan", offset=(10, 20),
                           model=model)
    assert np.array_equal(_decode(base64.b64decode(out["result"])), _decode(_png(expected)))
    assert out["info"]["method"] == "gp-gan"


def served_model(srv):
    return srv.log.parent / "results" / "demo" / "model" / "best.pt"


def read_mask_bytes(mask) -> np.ndarray:
    return np.asarray(Image.open(BytesIO(_png(mask))), dtype=np.float32) / 255.0


def test_http_errors_are_one_line_and_the_server_goes_on(served, small, photos):
    src, dst, mask = small
    cases = [
        ({"args": "[]"}, _files(src, dst, np.zeros_like(mask)), 400, "no mask: paint"),
        ({"args": "[]"}, {**_files(src, dst, mask), "dst": ("x.png", b"junk")}, 400,
         "destination image 'x.png': not a readable image"),
        ({"args": "[]"}, _files(src, photos["astronaut"][:400, :400], mask), 400,
         "destination image 'dst.png': 400x400 is 0.2 megapixels, more than the limit of 0.1"),
        ({"args": "{"}, _files(src, dst, mask), 400, "args must be a JSON list"),
        ({}, {"src": ("src.png", _png(src))}, 400, "dst: Field required"),
        ({"args": "[]"}, {**_files(src, dst, mask), "src": ("big.bin", b"\0" * 1_200_000)},
         413, "upload of 1.3 MB is more than the limit of 1 MB (gpgan serve --max-upload-mb)"),
    ]  # (1.2 MB and the other two files)
    for fields, files, status, start in cases:
        got, out = served.post_json("api/blend", fields, files)
        assert (got, out["error"][:len(start)]) == (status, start)
        assert "\n" not in out["error"]
    status, out = served.post_json("api/image", {"role": "mask"}, {"file": ("m.png", b"")})
    assert (status, out["error"]) == (400, "mask 'm.png': empty upload (choose a file)")
    status, body = served.get("api/demo/lena")
    assert status == 400 and b"unknown demo photo 'lena'" in body
    # and the server still blends
    status, out = served.post_json("api/blend", {"args": '["--method", "poisson"]'},
                                   _files(src, dst[:100, :120], mask))
    assert status == 200 and out["info"]["method"] == "poisson"
    assert served.alive()


def test_http_image_preview_and_demo(served):
    status, png = served.get("api/demo/chelsea")
    assert status == 200
    from skimage import data
    assert np.array_equal(_decode(png), data.chelsea())
    small = png_bytes(np.asarray(_decode(png)[:200, :300], np.float32) / 255)
    status, preview = served.post("api/image", {"role": "src"}, {"file": ("c.png", small)})
    assert status == 200 and _decode(preview).shape == (200, 300, 3)
    status, body = served.post("api/image", {"role": "src"}, {"file": ("c.png", png)})
    assert status == 400 and b"more than the limit of 0.1" in body  # 451x300 > 0.1 MP


def test_listen_errors_are_one_line(capsys, served):
    port = served.url.rsplit(":", 1)[1].strip("/")
    assert main(["serve", "--port", port]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
