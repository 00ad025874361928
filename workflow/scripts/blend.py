from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.batch import blend_test_set

blend_test_set(snakemake.input.test, snakemake.wildcards.method,
               Path(snakemake.output.timing).parent,
               model=snakemake.input.model[0] if snakemake.input.model else None,
               threads=snakemake.threads, **snakemake.params.options)
