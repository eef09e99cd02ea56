from early_exit.slides.build import build_deck
from early_exit.support.joblog import job_log

p = snakemake.params
with job_log(snakemake.log[0]):
    build_deck(
        p.deck_src,
        list(snakemake.input.figures),
        list(snakemake.input.tables),
        p.build_dir,
        snakemake.output.pdf,
        snakemake.output.site,
        p.chromium,
    )
