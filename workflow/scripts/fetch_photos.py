from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.data.photos import fetch_mvtb_photos

mvtb = snakemake.params.mvtb
fetch_mvtb_photos(snakemake.output[0], wheel=mvtb["wheel"], index_url=mvtb["index_url"],
                  max_side=mvtb["max_side"])
