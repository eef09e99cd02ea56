# Early exiting in pretrained language models, end to end:
# data -> fine-tuning -> one inference pass storing every exit's logits ->
# threshold sweeps from stored logits -> papermill notebooks -> Slidev deck.
#
#   snakemake --cores all                          # default config (CPU, minutes)
#   snakemake --cores all --configfile config/smoke.yaml
from snakemake.utils import min_version

min_version("9.0")


# A --configfile given on the command line is the whole config (not merged into
# the default), so a small config such as config/smoke.yaml stays small.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/splitee.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/latency.smk"
include: "workflow/rules/serving.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/decoder.smk"
include: "workflow/rules/deck.smk"


# Light steps run where Snakemake runs (the login node on a cluster): downloads need
# the internet (compute nodes are often offline), data preparation may read the hub,
# calibration, sweeps and notebooks take seconds, and the deck needs chromium and Slidev.
localrules:
    all,
    download,
    download_model,
    download_dataset,
    prepare_data,
    sweep,
    operating_points,
    notebook_to_ipynb,
    tradeoff_notebook,
    exits_notebook,
    calibration_notebook,
    difficulty_notebook,
    seeds_notebook,
    latency_notebook,
    serving_notebook,
    splitee,
    splitee_notebook,
    splitee_slides,
    decoder_sweep,
    decoder_notebook,
    decoder_slides,
    deck_slides,
    deck,


rule all:
    input:
        final_outputs(),
    default_target: True
