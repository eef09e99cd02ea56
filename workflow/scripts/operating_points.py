from early_exit.analysis.bootstrap import Settings
from early_exit.analysis.operating_point_tables import write_uncertainty
from early_exit.exits.operating_points import Guarantee
from early_exit.support.joblog import job_log

p, out = snakemake.params, snakemake.output
with job_log(snakemake.log[0]):
    write_uncertainty(
        list(snakemake.input.sweeps),
        p.policies,
        Settings.from_config(p.bootstrap),
        p.max_drop,
        p.methods,
        {name: out[name] for name in ("points", "summary", "elue", "significance")},
        Guarantee.from_config(p.guarantee),
    )
