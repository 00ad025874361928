# Configuration validation, paths and input functions (no logic in the rules).
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")


def check_fractions():
    """The split fractions must sum to 1 (a schema cannot say so): stop at parse time."""
    fractions = config["composites"]["fractions"]
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-6:
        raise WorkflowError(
            f"config composites.fractions must sum to 1, got {total:g} ({fractions})"
        )


check_fractions()


def check_realism():
    """The realism table compares every method with copy-paste: it must be blended."""
    if config["realism"]["enabled"] and "copy-paste" not in config["blend"]["methods"]:
        raise WorkflowError(
            "config realism.enabled needs copy-paste in blend.methods (the realism "
            "table counts the composites where each method beats it)"
        )


check_realism()

RUN = f"results/{config['run']}"
LOGS = f"logs/{config['run']}"
METHODS = config["blend"]["methods"]
# ids of the test composites (gpgan.data.composites.make_test_composites: 0000, 0001, ...)
TEST_IDS = [f"{i:04d}" for i in range(config["composites"]["n_test"])]
REALISM = config["realism"]
# ids of the cross-scene composites (gpgan.data.composites.make_cross_composites)
CROSS_IDS = [f"{i:04d}" for i in range(REALISM["n_cross"])]
TRANSIENT = config["dataset"]["transient"]
OUTDOOR = config["dataset"]["outdoor_64"]


wildcard_constraints:
    method="|".join(m.replace("-", "\\-") for m in METHODS),


def scenes_dir():
    """Folder of scene folders: the demo dataset or the cropped Transient Attributes."""
    if config["dataset"]["source"] == "demo":
        return "resources/demo/scenes"
    return "resources/transient/scenes"


def demo_options():
    """gpgan.data.demo.build_demo_dataset keyword arguments; the photo folders are the
    rule's inputs (demo_photo_dirs)."""
    demo = config["dataset"]["demo"]
    opts = {k: demo[k] for k in ("n_scenes", "n_variants", "size", "crop")}
    if "package" not in demo["photo_sets"]:
        opts["photos"] = []
    return opts


def demo_photo_dirs():
    """Photo folders the demo dataset is built from besides the package photos."""
    return (
        ["resources/photos/mvtb"]
        if "mvtb" in config["dataset"]["demo"]["photo_sets"]
        else []
    )


def scene_groups():
    """Scene -> group table (one group per photograph) for the split, or None."""
    if config["dataset"]["source"] == "demo":
        return f"{scenes_dir()}/variants.csv"
    return None


def released(method):
    """The released generator file configured for ``method`` (models section), or None."""
    return config["models"][method]


def needs_gan():
    """True when the Blending GAN is trained here (gp-gan blended, no released model)."""
    return "gp-gan" in METHODS and not released("gp-gan")


def needs_unsupervised():
    """True when the unsupervised G(z) is trained here."""
    return "gp-gan-unsupervised" in METHODS and not released("gp-gan-unsupervised")


#: Where each GAN method's generator lands (trained and selected, or a released one).
MODEL_FILES = {
    "gp-gan": f"{RUN}/model/best.pt",
    "gp-gan-unsupervised": f"{RUN}/model/unsupervised/best.pt",
}


def bbox_input(wildcards):
    return [TRANSIENT["bbox"]] if TRANSIENT["bbox"] else []


def train_config(section="train"):
    """The workflow-shaped training config of a section (gpgan.trainconfig.resolve_config
    takes that section, the seed and the composites' geometry from it, as `gpgan train
    --config` does with a whole config file)."""
    return {
        "seed": config["seed"],
        section: config[section],
        "composites": {k: config["composites"][k] for k in ("image_size", "ratio")},
    }


def unsupervised_data():
    """The unsupervised G(z)'s images: the training manifests' natural crops (the
    composites' ground truth), or the paper's outdoor_64.hdf5."""
    if config["train_unsupervised"]["data"] == "outdoor_64":
        return {"hdf5": config["dataset"]["outdoor_64"]["hdf5"]}
    return {
        "train_csv": f"{RUN}/composites/train.csv",
        "val_csv": f"{RUN}/composites/val.csv",
        "scenes_root": scenes_dir(),
    }


