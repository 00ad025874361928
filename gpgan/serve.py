"""``gpgan serve``: blend your own photos in a local web page.

The page (``gpgan/assets/serve/index.html``, plain HTML and JavaScript with canvases)
lets a user pick a source and a destination (uploads or the demo photos shipped in
scikit-image), paint the object's mask with a brush (or upload a mask), move and
scale the object over the destination, choose the method and its main options, and
see the blend beside the copy-paste composite, ready to download as PNG.

Everything the page does to pixels happens here, through the CLI's own pieces:
uploads are read by :mod:`gpgan.io`'s rules (size guard on the header, EXIF
orientation, 8/16-bit, one-line errors), the options arrive as ``gpgan blend`` flags
and are parsed by the CLI's :func:`gpgan.commands.blend.add_gp_options` /
:func:`~gpgan.commands.blend.gp_options`, and the blend is :func:`gpgan.blend` with
``offset=``. The one step the CLI lacks is ``--scale``: the source and its mask are
resampled (:func:`scale_object`) before the blend.

HTTP (FastAPI, served by uvicorn; both optional, ``pip install -e .[serve]``):

``GET /``                  the page
``GET /api/config``        methods, option defaults, models, demo photos, limits
``GET /api/demo/{name}``   a demo photo as PNG
``POST /api/image``        one upload (``file``, ``role`` = src | dst | mask) read as
                           :func:`gpgan.blend` will read it -> 8-bit PNG preview
``POST /api/blend``        ``src``, ``dst``, ``mask`` files and ``args`` (a JSON list of
                           flags) -> JSON: the blend and the copy-paste as base64 PNGs
                           (exactly the bytes :func:`gpgan.io.png_bytes` gives), info

Bad input is a :class:`~gpgan.errors.GPGANError`: the answer is HTTP 400 (413 for an
upload over the limit) with ``{"error": "<one line>"}``, shown on the page, and the
server goes on. POST bodies must declare their length (``Content-Length``, as
browsers do) and stay under ``max_upload_mb``.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations,
# which name classes imported inside create_app (fastapi is optional).
import argparse
import base64
import json
import socket
import sys
import tempfile
import threading
import time
import traceback
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import DependencyError, GPGANError, InputError

__all__ = ["DEMO_PHOTOS", "MAX_MEGAPIXELS", "MAX_UPLOAD_MB", "SERVE_PACKAGES",
           "check_installed", "find_models", "page_methods", "option_parser",
           "page_options", "read_upload", "scale_object", "page_blend", "create_app",
           "serve"]

#: Largest image (megapixels) the page blends by default: a GP blend of 16 MP takes
#: ~2 s and 1.5 GB on 2 cores (README, Performance); ``--max-megapixels`` changes it.
MAX_MEGAPIXELS = 25.0
#: Largest POST body (all uploads of one request together), in MB (10^6 bytes).
MAX_UPLOAD_MB = 100.0
#: Demo photos offered by the page (``skimage.data`` functions, shipped offline).
DEMO_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
#: The optional packages of the ``serve`` extra (import name: distribution name).
SERVE_PACKAGES = {"fastapi": "fastapi", "uvicorn": "uvicorn",
                  "python_multipart": "python-multipart"}
#: Resampling of the object by ``--scale`` (:func:`gpgan.pyramid.resize`'s kernel).
SCALE_KERNEL = "cubic"

_ROLES = {"src": "source image", "dst": "destination image", "mask": "mask"}
_NO_MASK = ("no mask: paint the object on the source image with the brush (or upload a "
            "mask) before blending")


def check_installed() -> None:
    """Raise :class:`DependencyError` (one line) when the ``serve`` extra is missing."""
    missing = []
    for module, dist in SERVE_PACKAGES.items():
        try:
            __import__(module)
        except ImportError:
            missing.append(dist)
    if missing:
        raise DependencyError(f"gpgan serve needs the optional package(s) "
                              f"{', '.join(missing)}: pip install -e .[serve]")


# --------------------------------------------------------------------------------------
# Models and options
# --------------------------------------------------------------------------------------
def find_models(model=None, root=".") -> dict[str, Path]:
    """The generators the page offers for ``gp-gan`` and ``gp-gan-unsupervised``:
    ``model`` alone when given (it must exist; the authors' npz is converted now, once,
    and its cached ``.pt`` served: :func:`gpgan.chainer.resolve_model_file`), otherwise
    every ``results/*/model/best.pt`` (Blending GAN) and
    ``results/*/model/unsupervised/best.pt`` under ``root`` (sorted). Label (what the
    page shows and sends) -> absolute path."""
    if model is not None:
        from .chainer import resolve_model_file

        path = Path(model)
        if not path.is_file():
            raise InputError(f"--model {model}: no such file")
        return {str(model): resolve_model_file(path).resolve()}
    found = sorted(p for name in ("best.pt", "unsupervised/best.pt")
                   for p in Path(root).glob(f"results/*/model/{name}"))
    return {str(p.relative_to(root)): p.resolve() for p in found}


class _PageArgs(argparse.ArgumentParser):
    """An argument parser whose errors are one-line :class:`InputError` s (the page
    shows them) instead of a usage message and ``SystemExit``."""

    def error(self, message):
        raise InputError(message)


def page_methods(models=()) -> list[str]:
    """:data:`gpgan.blending.METHODS`, less the two GAN methods when there is no model
    (a model of the other kind than the method's is refused by the blend, one line)."""
    from .blending import GAN_METHODS, METHODS

    return [m for m in METHODS if m not in GAN_METHODS or models]


def option_parser(models=()) -> argparse.ArgumentParser:
    """The flags the page sends: ``gpgan blend``'s ``--method``, ``--offset`` and
    Gaussian-Poisson options (the CLI's own :func:`add_gp_options`), ``--model`` as one
    of the labels of ``models`` (never a path: the page cannot load arbitrary files),
    and ``--scale``."""
    from .blending import METHODS
    from .commands import pair
    from .commands.blend import add_gp_options
    from .unsupervised import DEFAULT_LATENT_ITERS

    p = _PageArgs(prog="page", add_help=False, allow_abbrev=False)
    p.add_argument("--method", choices=METHODS, default="gp-gan" if models else "gp")
    p.add_argument("--offset", type=pair(int, "Y,X integers"), default=(0, 0))
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--model", choices=list(models), default=next(iter(models), None))
    p.add_argument("--latent-iters", type=int, default=DEFAULT_LATENT_ITERS)
    add_gp_options(p)
    return p


def page_options(flags, models=()) -> tuple[str, dict]:
    """``(method, blend keyword arguments)`` from the page's flags (a list of strings,
    e.g. ``["--method", "gp", "--color-weight", "0.5", "--preserve-background"]``).

    Raises :class:`InputError` (one line) for an unknown flag or a bad value, and for
    ``gp-gan`` without a model.
    """
    from .blending import GAN_METHODS
    from .commands.blend import gp_options

    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise InputError("args must be a JSON list of strings (gpgan blend flags)")
    args = option_parser(models).parse_args(flags)
    if args.method not in page_methods(models):
        raise InputError(f"{args.method} needs a generator: start gpgan serve --model PATH "
                         "(or where results/*/model/best.pt or unsupervised/best.pt "
                         "exists)")
    if args.latent_iters < 1:
        raise InputError(f"--latent-iters must be >= 1, got {args.latent_iters}")
    kwargs = dict(gp_options(args), offset=args.offset, scale=args.scale)
    if args.method in GAN_METHODS:
        kwargs.update(model=models[args.model], latent_iters=args.latent_iters)
    return args.method, kwargs


# --------------------------------------------------------------------------------------
# Pixels
# --------------------------------------------------------------------------------------
def read_upload(data: bytes, role: str, name: str = "",
                max_megapixels: float = MAX_MEGAPIXELS) -> np.ndarray:
    """Read one uploaded file as :func:`gpgan.io.read_image` / :func:`~gpgan.io.read_mask`
    read files (``role`` ``"mask"``: a mask, otherwise an image), with every rule and
    one-line error of theirs; the errors name the upload (``source image 'x.jpg'``)."""
    from .io import read_image, read_mask

    label = f"{_ROLES.get(role, role)}" + (f" {name!r}" if name else "")
    if not data:
        raise InputError(f"{label}: empty upload (choose a file)")
    with tempfile.TemporaryDirectory(prefix="gpgan-serve-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        read = read_mask if role == "mask" else read_image
        try:
            return read(path, max_megapixels=max_megapixels)
        except InputError as exc:
            raise InputError(str(exc).replace(str(path), label)) from None


def scale_object(src: np.ndarray, mask: np.ndarray, scale: float,
                 max_megapixels: float = MAX_MEGAPIXELS) -> tuple[np.ndarray, np.ndarray]:
    """Resample the object (``src`` ``(h, w, 3)`` and its ``mask`` ``(h, w)``) by
    ``scale`` to ``(round(h * scale), round(w * scale))`` (at least 1 px): ``src`` with
    :func:`gpgan.pyramid.resize` (:data:`SCALE_KERNEL`, antialiased when shrinking,
    clipped to [0, 1]), the mask with :func:`gpgan.pyramid.resize_mask` (soft)."""
    from ._arrays import chw, hwc
    from .pyramid import resize, resize_mask

    if not (np.isfinite(scale) and scale > 0):
        raise InputError(f"scale must be > 0, got {scale:g}")
    h, w = mask.shape
    if src.shape[:2] != (h, w):
        raise InputError(f"the mask is {w}x{h} but the source is {src.shape[1]}x"
                         f"{src.shape[0]} (width x height): paint it on the source")
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if size[0] * size[1] > max_megapixels * 1e6:
        raise InputError(f"scale {scale:g} makes the {w}x{h} source {size[1]}x{size[0]}, "
                         f"more than the limit of {max_megapixels:g} megapixels")
    if size == (h, w):
        return src, mask
    return hwc(resize(chw(src), size, SCALE_KERNEL), clip=True), resize_mask(mask, size)


def page_blend(src, dst, mask, method: str, *, offset=(0, 0), scale: float = 1.0,
               max_megapixels: float = MAX_MEGAPIXELS, **options):
    """What the page's Blend button computes: ``(blend, copy_paste, info)``.

    ``src`` and its ``mask`` (``src``'s size) are scaled by :func:`scale_object`, then
    both images are :func:`gpgan.blend` with ``offset`` (the object's top-left corner
    in ``dst``, may be negative), ``method`` and ``options``, and with ``copy-paste``.
    With ``scale=1`` this is exactly ``gpgan.blend(src, dst, mask, method,
    offset=offset, **options)``, i.e. ``gpgan blend ... --offset Y,X``.
    """
    from .blending import blend
    from .io import to_float_image, to_mask

    src, mask = to_float_image(src, name="src"), to_mask(mask)
    if not mask.any():
        raise InputError(_NO_MASK)
    src, mask = scale_object(src, mask, scale, max_megapixels)
    t0 = time.perf_counter()
    result = blend(src, dst, mask, method=method, offset=offset, **options)
    seconds = time.perf_counter() - t0
    copy = blend(src, dst, mask, method="copy-paste", offset=offset)
    h, w = result.shape[:2]
    info = dict(method=method, width=w, height=h, seconds=round(seconds, 4),
                offset=list(offset), scale=scale)
    return result, copy, info


# --------------------------------------------------------------------------------------
# The web app
# --------------------------------------------------------------------------------------
def _page() -> str:
    return resources.files("gpgan").joinpath("assets/serve/index.html").read_text("utf-8")


def _demo_png(name: str) -> bytes:
    from skimage import data

    from .io import png_bytes, to_float_image

    if name not in DEMO_PHOTOS:
        raise InputError(f"unknown demo photo {name!r} (one of {', '.join(DEMO_PHOTOS)})")
    return png_bytes(to_float_image(getattr(data, name)(), name=name))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__


class _UploadLimit:
    """ASGI wrapper: a POST body must declare its length (``Content-Length``) and stay
    within ``max_bytes``; otherwise the answer is 411 / 413 with a one-line error (the
    body is read and dropped first, so the browser sees the answer, not a reset)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is None:
            status, text = 411, "an upload must declare its size (Content-Length)"
        elif not length.isdigit():
            status, text = 400, "bad Content-Length"
        elif int(length) > self.max_bytes:
            status = 413
            text = (f"upload of {int(length) / 1e6:.1f} MB is more than the limit of "
                    f"{self.max_bytes / 1e6:g} MB (gpgan serve --max-upload-mb)")
        else:
            return await self.app(scope, receive, send)
        more = status != 411  # a chunked body of unknown size is not drained
        while more:
            message = await receive()
            more = message.get("more_body", False) and message["type"] == "http.request"
        body = json.dumps({"error": text}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app(models: dict[str, Path] | None = None, *,
               max_megapixels: float = MAX_MEGAPIXELS, max_upload_mb: float = MAX_UPLOAD_MB,
               log=sys.stderr):
    """The ASGI app of ``gpgan serve`` (FastAPI inside :class:`_UploadLimit`).

    ``models``: label -> checkpoint (:func:`find_models`); ``gp-gan`` and
    ``gp-gan-unsupervised`` are offered when there is one. Blends run one at a time
    (each may use all cores and GBs).
    """
    check_installed()
    from fastapi import FastAPI, File, Form, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from .io import png_bytes

    models = dict(models or {})
    app = FastAPI(title="gpgan serve", docs_url=None, redoc_url=None, openapi_url=None)
    one_blend = threading.Lock()

    def say(text: str) -> None:
        print(f"gpgan serve: {text}", file=log, flush=True)

    @app.exception_handler(GPGANError)
    async def _bad_input(request: Request, exc: GPGANError):
        say(f"{request.url.path}: error: {_one_line(exc)}")
        return JSONResponse({"error": _one_line(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _bad_form(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"},
                            status_code=400)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        traceback.print_exception(exc, file=log)
        return JSONResponse({"error": f"internal error ({exc.__class__.__name__}: "
                                      f"{_one_line(exc)[:200]}); see the server's log"},
                            status_code=500)

    @app.get("/", response_class=HTMLResponse)
    def page():
        return HTMLResponse(_page())

    @app.get("/api/config")
    def config():
        defaults = vars(option_parser(models).parse_args([]))
        return {"methods": page_methods(models), "defaults": defaults,
                "models": list(models), "demos": list(DEMO_PHOTOS),
                "max_megapixels": max_megapixels, "max_upload_mb": max_upload_mb}

    @app.get("/api/demo/{name}")
    def demo(name: str):
        return Response(_demo_png(name), media_type="image/png")

    @app.post("/api/image")
    def image(file: UploadFile = File(...), role: str = Form(...)):
        if role not in _ROLES:
            raise InputError(f"role must be one of {', '.join(_ROLES)}, got {role!r}")
        arr = read_upload(file.file.read(), role, file.filename or "", max_megapixels)
        h, w = arr.shape[:2]
        return Response(png_bytes(arr), media_type="image/png",
                        headers={"X-Image-Size": f"{w}x{h}"})

    @app.post("/api/blend")
    def blend(src: UploadFile = File(...), dst: UploadFile = File(...),
              mask: UploadFile = File(...), args: str = Form("[]")):
        try:
            flags = json.loads(args)
        except ValueError:
            raise InputError("args must be a JSON list of strings (gpgan blend flags)") \
                from None
        method, options = page_options(flags, models)
        arrays = [read_upload(f.file.read(), role, f.filename or "", max_megapixels)
                  for f, role in ((src, "src"), (dst, "dst"), (mask, "mask"))]
        with one_blend:
            result, copy, info = page_blend(*arrays, method,
                                            max_megapixels=max_megapixels, **options)
        say(f"{method}: {info['width']}x{info['height']} in {info['seconds']:.3f} s")
        b64 = lambda img: base64.b64encode(png_bytes(img)).decode("ascii")  # noqa: E731
        return {"result": b64(result), "copy_paste": b64(copy), "info": info}

    return _UploadLimit(app, int(max_upload_mb * 1e6))


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one), or one line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(host: str = "127.0.0.1", port: int = 7860, model=None, *,
          max_megapixels: float = MAX_MEGAPIXELS, max_upload_mb: float = MAX_UPLOAD_MB,
          root=".") -> int:
    """Run the page's server until interrupted (Ctrl-C). Prints the page's address
    (the real port when ``port`` is 0) on stdout first."""
    check_installed()
    import uvicorn

    if max_megapixels <= 0 or max_upload_mb <= 0:
        raise InputError("--max-megapixels and --max-upload-mb must be > 0")
    models = find_models(model, root)
    app = create_app(models, max_megapixels=max_megapixels, max_upload_mb=max_upload_mb)
    sock = _listen(host, port)
    shown_host, shown_port = sock.getsockname()[:2]
    shown_host = f"[{shown_host}]" if ":" in shown_host else shown_host
    print(f"gpgan serve: http://{shown_host}:{shown_port}/ (Ctrl-C to stop)", flush=True)
    print("gpgan serve: gp-gan " + (f"with {', '.join(models)}" if models else
                                    "not offered (no --model, no results/*/model/best.pt)"),
          file=sys.stderr, flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"gpgan serve: warning: listening on {host}: anyone who can reach this "
              "machine can use the page", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
    return 0
