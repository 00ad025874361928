# Blending GAN training (GPU if configured) and checkpoint selection.
# Only finished artefacts are outputs; the resumable state lives in {RUN}/state/,
# which Snakemake never deletes, so a killed or timed-out job resumes on rerun.


rule train:
    input:
        train=f"{RUN}/composites/train.csv",
        val=f"{RUN}/composites/val.csv",
        scenes=scenes_dir(),
    output:
        final=f"{RUN}/final.pt",
        done=f"{RUN}/done",
        log_csv=f"{RUN}/train_log.csv",
        checkpoints=directory(f"{RUN}/checkpoints"),
        samples=directory(f"{RUN}/samples"),
    log:
        f"{LOGS}/train.log",
    benchmark:
        f"{RUN}/benchmarks/train.tsv"
    conda:
        "../../envs/gpgan.yaml"
    threads: all_cores
    resources:
        gpu=train_gpu,
        runtime=train_runtime,
    params:
        cfg=train_config(),
    script:
        "../scripts/train.py"


rule select_checkpoint:
    input:
        checkpoints=f"{RUN}/checkpoints",
        validation=f"{RUN}/composites/validation/validation.csv",
        lpips=evaluate_lpips_input,
    output:
        best=f"{RUN}/model/best.pt",
        selection=f"{RUN}/model/selection.csv",
    log:
        f"{LOGS}/select_checkpoint.log",
    benchmark:
        f"{RUN}/benchmarks/select_checkpoint.tsv"
    conda:
        "../../envs/gpgan.yaml"
    threads: 2
    params:
        options=gp_options("gp-gan"),
        lpips=select_lpips_dir(),
    script:
        "../scripts/select_checkpoint.py"
