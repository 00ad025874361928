# GP-GAN image blending: data -> composites -> GAN training -> checkpoint selection
# -> benchmark blending -> metrics -> figures, and the realism judge's cross-scene
# table. Configuration: config/README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/blend.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/realism.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
