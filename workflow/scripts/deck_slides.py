from early_exit.analysis.measured import load_measured
from early_exit.analysis.serving import load_serving
from early_exit.exits.operating_points import load_operating_points, load_sweeps
from early_exit.slides.findings import write_findings
from early_exit.slides.generated import write_slides
from early_exit.support.joblog import job_log
from early_exit.support.tables import read_table

p = snakemake.params
inp, out = snakemake.input, snakemake.output
with job_log(snakemake.log[0]):
    manifests = dict(zip(p.tasks, inp.manifests, strict=True))
    points = load_operating_points(inp.points)
    intervals = read_table(inp.intervals, "intervals table", "rule operating_points")
    measured = load_measured(inp.measured)
    write_slides(
        snakemake.config,
        p.methods,
        manifests,
        list(inp.models),
        points,
        out.setup,
        out.methods,
        intervals,
        measured,
    )
    significance = read_table(
        inp.significance, "significance table", "rule operating_points", allow_empty=True
    )
    write_findings(
        snakemake.config,
        p.methods,
        manifests,
        list(inp.models),
        points,
        significance,
        {"findings": out.findings, "limitations": out.limitations, "conclusion": out.conclusion},
        intervals,
        measured,
        load_serving(list(inp.serving)) if inp.serving else None,
        load_sweeps(list(inp.sweeps)),
    )
