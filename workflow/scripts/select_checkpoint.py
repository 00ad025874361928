from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.train import select_from_manifests

select_from_manifests(snakemake.input.checkpoints, snakemake.input.val, snakemake.input.scenes,
                      Path(snakemake.output.best).parent, device=snakemake.params.device,
                      ratio=snakemake.params.ratio)
