from early_exit.analysis.measured import load_measured
from early_exit.exits.operating_points import load_operating_points
from early_exit.slides.generated import write_slides
from early_exit.support.joblog import job_log
from early_exit.support.tables import read_table

p = snakemake.params
with job_log(snakemake.log[0]):
    write_slides(
        snakemake.config,
        p.methods,
        dict(zip(p.tasks, snakemake.input.manifests, strict=True)),
        list(snakemake.input.models),
        load_operating_points(snakemake.input.points),
        snakemake.output.setup,
        snakemake.output.methods,
        read_table(snakemake.input.intervals, "intervals table", "rule operating_points"),
        load_measured(snakemake.input.measured),
    )
