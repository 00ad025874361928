from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.data.download import download

download(snakemake.params.url, snakemake.output[0], sha256=snakemake.params.sha256 or None,
         expected_size=snakemake.params.expected_size)
