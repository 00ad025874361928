from pathlib import Path

from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.train import train_from_files

# input: {train_csv, val_csv, scenes_root} (the natural crops) or {hdf5} (outdoor_64)
train_from_files(snakemake.params.cfg, Path(snakemake.output.done).parent,
                 section="train_unsupervised", threads=snakemake.threads,
                 **dict(snakemake.input.items()))
