from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.data.composites import make_cross_composites

make_cross_composites(snakemake.input.scenes, snakemake.input.splits,
                      Path(snakemake.output[0]).parent, n=snakemake.params.n,
                      seed=snakemake.params.seed, groups=snakemake.params.groups,
                      coverage=snakemake.params.coverage, splits=snakemake.params.splits)
