from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.evaluate import evaluate_realism

evaluate_realism(snakemake.input.cross,
                 Path(snakemake.input.blends[0]).parents[1],  # <blends>/<method>/<id>.png
                 snakemake.params.methods, snakemake.input.judge,
                 Path(snakemake.output.summary).parent, use_mask=snakemake.params.use_mask,
                 validation_json=snakemake.input.validation, device=snakemake.params.device)
