from early_exit.joblog import job_log
from early_exit.predict import predict

p = snakemake.params
with job_log(snakemake.log[0]):
    predict(
        snakemake.input.model,
        p.data_dir,
        snakemake.output.logits,
        p.splits,
        p.batch_size,
        p.device,
        snakemake.threads,
    )
