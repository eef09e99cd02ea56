from early_exit.inference.predict import predict
from early_exit.recipes.slenderize import slenderize
from early_exit.workflow.joblog import job_log

p = snakemake.params
with job_log(snakemake.log[0]):
    slenderize(
        snakemake.input.teacher,
        p.data_dir,
        snakemake.output.model,
        p.backbone,
        p.method,
        p.training,
        int(snakemake.wildcards.seed),
        p.device,
        snakemake.threads,
    )
    predict(  # the run's one inference pass (PREDICT_IN_JOB in workflow/rules/train.smk)
        snakemake.output.model,
        p.data_dir,
        snakemake.output.logits,
        batch_size=snakemake.config["predict"]["batch_size"],
        device=p.device,
        threads=snakemake.threads,
    )
