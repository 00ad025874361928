"""``gpgan blend``: blend one object into one scene (front door to :func:`gpgan.blend`)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ..errors import InputError
from . import pair


_offset = pair(int, "Y,X integers")

#: Images at least this large (megapixels) get a progress line per pyramid level.
PROGRESS_MEGAPIXELS = 4.0


def register(sub) -> None:
    from ..blending import METHODS
    from ..io import MAX_MEGAPIXELS
    from ..unsupervised import DEFAULT_LATENT_ITERS

    p = sub.add_parser("blend", help="blend a source object into a destination image",
                       description="Blend SRC into DST where MASK is non-zero; write OUT "
                                   "(format from its extension).")
    p.add_argument("--src", required=True, help="object image (8/16-bit, grey/RGB/RGBA)")
    p.add_argument("--dst", required=True, help="scene image")
    p.add_argument("--mask", required=True,
                   help="object mask: 0/1, 0/255, RGB, alpha channel or soft; dst's size, "
                        "or src's size with --offset")
    p.add_argument("--out", required=True,
                   help="output image (.png, .jpg, .tif, ...); never one of the inputs")
    p.add_argument("--method", default="gp-gan", choices=METHODS, help="default: gp-gan")
    p.add_argument("--model",
                   help="generator: a Blending GAN (gp-gan) or an unsupervised G(z) "
                        "(gp-gan-unsupervised); a checkpoint (.pt) or the authors' released "
                        "blending_gan.npz / unsupervised_blending_gan.npz (converted once "
                        "to a cached .pt)")
    p.add_argument("--offset", type=_offset, metavar="Y,X",
                   help="top-left of src in dst, may be negative (--offset -10,-20); src "
                        "may be smaller; parts outside are clipped")
    add_gp_options(p)
    p.add_argument("--poisson-boundary", choices=("mask", "box"), default="mask",
                   help="poisson: Dirichlet on the mask's border (Perez, default) or on its "
                        "bounding box (OpenCV seamlessClone's variant, faster)")
    p.add_argument("--latent-iters", type=int, default=DEFAULT_LATENT_ITERS,
                   help=f"gp-gan-unsupervised: L-BFGS-B iterations over z (default "
                        f"{DEFAULT_LATENT_ITERS})")
    p.add_argument("--latent-seed", type=int, default=0,
                   help="gp-gan-unsupervised: seed of the starting z (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (gp-gan, "
                                                   "gp-gan-unsupervised)")
    p.add_argument("--max-megapixels", type=float, default=MAX_MEGAPIXELS,
                   help=f"refuse larger images before reading them (default "
                        f"{MAX_MEGAPIXELS:g}; a GP blend needs ~100 bytes per pixel)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run)


def add_gp_options(p, *, ablation: bool = False) -> None:
    """The Gaussian-Poisson options of ``gp`` / ``gp-gan`` (``blend``, ``select-checkpoint``);
    ``ablation``: those of ``beta-ablation``, which sweeps the colour weight with ``gp``."""
    from ..blending import MIN_COLOR_WEIGHT
    from ..poisson import DEFAULT_SOLVER, SOLVERS

    if not ablation:
        p.add_argument("--color-weight", type=float, default=1.0,
                       help=f"beta (default 1.0, at least {MIN_COLOR_WEIGHT:g})")
    p.add_argument("--solver", choices=SOLVERS, default=DEFAULT_SOLVER,
                   help=f"gp, gp-gan and mpb (default {DEFAULT_SOLVER})")
    p.add_argument("--pyramid", choices=("aspect", "reference"), default="aspect")
    p.add_argument("--preserve-background", action="store_true",
                   help="hold pixels farther than --band px from the mask at dst")
    p.add_argument("--band", type=int, default=5, help="band width in pixels (default 5)")
    if not ablation:
        p.add_argument("--gan-region", choices=("mask", "image"), default="mask",
                       help="gp-gan: take G's colour inside the (dilated, feathered) mask "
                            "and the scene's outside it (default), or G's whole image (the "
                            "paper)")


def gp_options(args) -> dict:
    """:func:`gpgan.blend` keyword arguments from :func:`add_gp_options`' flags."""
    if args.band < 0:
        raise InputError(f"--band must be >= 0, got {args.band}")
    opts = dict(solver=args.solver, pyramid=args.pyramid,
                preserve_background=args.preserve_background, band=args.band)
    for key in ("color_weight", "gan_region"):  # not in the ablation's flags
        if hasattr(args, key):
            opts[key] = getattr(args, key)
    return opts


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and os.path.samefile(a, b)
    except OSError:
        return False


