from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.evaluate import evaluate

evaluate(snakemake.input.test, Path(snakemake.input.blends[0]).parent, snakemake.params.methods,
         Path(snakemake.output.summary).parent, metrics=snakemake.params.metrics,
         lpips_weights=snakemake.params.lpips_weights, band_px=snakemake.params.band_px)
