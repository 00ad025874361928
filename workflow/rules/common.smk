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

RUN = f"results/{config['run']}"
LOGS = f"logs/{config['run']}"
METHODS = config["blend"]["methods"]
# ids of the test composites (gpgan.data.composites.make_test_composites: 0000, 0001, ...)
TEST_IDS = [f"{i:04d}" for i in range(config["composites"]["n_test"])]
TRANSIENT = config["dataset"]["transient"]


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


def needs_gan():
    return "gp-gan" in METHODS


def bbox_input(wildcards):
    return [TRANSIENT["bbox"]] if TRANSIENT["bbox"] else []


def train_config():
    """The workflow-shaped training config (gpgan.trainconfig.resolve_config takes the
    train section, the seed and the composites' geometry from it, as `gpgan train
    --config` does with a whole config file)."""
    return {
        "seed": config["seed"],
        "train": config["train"],
        "composites": {k: config["composites"][k] for k in ("image_size", "ratio")},
    }


def train_gpu(wildcards):
    """Ask the executor for a GPU when the run is configured for CUDA."""
    return 1 if config["train"]["device"] == "cuda" else 0


def train_runtime(wildcards, attempt):
    """SLURM runtime in minutes; a retried job (e.g. after a time limit) gets more."""
    return config["train"]["runtime_min"] * attempt


def blended(methods=METHODS):
    """Every blended image and timing file of ``methods``: one file each, so that a
    blend changed or truncated after the fact makes evaluate run (and fail on it)."""
    files = [f"{i}.png" for i in TEST_IDS] + ["timing.csv"]
    return expand(f"{RUN}/blends/{{method}}/{{file}}", method=methods, file=files)


def blend_model(wildcards):
    return [f"{RUN}/model/best.pt"] if wildcards.method == "gp-gan" else []


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
    if method == "gp-gan":
        opts.update(device=b["device"], gan_region=b["gan_region"])
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
    return names


def get_final_output():
    return [
        f"{RUN}/metrics/summary.csv",
        f"{RUN}/metrics/summary.md",
        *(f"{RUN}/figures/{name}.png" for name in figure_names()),
    ]


def all_cores(wildcards):
    """Every core Snakemake was given (training uses them all). Runs without a core
    count (cluster executors, --report) fall back to 4; profiles may set-threads."""
    try:
        return workflow.cores or 4
    except Exception:
        return 4