class _LevelProgress(list):
    """The ``infos`` list of :func:`gpgan.blending.gp_pyramid`, printing a line to
    stderr as each pyramid level is appended."""

    def __init__(self, levels: int):
        super().__init__()
        self.levels, self.t0 = levels, time.perf_counter()

    def append(self, info) -> None:
        super().append(info)
        if "latent_loss" in info:  # gp-gan-unsupervised's fit of G(z), before level 1
            print(f"  G(z) fitted: {info['latent_iterations']} L-BFGS-B iterations, MSE "
                  f"{info['latent_loss0']:.4g} -> {info['latent_loss']:.4g}, at "
                  f"{time.perf_counter() - self.t0:.1f} s", file=sys.stderr, flush=True)
            return
        h, w = info["size"]
        print(f"  level {info['level'] + 1}/{self.levels} ({w}x{h}) done at "
              f"{time.perf_counter() - self.t0:.1f} s", file=sys.stderr, flush=True)


def run(args) -> int:
    from ..blending import GAN_METHODS, blend, check_color_weight
    from ..io import check_output_path, read_image, read_mask, write_image
    from ..pyramid import level_sizes

    options = gp_options(args)
    if args.max_megapixels <= 0:
        raise InputError(f"--max-megapixels must be > 0, got {args.max_megapixels:g}")
    if args.method in ("gp", *GAN_METHODS):
        check_color_weight(args.color_weight)
    if args.latent_iters < 1:
        raise InputError(f"--latent-iters must be >= 1, got {args.latent_iters}")
    out = Path(args.out)
    for flag in ("src", "dst", "mask", "model"):
        given = getattr(args, flag)
        if given and _same_file(out, Path(given)):
            raise InputError(f"--out {out} is the --{flag} file; write the result elsewhere")
    check_output_path(out)
    model = args.model
    if args.method in GAN_METHODS and model:  # the authors' npz: convert (once) before any work
        from ..chainer import resolve_model_file

        model = resolve_model_file(model)
    limit = args.max_megapixels
    src, dst = read_image(args.src, max_megapixels=limit), read_image(args.dst,
                                                                         max_megapixels=limit)
    mask = read_mask(args.mask, max_megapixels=limit)
    h, w = dst.shape[:2]
    infos = None
    if not args.quiet and h * w >= PROGRESS_MEGAPIXELS * 1e6:
        levels = len(level_sizes(h, w, 64, args.pyramid)) \
            if args.method in ("gp", *GAN_METHODS) else 0
        print(f"{args.method}: blending {w}x{h} ({h * w / 1e6:.1f} MP)"
              + (f", {levels} pyramid levels" if levels else ""), file=sys.stderr, flush=True)
        infos = _LevelProgress(levels) if levels else None
    t0 = time.perf_counter()
    result = blend(src, dst, mask, method=args.method, offset=args.offset, model=model,
                   device=args.device, poisson_boundary=args.poisson_boundary, infos=infos,
                   latent_iters=args.latent_iters, latent_seed=args.latent_seed, **options)
    seconds = time.perf_counter() - t0
    write_image(out, result)
    if not args.quiet:
        print(f"{args.method}: {w}x{h} in {seconds:.3f} s -> {args.out}")
    return 0
