"""The training configuration of both GANs: every key, its defaults, validation, the
WGAN critic schedule.

``model: blending`` (default) is the Blending GAN ``G(x)`` (WGAN + L2, Adam);
``model: unsupervised`` the unsupervised GP-GAN's plain WGAN ``G(z)``
(:class:`gpgan.models.LatentGenerator`, RMSprop in the paper,
:data:`PAPER_UNSUPERVISED_CONFIG`). One shape for everyone: :func:`resolve_config`
takes a flat dict of :data:`DEFAULT_CONFIG` keys or a whole workflow config (one
section, by default ``train``, the top-level ``seed``, the ``composites`` geometry),
so the workflow, ``gpgan train --config`` and the Python API train the same thing
(``docs/training.md``).
"""

from __future__ import annotations

from .errors import ConfigError
from .precision import AMP_CHOICES

__all__ = [
    "DEFAULT_CONFIG",
    "PAPER_CONFIG",
    "PAPER_UNSUPERVISED_CONFIG",
    "DEMO_CONFIG",
    "MODELS",
    "OPTIMIZERS",
    "RESUME_FREE",
    "WORKFLOW_ONLY",
    "BLENDING_ONLY",
    "UNSUPERVISED_ONLY",
    "resolve_config",
    "config_changes",
    "critic_steps",
    "batches_per_iteration",
    "iterations_for_epochs",
]

#: ``model`` values: the Blending GAN ``G(x)`` or the unsupervised GP-GAN's ``G(z)``.
MODELS = ("blending", "unsupervised")

#: ``optimizer`` values (both networks use the same kind).
OPTIMIZERS = ("adam", "rmsprop")

#: Every key :func:`train` understands, with the paper's values as defaults.
DEFAULT_CONFIG: dict = {
    "seed": 0,
    "model": "blending",  # or "unsupervised": G(z), a plain WGAN (no composites, no L2)
    # architecture (gpgan.models)
    "image_size": 64,
    "nz": 100,  # length of z (model unsupervised only)
    "n_bottleneck": 4000,
    "base_width": 64,
    "critic_width": None,  # None: same as base_width
    "mask_input": False,  # options beyond the paper (gpgan.models)
    "skip": False,
    "output": "image",
    "affine_grid": 16,
    # data
    "batch_size": 64,
    "ratio": 0.5,  # pasted centre fraction (CompositeDataset; train_from_manifests only)
    "num_workers": 0,
    # length: `iterations` generator steps, or (if None) as many as `epochs` passes allow
    "iterations": None,
    "epochs": 25,
    # optimisation
    "optimizer": "adam",  # or "rmsprop" (lr_g / lr_d; no betas)
    "lr_g": 2e-3,
    "lr_d": 2e-4,
    "beta1": 0.5,
    "beta2": 0.999,
    "l2_weight": 0.999,
    "clamp": 0.01,
    "critic_iters": 5,
    "critic_iters_boost": 100,
    "boost_first": 25,
    "boost_every": 500,  # 0 disables the periodic boost
    # bookkeeping
    "checkpoint_every": 500,
    "log_every": 10,
    "n_samples": 8,
    # hardware
    "device": "auto",
    "amp": "auto",  # autocast: "auto" (bfloat16 where native, gpgan.precision), true, false
    "amp_dtype": "bfloat16",  # amp: true's type, or "float16" (CUDA only; gradient scalers)
}

#: The paper's schedule: 25 epochs over 150,000 composites, batch 64 (a GPU day).
PAPER_CONFIG: dict = dict(DEFAULT_CONFIG)

#: The paper's unsupervised GP-GAN (SPEC.md, "Unsupervised GP-GAN"): G(z) with
#: nz=100, widths 512-256-128-64, the same critic and critic schedule, RMSprop with
#: lr 5e-5 for both networks, batch 128, 25 epochs (of ``outdoor_64.hdf5``).
PAPER_UNSUPERVISED_CONFIG: dict = dict(DEFAULT_CONFIG, model="unsupervised", nz=100,
                                       optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5,
                                       batch_size=128, epochs=25)

