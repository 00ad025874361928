"""``gpgan realism``: score images with the realism judge (front door to
:func:`gpgan.metrics.realism`)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


def register(sub) -> None:
    p = sub.add_parser("realism", help="score how realistic images look (no ground truth)",
                       description="Print one realism score per image, higher = more "
                                   "realistic: the judge's log-odds that the image is a "
                                   "natural photograph rather than a copy-paste composite "
                                   "(0 = undecided; see README, 'Realism').")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="images to score")
    p.add_argument("--mask", nargs="+", metavar="MASK",
                   help="the pasted region: one mask for every image, or one per image; the "
                        "judge then looks at the square around it (default: whole images)")
    p.add_argument("--model",
                   help="judge.pt (default: $GPGAN_REALISM_JUDGE, else the one "
                        "results/*/realism/judge.pt under the current folder)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io import read_image, read_mask
    from ..metrics import find_judge, realism

    model = find_judge(args.model)  # before reading any image: a missing judge is one line
    masks = None
    if args.mask:
        if len(args.mask) not in (1, len(args.images)):
            raise InputError(f"give one mask or one per image: {len(args.mask)} mask(s) for "
                             f"{len(args.images)} image(s)")
        masks = [read_mask(m) for m in args.mask]
        masks = masks * len(args.images) if len(masks) == 1 else masks
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:  # before any score is printed
        raise InputError(f"{missing[0]}: no such file")
    chunk = 32  # images read at a time: any number of files in bounded memory
    for start in range(0, len(args.images), chunk):
        paths = args.images[start:start + chunk]
        scores = realism([read_image(p) for p in paths],
                         None if masks is None else masks[start:start + chunk],
                         model=model, device=args.device)
        for path, score in zip(paths, scores):
            print(f"{score:+.4f}\t{path}", flush=True)
    return 0
