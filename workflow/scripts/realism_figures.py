from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.figures import realism_figures

realism_figures(Path(snakemake.output.realism).parent, cross_csv=snakemake.input.cross,
                blends_root=Path(snakemake.input.blends[0]).parents[1],
                summary_csv=snakemake.input.summary, per_image_csv=snakemake.input.per_image,
                methods=snakemake.params.methods, max_rows=snakemake.params.rows)
