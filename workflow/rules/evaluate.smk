# Metrics (LPIPS weights provisioned locally), the beta ablation and the figures.


localrules:
    fetch_weights,


rule fetch_weights:
    output:
        lpips_weights(),
    log:
        "logs/fetch_weights.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        source=config["evaluate"]["lpips_source"],
    script:
        "../scripts/fetch_weights.py"


rule evaluate:
    input:
        test=f"{RUN}/composites/test.csv",
        blends=blended(),
        lpips=evaluate_lpips_input,
    output:
        per_image=f"{RUN}/metrics/per_image.csv",
        summary=report(
            f"{RUN}/metrics/summary.csv",
            caption="../report/summary.rst",
            category="Metrics",
        ),
        markdown=f"{RUN}/metrics/summary.md",
    log:
        f"{LOGS}/evaluate.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate.tsv"
    conda:
        "../../envs/gpgan.yaml"
    threads: 2
    params:
        methods=METHODS,
        metrics=config["evaluate"]["metrics"],
        band_px=config["evaluate"]["band_px"],
        lpips_weights=config["evaluate"]["lpips_weights"],
    script:
        "../scripts/evaluate.py"


rule beta_ablation:
    input:
        test=f"{RUN}/composites/test.csv",
    output:
        f"{RUN}/metrics/beta_ablation.csv",
    log:
        f"{LOGS}/beta_ablation.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 2
    params:
        betas=config["figures"]["betas"],
        n_images=config["figures"]["ablation_images"],
        band_px=config["evaluate"]["band_px"],
        options=ablation_options(),
    script:
        "../scripts/beta_ablation.py"


rule figures:
    input:
        test=f"{RUN}/composites/test.csv",
        summary=f"{RUN}/metrics/summary.csv",
        ablation=f"{RUN}/metrics/beta_ablation.csv",
        blends=blended(),
        training=[f"{RUN}/train_log.csv", f"{RUN}/samples"] if needs_gan() else [],
        unsupervised=(
            [f"{RUN}/unsupervised/train_log.csv", f"{RUN}/unsupervised/samples"]
            if needs_unsupervised()
            else []
        ),
    output:
        [
            report(
                f"{RUN}/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="Figures",
            )
            for name in figure_names()
        ],
    log:
        f"{LOGS}/figures.log",
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        methods=METHODS,
        rows=config["figures"]["grid_rows"],
    script:
        "../scripts/figures.py"
