from early_exit.analysis.operating_points import load_sweeps, operating_points
from early_exit.slides.generated import write_slides
from early_exit.workflow.joblog import job_log

p = snakemake.params
with job_log(snakemake.log[0]):
    write_slides(
        snakemake.config,
        p.methods,
        dict(zip(p.tasks, snakemake.input.manifests, strict=True)),
        list(snakemake.input.models),
        operating_points(load_sweeps(list(snakemake.input.sweeps)), p.max_drop),
        snakemake.output.setup,
        snakemake.output.methods,
    )