#: The demo's generator and schedule (``config/config.yaml``): the same loop and losses;
#: a 256-channel bottleneck, half the widths (32-64-128-256), the mask as input, U-Net
#: skips and the affine colour head (:mod:`gpgan.models`), 800 generator iterations
#: with one critic step each (5 for the first 10) (docs/training.md).
DEMO_CONFIG: dict = dict(DEFAULT_CONFIG, n_bottleneck=256, base_width=32, mask_input=True,
                         skip=True, output="affine", affine_grid=16, iterations=800,
                         critic_iters=1, critic_iters_boost=5, boost_first=10,
                         boost_every=0, checkpoint_every=100, log_every=10)

#: Keys that may change between a run and its resumption.
RESUME_FREE = frozenset({"iterations", "epochs", "num_workers", "device", "checkpoint_every",
                         "log_every", "n_samples", "amp", "amp_dtype"})

#: Keys of a workflow's training sections that are not training options (SLURM runtime;
#: the ``train_unsupervised`` section's choice of images, which picks the rule's inputs).
WORKFLOW_ONLY = frozenset({"runtime_min", "data"})


# --------------------------------------------------------------------------------------
# Configuration and schedule
# --------------------------------------------------------------------------------------

#: Keys the Blending GAN uses and ``model: unsupervised`` does not (they must keep
#: their defaults there), and the reverse.
BLENDING_ONLY = ("n_bottleneck", "mask_input", "skip", "output", "affine_grid", "l2_weight")
UNSUPERVISED_ONLY = ("nz",)


def _workflow_section(cfg: dict, section: str) -> dict:
    """The training keys of a whole workflow config's ``section``, with the top-level
    ``seed`` and the ``composites`` geometry unless the section sets them."""
    if not isinstance(cfg.get(section), dict):
        raise ConfigError(f"workflow config has no `{section}:` section")
    out = {k: v for k, v in cfg[section].items() if k not in WORKFLOW_ONLY}
    if section == "train_unsupervised":  # the workflow's G(z) section: model implied
        out.setdefault("model", "unsupervised")
    if "seed" not in out and "seed" in cfg:
        out["seed"] = cfg["seed"]
    geometry = ("image_size",) if out.get("model") == "unsupervised" else ("image_size", "ratio")
    for key in geometry:  # the composites' geometry (ratio: pasted centre, Blending GAN)
        if key not in out and key in (cfg.get("composites") or {}):
            out[key] = cfg["composites"][key]
    return out


def resolve_config(cfg: dict | None, section: str = "train") -> dict:
    """Fill defaults into a training config and validate it.

    ``cfg`` is either flat (the keys of :data:`DEFAULT_CONFIG`) or a whole workflow
    config (``config/config.yaml``, ``config/paper.yaml``: it has a ``train`` mapping):
    then its ``section`` (``train``, or e.g. ``train_unsupervised``, which must then
    say ``model: unsupervised``) is used, without the workflow-only keys
    (:data:`WORKFLOW_ONLY`), with the top-level ``seed`` and the ``composites``
    section's ``image_size`` and (for the Blending GAN) ``ratio`` unless the section
    sets them. The workflow, ``gpgan train --config`` and ``train_from_manifests`` all
    go through here, so they train the same thing. Unknown keys raise
    :class:`~gpgan.errors.ConfigError` (typos must not silently train the paper model),
    and so do keys the chosen ``model`` / ``optimizer`` does not use
    (:data:`BLENDING_ONLY`, :data:`UNSUPERVISED_ONLY`, the Adam betas) set away from
    their defaults.
    """
    cfg = dict(cfg or {})
    if isinstance(cfg.get("train"), dict) or isinstance(cfg.get(section), dict):
        cfg = _workflow_section(cfg, section)  # a workflow config: one section
    unknown = sorted(set(cfg) - set(DEFAULT_CONFIG))
    if unknown:
        raise ConfigError(f"unknown training config key(s) {unknown}; "
                          f"known: {sorted(DEFAULT_CONFIG)}")
    out = dict(DEFAULT_CONFIG, **cfg)
    if out["critic_width"] is None:
        out["critic_width"] = out["base_width"]

    def need(key, kind, low=None, allow_none=False):
        v = out[key]
        if v is None and allow_none:
            return
        ok = isinstance(v, kind) and not isinstance(v, bool) if kind is not bool \
            else isinstance(v, bool)
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            out[key] = v = float(v)
            ok = True
        if not ok or (low is not None and v < low):
            raise ConfigError(f"training config {key}={v!r}: expected "
                              f"{kind.__name__}{'' if low is None else f' >= {low}'}")

    for key in ("seed", "boost_every"):
        need(key, int, 0)
    for key in ("image_size", "nz", "n_bottleneck", "base_width", "critic_width", "batch_size",
                "critic_iters", "critic_iters_boost", "checkpoint_every", "log_every"):
        need(key, int, 1)
    for key in ("boost_first", "num_workers", "n_samples"):
        need(key, int, 0)
    need("iterations", int, 1, allow_none=True)
    need("epochs", float, 0.0, allow_none=True)
    for key in ("lr_g", "lr_d", "beta1", "beta2", "l2_weight", "clamp", "ratio"):
        need(key, float, 0.0)
    for key in ("mask_input", "skip"):
        need(key, bool)
    if out["amp"] not in AMP_CHOICES or not isinstance(out["amp"], (bool, str)):
        raise ConfigError(f"training config amp={out['amp']!r}: use auto, true or false")
    if not 0.0 <= out["l2_weight"] <= 1.0:
        raise ConfigError(f"training config l2_weight={out['l2_weight']} not in [0, 1]")
    if out["iterations"] is None and not out["epochs"]:
        raise ConfigError("training config needs `iterations` or `epochs`")
    if out["amp_dtype"] not in ("bfloat16", "float16"):
        raise ConfigError(f"training config amp_dtype={out['amp_dtype']!r}: "
                          "use bfloat16 or float16")
    _check_choices(out)
    return out


