from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.figures import make_all_figures

make_all_figures(Path(snakemake.input.summary).parents[1], Path(snakemake.output[0]).parent,
                 methods=snakemake.params.methods, max_rows=snakemake.params.rows)
