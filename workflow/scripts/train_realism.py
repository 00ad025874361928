from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.realism import build_judge

build_judge(snakemake.input.scenes, snakemake.input.splits,
            Path(snakemake.output.judge).parent, groups=snakemake.params.groups,
            seed=snakemake.params.seed, n_validation=snakemake.params.n_validation,
            lpips_weights=Path(snakemake.input.lpips).parent, device=snakemake.params.device,
            threads=snakemake.threads, **snakemake.params.options)
