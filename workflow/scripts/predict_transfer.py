from early_exit.inference.predict import predict
from early_exit.support.joblog import job_log

p = snakemake.params
with job_log(snakemake.log[0]):
    predict(
        snakemake.input.model,
        p.data_dir,
        snakemake.output.logits,
        splits=[p.transfer["split"]],
        batch_size=p.batch_size,
        device=p.device,
        threads=snakemake.threads,
        label_map=p.transfer["label_map"],
        label_key=p.transfer["label_key"],
    )
