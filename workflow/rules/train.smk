# Blending GAN and unsupervised G(z) training (GPU if configured) and checkpoint
# selection, or a released generator (config `models`) instead of both.
# Only finished artefacts are outputs; the resumable state lives in <run folder>/state/,
# which Snakemake never deletes, so a killed or timed-out job resumes on rerun.


if not released("gp-gan"):

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
        priority: 1  # the longest chain (train -> select -> blend -> evaluate) starts first
        conda:
            "../../envs/gpgan.yaml"
        threads: training_threads
        resources:
            gpu=gpus("train"),
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
        priority: 1
        conda:
            "../../envs/gpgan.yaml"
        threads: 1
        params:
            options=gp_options("gp-gan"),
            lpips=select_lpips_dir(),
        script:
            "../scripts/select_checkpoint.py"


if not released("gp-gan-unsupervised"):

    rule train_unsupervised:
        input:
            **unsupervised_data(),
        output:
            final=f"{RUN}/unsupervised/final.pt",
            done=f"{RUN}/unsupervised/done",
            log_csv=f"{RUN}/unsupervised/train_log.csv",
            checkpoints=directory(f"{RUN}/unsupervised/checkpoints"),
            samples=directory(f"{RUN}/unsupervised/samples"),
        log:
            f"{LOGS}/train_unsupervised.log",
        benchmark:
            f"{RUN}/benchmarks/train_unsupervised.tsv"
        conda:
            "../../envs/gpgan.yaml"
        threads: training_threads
        resources:
            gpu=gpus("train_unsupervised"),
            runtime=train_unsupervised_runtime,
        params:
            cfg=train_config("train_unsupervised"),
        script:
            "../scripts/train_unsupervised.py"

    rule select_unsupervised:
        input:
            checkpoints=f"{RUN}/unsupervised/checkpoints",
            validation=f"{RUN}/composites/validation/validation.csv",
            lpips=evaluate_lpips_input,
        output:
            best=MODEL_FILES["gp-gan-unsupervised"],
            selection=f"{RUN}/model/unsupervised/selection.csv",
        log:
            f"{LOGS}/select_unsupervised.log",
        benchmark:
            f"{RUN}/benchmarks/select_unsupervised.tsv"
        conda:
            "../../envs/gpgan.yaml"
        threads: 1
        params:
            options=gp_options("gp-gan-unsupervised"),
            lpips=select_lpips_dir(),
        script:
            "../scripts/select_checkpoint.py"


for _method in MODEL_FILES:
    if released(_method):

        rule:
            name:
                f"released_{_method.replace('-', '_')}"
            input:
                released(_method),
            output:
                MODEL_FILES[_method],
            log:
                f"{LOGS}/released_{_method}.log",
            conda:
                "../../envs/gpgan.yaml"
            threads: 1
            params:
                method=_method,
            script:
                "../scripts/released_model.py"
