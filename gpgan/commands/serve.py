"""``gpgan serve``: blend your own photos in a local web page (front door to
:func:`gpgan.serve.serve`; needs the ``serve`` extra, imported only when it runs)."""

from __future__ import annotations


def register(sub) -> None:
    from ..serve import MAX_MEGAPIXELS, MAX_UPLOAD_MB

    p = sub.add_parser("serve", help="blend your own photos in a local web page",
                       description="Serve a web page that blends uploaded (or demo) photos: "
                                   "paint the mask, place and scale the object, choose the "
                                   "method, download the PNG. Needs pip install -e .[serve].")
    p.add_argument("--model",
                   help="generator checkpoint for gp-gan, or the authors' released "
                        "blending_gan.npz / unsupervised_blending_gan.npz (converted once) "
                        "(default: every results/*/model/best.pt under the current folder; "
                        "none: no gp-gan)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="default 7860; 0: a free port")
    p.add_argument("--max-megapixels", type=float, default=MAX_MEGAPIXELS,
                   help=f"refuse larger images (default {MAX_MEGAPIXELS:g})")
    p.add_argument("--max-upload-mb", type=float, default=MAX_UPLOAD_MB,
                   help=f"refuse larger requests, all files together (default "
                        f"{MAX_UPLOAD_MB:g} MB)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..serve import serve

    return serve(args.host, args.port, args.model, max_megapixels=args.max_megapixels,
                 max_upload_mb=args.max_upload_mb)