def gpus(section):
    """GPUs to ask the executor for: 1 when the section's device is CUDA."""
    return 1 if config[section]["device"] == "cuda" else 0


def train_runtime(wildcards, attempt):
    """SLURM runtime in minutes; a retried job (e.g. after a time limit) gets more."""
    return config["train"]["runtime_min"] * attempt


def train_unsupervised_runtime(wildcards, attempt):
    return config["train_unsupervised"]["runtime_min"] * attempt


def blended(methods=METHODS, folder="blends", ids=TEST_IDS):
    """Every blended image and timing file of ``methods`` in ``folder``: one file each,
    so that a blend changed or truncated after the fact makes evaluate run (and fail
    on it)."""
    files = [f"{i}.png" for i in ids] + ["timing.csv"]
    return expand(f"{RUN}/{folder}/{{method}}/{{file}}", method=methods, file=files)


def cross_blended():
    """Every blended cross-scene composite and timing file."""
    return blended(folder="cross/blends", ids=CROSS_IDS)


#: Keys of the realism section that are gpgan.realism.JUDGE_DEFAULTS options (the
#: others are the workflow's: enabled, n_cross, cross_splits, n_validation, use_mask,
#: device); tests/test_config_schema.py checks the two lists agree.
JUDGE_KEYS = [
    k
    for k in REALISM
    if k
    not in ("enabled", "n_cross", "cross_splits", "n_validation", "use_mask", "device")
]


def judge_options():
    """gpgan.realism.train_judge options of the realism section."""
    return {k: REALISM[k] for k in JUDGE_KEYS}


def blend_model(wildcards):
    return [MODEL_FILES[wildcards.method]] if wildcards.method in MODEL_FILES else []


def gp_options(method):
    """gpgan.blend options of one method (the GP options matter to gp and gp-gan)."""
    b = config["blend"]
    opts = dict(
        color_weight=b["color_weight"],
        solver=b["solver"],
        pyramid=b["pyramid"],
        preserve_background=b["preserve_background"],
        band=b["band"],
    )
    if method in MODEL_FILES:
        opts.update(device=b["device"], gan_region=b["gan_region"])
    if method == "gp-gan-unsupervised":
        opts.update(latent_iters=b["latent_iters"], latent_seed=config["seed"])
    return opts


def blend_options(wildcards):
    return gp_options(wildcards.method)


def ablation_options():
    """gpgan.evaluate.beta_ablation options: the blend rule's options of method gp,
    less the colour weight the ablation sweeps."""
    return {k: v for k, v in gp_options("gp").items() if k != "color_weight"}


def lpips_weights():
    return f"{config['evaluate']['lpips_weights']}/alexnet_features.pth"


def evaluate_lpips_input(wildcards):
    return [lpips_weights()] if "lpips" in config["evaluate"]["metrics"] else []


def select_lpips_dir():
    """LPIPS weights folder for checkpoint selection (None: fMSE alone decides)."""
    return (
        config["evaluate"]["lpips_weights"]
        if "lpips" in config["evaluate"]["metrics"]
        else None
    )


def figure_names():
    names = ["qualitative", "metrics", "beta", "timing"]
    if needs_gan():
        names += ["training", "samples"]
    if needs_unsupervised():
        names += ["training_unsupervised", "samples_unsupervised"]
    return names


def get_final_output():
    realism = [
        f"{RUN}/metrics/realism/summary.md",
        f"{RUN}/figures/realism.png",
        f"{RUN}/figures/cross_scene.png",
    ]
    return [
        f"{RUN}/metrics/summary.csv",
        f"{RUN}/metrics/summary.md",
        *(f"{RUN}/figures/{name}.png" for name in figure_names()),
        *(realism if REALISM["enabled"] else []),
    ]


def training_threads(wildcards):
    """Threads of each of the three trainings (Blending GAN, G(z), realism judge): half
    the cores Snakemake was given, at least one. They are independent, so two run side
    by side: on 2 cores, one thread each did more work per second than one training
    after another on two threads (the generator step scales 1.8x from one thread to
    two, and the data a step draws is made on one; docs/training.md). Runs without a
    core count (cluster executors, --report) fall back to 2; `--set-threads` overrides.
    """
    try:
        cores = workflow.cores
    except Exception:
        cores = None
    return max(1, (cores or 4) // 2)
