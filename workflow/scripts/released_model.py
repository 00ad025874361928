from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.chainer import install_released_model

install_released_model(snakemake.input[0], snakemake.output[0], snakemake.params.method)
