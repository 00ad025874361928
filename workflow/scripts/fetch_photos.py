from gpgan.logs import to_file

to_file(snakemake.log[0])
from gpgan.data.photos import MVTB_SHA256, fetch_mvtb_photos

mvtb = snakemake.params.mvtb
fetch_mvtb_photos(snakemake.output[0], wheel=mvtb["wheel"], index_url=mvtb["index_url"],
                  sha256=mvtb["sha256"] or MVTB_SHA256, max_side=mvtb["max_side"])
