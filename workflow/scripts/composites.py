from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.data.composites import build_composites

build_composites(snakemake.input[0], Path(snakemake.output.test).parent,
                 seed=snakemake.params.seed, groups=snakemake.params.groups,
                 **snakemake.params.composites)
