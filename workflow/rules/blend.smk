# Benchmark blending: every test composite with every configured method.


rule blend:
    input:
        test=f"{RUN}/composites/test.csv",
        model=blend_model,
    output:
        blends=expand(
            f"{RUN}/blends/{{method}}/{{id}}.png", id=TEST_IDS, allow_missing=True
        ),
        timing=f"{RUN}/blends/{{method}}/timing.csv",
    log:
        f"{LOGS}/blend_{{method}}.log",
    benchmark:
        f"{RUN}/benchmarks/blend_{{method}}.tsv"
    conda:
        "../../envs/gpgan.yaml"
    threads: 1
    params:
        options=blend_options,
    script:
        "../scripts/blend.py"
