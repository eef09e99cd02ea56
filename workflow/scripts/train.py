from early_exit.training.finetune import finetune
from early_exit.workflow.joblog import job_log
from early_exit.workflow.model_jobs import predict_trained

p = snakemake.params
with job_log(snakemake.log[0]):
    finetune(
        p.data_dir,
        snakemake.output.model,
        p.state_dir,
        p.backbone,
        p.method,
        p.training,
        int(snakemake.wildcards.seed),
        p.device,
        snakemake.threads,
        first_stage=p.first_stage,
    )
    predict_trained(snakemake)
