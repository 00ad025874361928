from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.data.download import extract

# The archive holds imageAlignedLD/<scene>/...: strip that folder into the output.
extract(snakemake.input[0], snakemake.output[0], strip_components=1)
