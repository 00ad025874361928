from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.evaluate import evaluate

blends_root = Path(snakemake.input.blends[0]).parents[1]  # <root>/<method>/<id>.png
evaluate(snakemake.input.test, blends_root, snakemake.params.methods,
         Path(snakemake.output.summary).parent, metrics=snakemake.params.metrics,
         lpips_weights=snakemake.params.lpips_weights, band_px=snakemake.params.band_px)
