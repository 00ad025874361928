"""``gpgan train`` and ``gpgan select-checkpoint``: thin front doors onto :mod:`gpgan.train`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from .blend import add_gp_options


def _read_config(path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:160]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of training options")
    return data


def _set(cfg: dict, key: str, value) -> dict:
    """Override ``key`` in a flat config or in its ``train:`` section."""
    if value is None:
        return cfg
    cfg = dict(cfg)
    if isinstance(cfg.get("train"), dict):
        cfg["train"] = dict(cfg["train"], **{key: value})
    else:
        cfg[key] = value
    return cfg


def _train(args: argparse.Namespace) -> int:
    from ..train import DEMO_CONFIG, resolve_config, train_from_files

    cfg = _read_config(args.config) if args.config else dict(DEMO_CONFIG)
    if args.section != "train":  # another section of a workflow config: made flat here
        cfg = resolve_config(cfg, section=args.section)
    for key in ("iterations", "device", "seed", "num_workers"):
        cfg = _set(cfg, key, getattr(args, key))
    if args.amp is not None:
        cfg = _set(cfg, "amp", {"auto": "auto", "true": True, "false": False}[args.amp])
    if not args.hdf5 and not (args.train_manifest and args.scenes_root):
        raise ConfigError("gpgan train needs --train-manifest and --scenes-root "
                          "(or --hdf5 with model: unsupervised)")
    result = train_from_files(cfg, args.out_dir, train_csv=args.train_manifest,
                              val_csv=args.val_manifest, scenes_root=args.scenes_root,
                              hdf5=args.hdf5, threads=args.threads, progress=not args.quiet)
    print(f"{result['final']}  ({result['iterations']} iterations, "
          f"{result['seconds']:.1f} s on {result['device']})")
    return 0


def _select(args: argparse.Namespace) -> int:
    from ..select import select_checkpoint
    from .blend import gp_options

    checkpoints = list(args.checkpoints)
    if args.train_dir:
        checkpoints.append(Path(args.train_dir, "checkpoints"))
    if not checkpoints:
        raise ConfigError("no checkpoints given (use --checkpoints or --train-dir)")
    best = select_checkpoint(checkpoints, args.val_composites, args.out_dir,
                             lpips_weights=args.lpips_weights, device=args.device,
                             threads=args.threads, progress=not args.quiet, **gp_options(args))
    print(best)
    return 0


def register(subparsers) -> None:
    """Add ``train`` and ``select-checkpoint`` to the ``gpgan`` CLI."""
    p = subparsers.add_parser(
        "train", help="train the Blending GAN (WGAN + L2) or the unsupervised G(z), resumable",
        description="Train the Blending GAN on composite manifests, or (model: "
                    "unsupervised) the unsupervised GP-GAN's G(z) on the manifests' "
                    "ground truth crops or an HDF5 image file. Re-running the same "
                    "command resumes from OUT_DIR/state; see docs/training.md.")
    p.add_argument("--config", help="YAML of training options (flat or a whole workflow "
                                    "config); default: the demo config")
    p.add_argument("--section", default="train",
                   help="section of a whole workflow config to train (default: train; "
                        "e.g. train_unsupervised)")
    p.add_argument("--train-manifest", help="train split manifest CSV")
    p.add_argument("--val-manifest", help="validation split manifest CSV (the Blending "
                                          "GAN's validation sample grids)")
    p.add_argument("--scenes-root", help="folder the manifests refer to")
    p.add_argument("--hdf5", help="model unsupervised: train on this HDF5 image file "
                                  "(e.g. outdoor_64.hdf5) instead of manifests")
    p.add_argument("--out-dir", required=True, help="run folder (checkpoints, log, final.pt)")
    p.add_argument("--iterations", type=int, help="override the number of G iterations")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--seed", type=int, help="override the seed")
    p.add_argument("--num-workers", dest="num_workers", type=int,
                   help="DataLoader worker processes")
    p.add_argument("--amp", nargs="?", const="true", choices=("auto", "true", "false"),
                   help="precision: auto (the configs' default: bfloat16 autocast where the "
                        "CPU or GPU computes bfloat16 natively, else float32), true "
                        "(autocast; slow where emulated) or false (float32); --amp alone "
                        "means true")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    s = subparsers.add_parser(
        "select-checkpoint", help="pick the checkpoint whose gp-gan blends score best",
        description="Blend the validation composites with gp-gan for every checkpoint and "
                    "score the final images (fMSE, and LPIPS with --lpips-weights) "
                    "against gp; write OUT_DIR/selection.csv and OUT_DIR/best.pt "
                    "(docs/training.md).")
    s.add_argument("--checkpoints", nargs="*", default=[], help="checkpoint files")
    s.add_argument("--train-dir", help="a training out-dir: use its checkpoints/iter_*.pt")
    s.add_argument("--val-composites", required=True,
                   help="validation composites table (composites/validation/validation.csv)")
    s.add_argument("--lpips-weights", help="LPIPS weights folder (gpgan fetch-weights); "
                                           "without it, fMSE alone decides")
    s.add_argument("--out-dir", required=True, help="receives selection.csv and best.pt")
    s.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    s.add_argument("--threads", type=int, help="torch CPU threads")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    add_gp_options(s)
    s.set_defaults(func=_select)
