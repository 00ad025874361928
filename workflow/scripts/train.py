from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.train import train_from_manifests

train_from_manifests(snakemake.params.cfg, snakemake.input.train, snakemake.input.val,
                     snakemake.input.scenes, Path(snakemake.output.done).parent,
                     threads=snakemake.threads)
