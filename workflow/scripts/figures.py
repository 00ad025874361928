from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.figures import make_figures

gan = snakemake.input.training  # [train_log.csv, samples/] when gp-gan is trained, else []
make_figures(Path(snakemake.output[0]).parent, test_csv=snakemake.input.test,
             blends_root=Path(snakemake.input.blends[0]).parents[1],  # <blends>/<method>/<id>
             summary_csv=snakemake.input.summary, ablation_csv=snakemake.input.ablation,
             methods=snakemake.params.methods, train_log=gan[0] if gan else None,
             samples_dir=gan[1] if gan else None,
             unsupervised=tuple(snakemake.input.unsupervised) or None,
             max_rows=snakemake.params.rows)
