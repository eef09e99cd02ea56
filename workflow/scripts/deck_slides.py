from early_exit.analysis.measured import load_measured
from early_exit.analysis.serving import load_serving
from early_exit.exits.operating_points import load_operating_points, load_sweeps
from early_exit.slides.figures import FIGURE_SLIDES, write_figure_slides
from early_exit.slides.findings import SLIDES, write_findings
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
    sweeps = load_sweeps(list(inp.sweeps))
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
        {name: getattr(out, name) for name in SLIDES},
        intervals,
        measured,
        load_serving(list(inp.serving)) if inp.serving else None,
        sweeps,
        read_table(inp.decoder, "decoder benchmark", "rule decoder_benchmark")
        if inp.decoder
        else None,
    )
    tables = {
        "exit_scores": read_table(inp.exit_scores, "exit scores", "rule exits_notebook"),
        "ece": read_table(inp.ece, "ECE table", "rule calibration_notebook", allow_empty=True),
        "reliability": read_table(
            inp.reliability, "reliability table", "rule calibration_notebook", allow_empty=True
        ),
        "significance": significance,
        "measured": measured,
        "serving": load_serving(list(inp.serving)) if inp.serving else None,
    }
    paths = dict(zip(FIGURE_SLIDES, out.figures, strict=True))
    write_figure_slides(snakemake.config, p.methods, paths, points, intervals, tables, sweeps)