def _check_choices(out: dict) -> None:
    """``model`` and ``optimizer``, and no key set that they leave unused."""
    for key, allowed in (("model", MODELS), ("optimizer", OPTIMIZERS)):
        if out[key] not in allowed:
            raise ConfigError(f"training config {key}={out[key]!r}: use "
                              f"{' or '.join(allowed)}")
    unused = UNSUPERVISED_ONLY if out["model"] == "blending" else BLENDING_ONLY
    if out["optimizer"] == "rmsprop":
        unused += ("beta1", "beta2")
    for key in unused:
        if out[key] != DEFAULT_CONFIG[key]:
            what = f"optimizer: {out['optimizer']}" if key.startswith("beta") \
                else f"model: {out['model']}"
            raise ConfigError(f"training config {key}={out[key]!r} is not used by {what} "
                              f"(leave it out)")


def config_changes(old: dict, new: dict) -> list[str]:
    """``"key: old -> new"`` for every key outside :data:`RESUME_FREE` that differs (a
    run must not be resumed under them). A key missing from ``old`` (a run saved
    before the key existed) counts as its default, which is what that run used."""
    was = {k: old.get(k, DEFAULT_CONFIG[k]) for k in DEFAULT_CONFIG}
    return [f"{k}: {was[k]!r} -> {new[k]!r}" for k in sorted(DEFAULT_CONFIG)
            if k not in RESUME_FREE and was[k] != new[k]]


def critic_steps(iteration: int, cfg: dict) -> int:
    """Critic steps before generator step ``iteration`` (0-based), per the WGAN schedule."""
    boost = iteration < cfg["boost_first"] or (
        cfg["boost_every"] > 0 and iteration % cfg["boost_every"] == 0)
    return cfg["critic_iters_boost"] if boost else cfg["critic_iters"]


def batches_per_iteration(iteration: int, cfg: dict) -> int:
    """Data batches generator iteration ``iteration`` draws: one per critic step, plus
    the generator step's for the Blending GAN (``G(z)``'s generator step needs no data,
    as in the authors' ``WassersteinUpdater``)."""
    return critic_steps(iteration, cfg) + (cfg.get("model", "blending") == "blending")


def iterations_for_epochs(epochs: float, batches_per_epoch: int, cfg: dict) -> int:
    """Generator iterations whose data batches (:func:`batches_per_iteration`) fit in
    ``epochs`` passes."""
    budget = int(epochs * batches_per_epoch)
    it = used = 0
    while used + batches_per_iteration(it, cfg) <= budget:
        used += batches_per_iteration(it, cfg)
        it += 1
    return it
