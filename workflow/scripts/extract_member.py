from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.data.download import extract_member

extract_member(snakemake.input[0], snakemake.params.suffix, snakemake.output[0])
