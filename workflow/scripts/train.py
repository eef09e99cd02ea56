from early_exit.inference.predict import predict
from early_exit.training.finetune import finetune
from early_exit.workflow.joblog import job_log

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
    predict(  # the run's one inference pass (PREDICT_IN_JOB in workflow/rules/train.smk)
        snakemake.output.model,
        p.data_dir,
        snakemake.output.logits,
        batch_size=snakemake.config["predict"]["batch_size"],
        device=p.device,
        threads=snakemake.threads,
    )
