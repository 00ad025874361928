"""A no-reference realism judge for blends, built the way RealismCNN was.

The paper ranks methods by RealismCNN (Zhu et al., ICCV 2015): an ImageNet CNN
fine-tuned to tell natural photographs from composites whose pasted object keeps its
colour, whose score (higher = more realistic) is computed on blends that have no
ground truth. RealismCNN's Caffe weights cannot be fetched here, so this module
builds a judge from parts that can:

- **Backbone**: the ImageNet AlexNet convolutions that LPIPS uses
  (:mod:`gpgan.weights`), frozen. Its ReLU-1 map (64 channels, 55x55; colour-opponent
  filters), ReLU-2 map (192 channels, 27x27), both average-pooled to 13x13, and ReLU-5
  map (256 channels, 13x13) of a 224x224 view are stacked (512 channels).
- **Head**: ``1x1 conv (512 -> width) - ReLU - 3x3 conv (width -> width) - ReLU``
  (channel dropout on its input while training),
  then the spatial mean and max of the map, then a linear layer to one logit.
  The **score** is that logit: the log-odds that the view is natural (0 =
  undecided; the paper's RealismCNN scores are signed too, -0.696 for copy-paste and
  -0.069 for GP-GAN, but on their own scale).
- **View**: the whole image resized (squashed) to 224x224, or, given the pasted
  region's mask, the square around the mask's bounding box (:func:`context_box`)
  resized to 224x224, so that a small object in a large photograph is seen.
- **Training** (:func:`train_judge`): only on the training split's photographs,
  natural images against copy-paste composites (:mod:`gpgan.data.realism`), half of
  the views whole and half mask-centred. The backbone's features of all samples are
  computed once; the head is trained on them with Adam for a fixed number of steps,
  the mini-batches a pure function of the seed and the step, checkpointed
  atomically, so a killed run resumes (recomputing the features, which are
  deterministic) and ends bit-identical.

Files (:func:`train_judge`, ``<out_dir>``)::

    judge.pt           the whole judge (backbone + head + config): what scoring loads
    train_log.csv      step, loss, accuracy, seconds
    done               JSON summary, written last
    state/judge_state.pt   resumable state (head, optimiser, step)

What it is not: RealismCNN was a VGG fine-tuned end to end on about 25,000 images
with human-made object masks; this judge keeps AlexNet frozen and sees a few
thousand samples drawn from tens of photographs. Its validation AUCs
(:func:`validate_judge`) say how far it can be trusted.

References
----------
J.-Y. Zhu, P. Krähenbühl, E. Shechtman, A. A. Efros. Learning a discriminative model
for the perception of realism in composite images. ICCV 2015.
A. Krizhevsky, I. Sutskever, G. E. Hinton. ImageNet classification with deep
convolutional neural networks. NeurIPS 2012.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError, InputError, ModelError
from .io import atomic_path, to_float_image, to_mask, write_csv
from .models import resolve_device
from .weights import lpips_weights_path

__all__ = [
    "VIEW_SIZE",
    "JUDGE_DEFAULTS",
    "RealismJudge",
    "context_box",
    "view",
    "load_judge",
    "score_images",
    "roc_auc",
    "train_judge",
    "validate_judge",
]

log = logging.getLogger(__name__)

VIEW_SIZE = 224
JUDGE_FORMAT = "gpgan-realism-judge-1"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_TAPS = (1, 4, 11)  # torchvision AlexNet.features: ReLU after conv1, conv2 and conv5
_TAP_CHANNELS = 64 + 192 + 256
#: Memory format of the judge and its inputs. Channels-last, measured on 2 cores of
#: an AMD EPYC restricted to AVX2 (benchmarks/RESULTS.md): backbone 22.2 -> 16.6 ms a
#: view on one thread, 12.3 -> 9.1 ms on two; a head step (batch 128) 196 -> 132 ms on
#: one thread, 167 -> 80 ms on two. Scores change by float round-off only.
_FORMAT = torch.channels_last

#: Training options and their defaults (config section ``realism``).
JUDGE_DEFAULTS = {
    "n_samples": 3000,
    "mix": {"natural": 1.0, "same_photo": 1.0, "other_photo": 1.0, "relit": 0.0},
    "coverage": (0.05, 0.4),
    "mask_views": 0.5,
    "context": 2.0,
    "width": 64,
    "dropout": 0.5,
    "steps": 600,
    "batch_size": 128,
    "lr": 1e-3,
    "weight_decay": 1e-3,
    "checkpoint_every": 200,
    "log_every": 20,
}


class RealismJudge(nn.Module):
    """Frozen AlexNet features + a small trainable head; ``forward`` gives one logit
    (the realism score) per view of shape ``(N, 3, 224, 224)`` in ``[0, 1]``."""

    def __init__(self, width: int = 64, dropout: float = 0.0):
        super().__init__()
        from torchvision.models import alexnet

        self.backbone = alexnet(weights=None).features[: _TAPS[-1] + 1]
        self.backbone.requires_grad_(False)
        self.head = nn.Sequential(
            nn.Dropout2d(dropout), nn.Conv2d(_TAP_CHANNELS, width, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True))
        self.fc = nn.Linear(2 * width, 1)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))
        self.width = width

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The stacked backbone maps ``(N, 512, 13, 13)`` of views ``x``."""
        x = (x - self.mean) / self.std
        taps = []
        for i, layer in enumerate(self.backbone):
            x = layer(x)
            if i in _TAPS:
                taps.append(x)
        size = taps[-1].shape[-2:]
        return torch.cat([F.adaptive_avg_pool2d(t, size) for t in taps], dim=1)

    def classify(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits ``(N,)`` from :meth:`features` maps."""
        h = self.head(feats)
        return self.fc(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


def _load_backbone(judge: RealismJudge, lpips_weights) -> None:
    path = lpips_weights_path(lpips_weights)
    if not path.is_file():
        raise ModelError(f"AlexNet weights not found: {path} is missing; run "
                         f"`gpgan fetch-weights --dest {path.parent}`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    keep = {k: v for k, v in state.items() if int(k.split(".")[0]) <= _TAPS[-1]}
    try:
        judge.backbone.load_state_dict(keep, strict=True)
    except RuntimeError:
        raise ModelError(f"{path}: not AlexNet `features` weights; re-run "
                         "`gpgan fetch-weights --force`") from None


def context_box(mask: np.ndarray, context: float = 2.0) -> tuple[int, int, int]:
    """The square ``(top, left, side)`` a mask-centred view shows.

    Centred on the bounding box of ``mask >= 0.5``, side ``context`` times the box's
    longer side but at least half the image's shorter side and at most all of it,
    moved inside the image. An empty mask gives the centred square of the shorter side.
    """
    h, w = mask.shape
    short = min(h, w)
    ys, xs = np.nonzero(mask >= 0.5)
    if ys.size == 0:
        return (h - short) // 2, (w - short) // 2, short
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = int(round(context * max(y1 - y0, x1 - x0)))
    side = min(short, max(side, (short + 1) // 2))
    top = int(round((y0 + y1) / 2 - side / 2))
    left = int(round((x0 + x1) / 2 - side / 2))
    return min(max(top, 0), h - side), min(max(left, 0), w - side), side


def view(image, mask=None, *, context: float = 2.0, size: int = VIEW_SIZE) -> torch.Tensor:
    """The judge's input for one image: ``(3, size, size)`` float32 in ``[0, 1]``.

    Parameters
    ----------
    image : ndarray (H, W, 3)
        uint8 or float in ``[0, 1]`` (:func:`gpgan.io.to_float_image` rules).
    mask : ndarray (H, W), optional
        The pasted region: the view is the square around it (:func:`context_box`);
        without it, the whole image squashed to a square.
    """
    img = to_float_image(np.asarray(image))
    if mask is not None:
        m = to_mask(np.asarray(mask))
        if m.shape != img.shape[:2]:
            raise InputError(f"mask of shape {m.shape} does not fit an image of shape "
                             f"{img.shape[:2]}")
        top, left, side = context_box(m, context)
        img = img[top:top + side, left:left + side]
    t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                      antialias=True)
    return t[0].clamp_(0.0, 1.0)


@torch.inference_mode()
def _batched(fn, views: list[torch.Tensor], device: torch.device, batch: int = 64):
    out = []
    for i in range(0, len(views), batch):
        x = torch.stack(views[i:i + batch]).to(device).contiguous(memory_format=_FORMAT)
        out.append(fn(x).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def load_judge(path, *, device: str = "auto") -> RealismJudge:
    """Load a judge written by :func:`train_judge` (``judge.pt``), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such realism judge (the workflow's "
                         "results/<run>/realism/judge.pt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a realism judge file ({exc.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != JUDGE_FORMAT:
        raise ModelError(f"{path}: not a realism judge file (format {JUDGE_FORMAT} expected)")
    judge = RealismJudge(width=int(ckpt["config"]["width"]),
                         dropout=float(ckpt["config"]["dropout"]))
    judge.load_state_dict(ckpt["state"], strict=True)
    judge.context = float(ckpt["config"]["context"])
    return judge.to(resolve_device(device), memory_format=_FORMAT).eval()


def score_images(judge: RealismJudge, images, masks=None, *, batch: int = 32) -> np.ndarray:
    """Realism scores (logits, higher = more realistic) of ``images``.

    Parameters
    ----------
    judge : RealismJudge
        From :func:`load_judge`.
    images : sequence of ndarray (H, W, 3)
    masks : sequence of ndarray (H, W) or None, optional
        Per image, the pasted region for a mask-centred view (:func:`view`), or None
        for the whole image.
    """
    images = list(images)
    masks = [None] * len(images) if masks is None else list(masks)
    if len(masks) != len(images):
        raise InputError(f"{len(images)} image(s) but {len(masks)} mask(s)")
    context = getattr(judge, "context", JUDGE_DEFAULTS["context"])
    device = next(judge.parameters()).device
    scores = []
    for i in range(0, len(images), batch):  # views made per batch: bounded memory
        views = [view(im, m, context=context)
                 for im, m in zip(images[i:i + batch], masks[i:i + batch])]
        scores.append(_batched(judge, views, device, batch))
    return torch.cat(scores).numpy().astype(np.float64) if scores else np.zeros(0)


def roc_auc(positive, negative) -> float:
    """Area under the ROC curve of scores (positives should score higher), ties 1/2:
    the Mann-Whitney U statistic over ``len(positive) * len(negative)``."""
    from scipy.stats import rankdata

    pos, neg = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if pos.size == 0 or neg.size == 0:
        return math.nan
    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2
    return float(u / (pos.size * neg.size))


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------

def _judge_config(options: dict) -> dict:
    unknown = sorted(set(options) - set(JUDGE_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown realism option(s) {unknown}; known: {sorted(JUDGE_DEFAULTS)}")
    cfg = {**JUDGE_DEFAULTS, **options}
    cfg["mix"] = {k: float(v) for k, v in dict(cfg["mix"]).items()}
    cfg["coverage"] = tuple(float(c) for c in cfg["coverage"])
    for key in ("n_samples", "width", "steps", "batch_size", "checkpoint_every", "log_every"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ConfigError(f"realism {key} must be an integer >= 1, got {cfg[key]!r}")
    if cfg["n_samples"] < 2:
        raise ConfigError(f"realism n_samples must be >= 2, got {cfg['n_samples']}")
    if not 0.0 <= cfg["mask_views"] <= 1.0:
        raise ConfigError(f"realism mask_views must be in [0, 1], got {cfg['mask_views']}")
    if not cfg["context"] >= 1.0:
        raise ConfigError(f"realism context must be >= 1, got {cfg['context']}")
    lo, hi = cfg["coverage"]
    if not 0.0 < lo <= hi < 1.0:
        raise ConfigError(f"realism coverage must satisfy 0 < lo <= hi < 1, got {cfg['coverage']}")
    if not (cfg["lr"] > 0 and cfg["weight_decay"] >= 0):
        raise ConfigError("realism lr must be > 0 and weight_decay >= 0")
    return cfg


def sample_features(judge: RealismJudge, data, mix: dict, n: int, seed: int, *,
                    coverage=(0.05, 0.4), mask_views: float = 0.5, context: float = 2.0,
                    progress: bool = False, desc: str = "realism features"):
    """Draw ``n`` samples (:func:`gpgan.data.realism.draw_samples`) and return their
    backbone features (float16 ``(n, 512, 13, 13)``), labels (float32, 1 = natural),
    kinds and whether each view was mask-centred (a share ``mask_views``, seeded)."""
    from tqdm import tqdm

    from .data.realism import LABELS, draw_samples

    masked = np.random.default_rng([int(seed), 1]).random(n) < mask_views
    device = next(judge.parameters()).device
    feats, labels, kinds, views = [], [], [], []
    batch = 64
    samples = draw_samples(data, mix, n, seed, coverage=coverage)
    for i, (kind, image, mask) in enumerate(tqdm(samples, total=n, desc=desc,
                                                 disable=not progress, unit="img")):
        views.append(view(image, mask if masked[i] else None, context=context))
        kinds.append(kind)
        labels.append(LABELS[kind])
        if len(views) == batch or i == n - 1:
            feats.append(_batched(judge.features, views, device, batch).half())
            views = []
    return (torch.cat(feats), torch.tensor(labels, dtype=torch.float32), kinds, masked)


def _batch_ids(n: int, batch: int, step: int, seed: int) -> torch.Tensor:
    """Indices of mini-batch ``step``: epochs of seeded permutations (pure function)."""
    per_epoch = max(n // batch, 1)
    epoch, k = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)[k * batch:(k + 1) * batch]


def _save_state(path: Path, judge, opt, step: int, cfg: dict, log_rows: list) -> None:
    with atomic_path(path) as tmp:
        torch.save({"head": judge.head.state_dict(), "fc": judge.fc.state_dict(),
                    "opt": opt.state_dict(), "step": step, "config": cfg, "log": log_rows,
                    "rng": torch.get_rng_state(),  # dropout's draws
                    "cuda_rng": (torch.cuda.get_rng_state_all()
                                 if torch.cuda.is_available() else [])}, tmp)


def _resume(path: Path, judge, opt, cfg: dict) -> tuple[int, list]:
    if not path.is_file():
        return 0, []
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("config") != cfg:
        log.warning("%s: saved with another realism config; starting afresh", path)
        return 0, []
    judge.head.load_state_dict(state["head"])
    judge.fc.load_state_dict(state["fc"])
    opt.load_state_dict(state["opt"])
    torch.set_rng_state(state["rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    log.info("resuming the realism judge at step %d of %d", state["step"], cfg["steps"])
    return int(state["step"]), list(state["log"])


def train_judge(data, out_dir, *, seed: int = 0, lpips_weights=None, device: str = "auto",
                threads: int | None = None, progress: bool = True,
                stop_after: int | None = None, **options) -> Path:
    """Train the realism judge's head on ``data``'s images; returns ``<out_dir>/judge.pt``.

    Parameters
    ----------
    data : gpgan.data.realism.SceneImages
        The training split's scenes (nothing else may be given, see the module).
    out_dir : path-like
        Run folder (module docstring).
    seed : int
        Seed of the samples, the head's initial weights and the mini-batches.
    lpips_weights : path-like, optional
        Folder with the AlexNet backbone (:func:`gpgan.weights.fetch_lpips_weights`).
    device : {"auto", "cpu", "cuda"}
    threads : int, optional
        Torch intra-op threads (CPU).
    stop_after : int, optional
        Stop after this step with the state saved, as a killed run would (tests).
    **options
        :data:`JUDGE_DEFAULTS` keys: ``n_samples`` (feature cache size), ``mix``
        (weights of the sample kinds; each class gets half), ``coverage``,
        ``mask_views``, ``context``, ``width``, ``steps``, ``batch_size``, ``lr``,
        ``weight_decay``, ``checkpoint_every``, ``log_every``.
    """
    from tqdm import tqdm

    cfg = _judge_config(options)
    out = Path(out_dir)
    state_path = out / "state" / "judge_state.pt"
    state_path.parent.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(int(threads))
    dev = resolve_device(device)
    torch.manual_seed(int(seed))
    judge = RealismJudge(width=cfg["width"], dropout=cfg["dropout"])
    _load_backbone(judge, lpips_weights)
    judge = judge.to(dev, memory_format=_FORMAT).eval()
    opt = torch.optim.Adam([*judge.head.parameters(), *judge.fc.parameters()],
                           lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    step, rows = _resume(state_path, judge, opt, cfg)
    t0 = time.perf_counter()
    if step < cfg["steps"]:  # a finished state needs no features
        feats, labels, _, _ = sample_features(
            judge, data, cfg["mix"], cfg["n_samples"], seed, coverage=cfg["coverage"],
            mask_views=cfg["mask_views"], context=cfg["context"], progress=progress)
    feature_s = time.perf_counter() - t0
    judge.train()
    t1 = time.perf_counter()
    bar = tqdm(total=cfg["steps"], initial=step, desc="realism head", disable=not progress)
    while step < cfg["steps"]:
        ids = _batch_ids(len(labels), cfg["batch_size"], step, seed)
        x = feats[ids].to(dev, torch.float32).contiguous(memory_format=_FORMAT)
        y = labels[ids].to(dev)
        logits = judge.classify(x)
        loss = F.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        if step % cfg["log_every"] == 0 or step == cfg["steps"]:
            acc = float(((logits.detach() > 0).float() == y).float().mean())
            rows.append({"step": step, "loss": f"{float(loss.detach()):.6f}",
                         "accuracy": f"{acc:.4f}",
                         "seconds": f"{time.perf_counter() - t1:.3f}"})
        if step % cfg["checkpoint_every"] == 0 or step == cfg["steps"]:
            _save_state(state_path, judge, opt, step, cfg, rows)
        if stop_after is not None and step >= stop_after and step < cfg["steps"]:
            bar.close()
            return state_path
    bar.close()
    judge.eval()
    head_s = time.perf_counter() - t1
    path = out / "judge.pt"
    with atomic_path(path) as tmp:
        torch.save({"format": JUDGE_FORMAT, "config": cfg, "seed": int(seed),
                    "state": {k: v.cpu() for k, v in judge.state_dict().items()}}, tmp)
    write_csv(out / "train_log.csv", ["step", "loss", "accuracy", "seconds"], rows)
    summary = {"steps": cfg["steps"], "samples": cfg["n_samples"],
               "feature_seconds": round(feature_s, 2), "head_seconds": round(head_s, 2),
               "final_loss": float(rows[-1]["loss"]) if rows else None}
    with atomic_path(out / "done") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    log.info("realism judge: %s (features %.1f s, head %.1f s)", path, feature_s, head_s)
    return path


# --------------------------------------------------------------------------------------
# Validation, and the workflow's step
# --------------------------------------------------------------------------------------

def validate_judge(judge: RealismJudge, data, out_dir, *, n: int = 800, seed: int = 1,
                   progress: bool = True) -> dict:
    """Score held-out samples of every kind, whole and mask-centred; write the AUCs.

    ``n`` samples per view type (whole image, mask-centred) are drawn from ``data``
    (held-out photographs only) with all four kinds; natural images are the positives.
    Writes ``<out_dir>/validation.csv`` (``kind, view, score``) and
    ``<out_dir>/validation.json`` (``{"auc": {view: {kind: auc}}, "n": ..., "mean":
    {view: {kind: mean score}}}``) and returns the JSON's dict. The AUC against
    ``other_photo`` says whether the judge separates natural images from the
    copy-paste it was built to catch; the AUC against ``same_photo`` (content seams,
    no colour mismatch) should be near 0.5.
    """
    from .data.realism import KINDS

    context = getattr(judge, "context", JUDGE_DEFAULTS["context"])
    mix = {k: 1.0 for k in KINDS}
    rows, auc, means = [], {}, {}
    for name, share in (("image", 0.0), ("mask", 1.0)):
        feats, _, kinds, _ = sample_features(judge, data, mix, n, seed, mask_views=share,
                                             context=context, progress=progress,
                                             desc=f"realism validation ({name})")
        with torch.inference_mode():
            x = feats.to(next(judge.parameters()).device).float()
            scores = judge.classify(x.contiguous(memory_format=_FORMAT))
        scores = scores.cpu().numpy().astype(np.float64)
        kinds = np.array(kinds)
        auc[name] = {k: round(roc_auc(scores[kinds == "natural"], scores[kinds == k]), 4)
                     for k in KINDS if k != "natural"}
        means[name] = {k: round(float(scores[kinds == k].mean()), 4) for k in KINDS
                       if (kinds == k).any()}
        rows += [{"kind": k, "view": name, "score": f"{s:.5f}"} for k, s in zip(kinds, scores)]
    out = Path(out_dir)
    write_csv(out / "validation.csv", ["kind", "view", "score"], rows)
    result = {"auc": auc, "mean": means, "n": n, "scenes": len(data.scenes)}
    with atomic_path(out / "validation.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    for name, values in auc.items():
        log.info("realism judge validation (%s views): AUC %s", name, values)
    if auc["image"]["other_photo"] < 0.9:
        log.warning("realism judge: AUC %.3f < 0.9 on held-out copy-paste; its table is weak "
                    "evidence", auc["image"]["other_photo"])
    return result


def build_judge(scenes_root, splits_csv, out_dir, *, groups=None, seed: int = 0,
                n_validation: int = 800, lpips_weights=None, device: str = "auto",
                threads: int | None = None, progress: bool = True, **options) -> Path:
    """The workflow's step: train the judge on the ``train`` split's scenes
    (:func:`train_judge`), then validate it on every other split's scenes
    (:func:`validate_judge`); returns ``<out_dir>/judge.pt``.

    Parameters
    ----------
    scenes_root : path-like
        Scene folders (the demo dataset or the cropped Transient Attributes).
    splits_csv : path-like
        ``scene,split`` (:func:`gpgan.data.composites.build_composites`).
    groups : path-like or dict, optional
        Scene -> photograph group (:func:`gpgan.data.scenes.read_groups`): composites
        of kind ``other_photo`` take their region from another group.
    """
    from .data.realism import SceneImages
    from .data.scenes import list_scenes, read_groups, read_splits

    splits = read_splits(splits_csv)
    if groups is not None:
        groups = read_groups(groups)
    index = list_scenes(scenes_root, list(splits), decode=False)  # decoded by `composites`
    train = [s for s, k in splits.items() if k == "train" and s in index]
    held = [s for s, k in splits.items() if k != "train" and s in index]
    if not train or not held:
        raise InputError(f"{splits_csv}: the judge needs train scenes and held-out scenes, "
                         f"got {len(train)} and {len(held)}")
    path = train_judge(SceneImages(scenes_root, {s: index[s] for s in train}, groups),
                       out_dir, seed=seed, lpips_weights=lpips_weights, device=device,
                       threads=threads, progress=progress, **options)
    judge = load_judge(path, device=device)
    validate_judge(judge, SceneImages(scenes_root, {s: index[s] for s in held}, groups),
                   out_dir, n=n_validation, seed=seed + 1, progress=progress)
    return path
