from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.data.demo import build_demo_dataset

build_demo_dataset(snakemake.output[0], seed=snakemake.params.seed,
                   photo_dirs=snakemake.input.photos, **snakemake.params.demo)
