from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.data.crop import crop_dataset

crop_dataset(snakemake.input.data, snakemake.input.bbox[0] if snakemake.input.bbox else None,
             snakemake.output[0])
