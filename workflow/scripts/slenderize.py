from early_exit.recipes.slenderize import slenderize
from early_exit.workflow.joblog import job_log
from early_exit.workflow.model_jobs import predict_trained

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
    predict_trained(snakemake)
