from early_exit.exits.splitee import SplitEESettings, splitee_file
from early_exit.support.joblog import job_log

w, p = snakemake.wildcards, snakemake.params
with job_log(snakemake.log[0]):
    splitee_file(
        snakemake.input.logits,
        snakemake.output.table,
        snakemake.output.regret,
        SplitEESettings.from_config(p.settings),
        p.alphas,
        p.split,
        {"source": w.source, "target": w.target, "method": w.method, "seed": int(w.seed)},
        seed=int(w.seed),
    )
