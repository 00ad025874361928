"""``gpgan blend``: blend one object into one scene (front door to :func:`gpgan.blend`)."""

from __future__ import annotations

import time

from ..errors import InputError
from . import pair


_offset = pair(int, "Y,X integers")


def register(sub) -> None:
    from ..blending import METHODS

    p = sub.add_parser("blend", help="blend a source object into a destination image",
                       description="Blend SRC into DST where MASK is non-zero; write OUT "
                                   "(format from its extension).")
    p.add_argument("--src", required=True, help="object image (8/16-bit, grey/RGB/RGBA)")
    p.add_argument("--dst", required=True, help="scene image")
    p.add_argument("--mask", required=True,
                   help="object mask: 0/1, 0/255, RGB, alpha channel or soft; dst's size, "
                        "or src's size with --offset")
    p.add_argument("--out", required=True, help="output image (.png, .jpg, .tif, ...)")
    p.add_argument("--method", default="gp-gan", choices=METHODS, help="default: gp-gan")
    p.add_argument("--model", help="Blending GAN checkpoint (gp-gan)")
    p.add_argument("--color-weight", type=float, default=1.0, help="beta (default 1.0)")
    p.add_argument("--solver", choices=("cg", "dct"), default="cg")
    p.add_argument("--offset", type=_offset, metavar="Y,X",
                   help="top-left of src in dst (src may be smaller; parts outside are "
                        "clipped)")
    p.add_argument("--pyramid", choices=("aspect", "reference"), default="aspect")
    p.add_argument("--preserve-background", action="store_true",
                   help="hold pixels farther than --band px from the mask at dst")
    p.add_argument("--band", type=int, default=5, help="band width in pixels (default 5)")
    p.add_argument("--poisson-boundary", choices=("mask", "box"), default="mask",
                   help="poisson: Dirichlet on the mask's border (Perez, default) or on its "
                        "bounding box (OpenCV seamlessClone's variant, faster)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (gp-gan)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..blending import blend
    from ..io import check_output_path, read_image, read_mask, write_image

    if args.band < 0:
        raise InputError(f"--band must be >= 0, got {args.band}")
    check_output_path(args.out)
    src, dst, mask = read_image(args.src), read_image(args.dst), read_mask(args.mask)
    t0 = time.perf_counter()
    out = blend(src, dst, mask, method=args.method, offset=args.offset,
                color_weight=args.color_weight, solver=args.solver, model=args.model,
                pyramid=args.pyramid, preserve_background=args.preserve_background,
                band=args.band, device=args.device, poisson_boundary=args.poisson_boundary)
    seconds = time.perf_counter() - t0
    write_image(args.out, out)
    if not args.quiet:
        h, w = out.shape[:2]
        print(f"{args.method}: {w}x{h} in {seconds:.3f} s -> {args.out}")
    return 0
