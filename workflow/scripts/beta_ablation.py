from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.evaluate import beta_ablation

beta_ablation(snakemake.input.test, snakemake.params.betas, snakemake.output[0],
              n_images=snakemake.params.n_images, band_px=snakemake.params.band_px,
              progress=True, **snakemake.params.options)
