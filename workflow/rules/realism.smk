# The no-reference realism judge (README "Realism"): trained on the train split's
# photographs, validated on the held-out ones, then used to score every method's blends
# of cross-scene composites (an object from one held-out photograph in another), which
# have no ground truth: the paper's Table 1, drawn as two figures.


rule cross_composites:
    input:
        scenes=scenes_dir(),
        splits=f"{RUN}/composites/splits.csv",
    output:
        f"{RUN}/cross/composites/cross.csv",
    log:
        f"{LOGS}/cross_composites.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        n=config["realism"]["n_cross"],
        splits=config["realism"]["cross_splits"],
        coverage=config["composites"]["coverage"],
        groups=scene_groups(),
        seed=config["seed"],
    script:
        "../scripts/cross_composites.py"


rule blend_cross:
    input:
        test=f"{RUN}/cross/composites/cross.csv",
        model=blend_model,
    output:
        blends=expand(
            f"{RUN}/cross/blends/{{method}}/{{id}}.png",
            id=CROSS_IDS,
            allow_missing=True,
        ),
        timing=f"{RUN}/cross/blends/{{method}}/timing.csv",
    log:
        f"{LOGS}/blend_cross_{{method}}.log",
    benchmark:
        f"{RUN}/benchmarks/blend_cross_{{method}}.tsv"
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        options=blend_options,
    script:
        "../scripts/blend.py"


rule train_realism:
    input:
        scenes=scenes_dir(),
        splits=f"{RUN}/composites/splits.csv",
        lpips=lpips_weights(),
    output:
        judge=f"{RUN}/realism/judge.pt",
        validation=f"{RUN}/realism/validation.json",
        validation_csv=f"{RUN}/realism/validation.csv",
        log_csv=f"{RUN}/realism/train_log.csv",
        done=f"{RUN}/realism/done",
    log:
        f"{LOGS}/train_realism.log",
    benchmark:
        f"{RUN}/benchmarks/train_realism.tsv"
    conda:
        "../../envs/gpgan.yaml"
    threads: training_threads
    resources:
        gpu=gpus("realism"),
    params:
        options=judge_options(),
        groups=scene_groups(),
        seed=config["seed"],
        n_validation=config["realism"]["n_validation"],
        device=config["realism"]["device"],
    script:
        "../scripts/train_realism.py"


rule realism:
    input:
        cross=f"{RUN}/cross/composites/cross.csv",
        blends=cross_blended(),
        judge=f"{RUN}/realism/judge.pt",
        validation=f"{RUN}/realism/validation.json",
    output:
        per_image=f"{RUN}/metrics/realism/per_image.csv",
        summary=report(
            f"{RUN}/metrics/realism/summary.csv",
            caption="../report/realism_table.rst",
            category="Metrics",
        ),
        markdown=f"{RUN}/metrics/realism/summary.md",
    log:
        f"{LOGS}/realism.log",
    benchmark:
        f"{RUN}/benchmarks/realism.tsv"
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        methods=METHODS,
        use_mask=config["realism"]["use_mask"],
        device=config["realism"]["device"],
    script:
        "../scripts/realism.py"


rule realism_figures:
    input:
        cross=f"{RUN}/cross/composites/cross.csv",
        blends=cross_blended(),
        summary=f"{RUN}/metrics/realism/summary.csv",
        per_image=f"{RUN}/metrics/realism/per_image.csv",
    output:
        realism=report(
            f"{RUN}/figures/realism.png",
            caption="../report/realism.rst",
            category="Figures",
        ),
        cross_scene=report(
            f"{RUN}/figures/cross_scene.png",
            caption="../report/cross_scene.rst",
            category="Figures",
        ),
    log:
        f"{LOGS}/realism_figures.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        methods=METHODS,
        rows=config["figures"]["grid_rows"],
    script:
        "../scripts/realism_figures.py"
