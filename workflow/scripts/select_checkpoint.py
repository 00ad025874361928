from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.select import select_checkpoint

select_checkpoint(snakemake.input.checkpoints, snakemake.input.validation,
                  Path(snakemake.output.best).parent, lpips_weights=snakemake.params.lpips,
                  threads=snakemake.threads, **snakemake.params.options)
