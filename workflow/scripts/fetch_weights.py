from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.weights import fetch_lpips_weights

fetch_lpips_weights(Path(snakemake.output[0]).parent, source=snakemake.params.source)
