from early_exit.slides.figures import FIGURE_SLIDES, write_figure_slides
from early_exit.slides.findings import SLIDES, write_findings
from early_exit.slides.generated import write_slides
from early_exit.slides.run_tables import RUN_FILES, read_run_tables
from early_exit.support.joblog import job_log

p = snakemake.params
inp, out = snakemake.input, snakemake.output
with job_log(snakemake.log[0]):
    run = read_run_tables(
        snakemake.config,
        p.methods,
        dict(zip(p.tasks, inp.manifests, strict=True)),
        list(inp.models),
        {name: getattr(inp, name) for name in RUN_FILES},
    )
    write_slides(run, out.setup, out.methods)
    write_findings(run, {name: getattr(out, name) for name in SLIDES})
    write_figure_slides(run, dict(zip(FIGURE_SLIDES, out.figures, strict=True)))
