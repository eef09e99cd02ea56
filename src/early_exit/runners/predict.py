"""What the jobs that write a model do after writing it (`train`, `slenderize`)."""

from __future__ import annotations

from early_exit.inference.predict import predict


def predict_trained(job) -> dict:
    """The run's one inference pass, in the job that wrote its model (PREDICT_IN_JOB in
    workflow/rules/train.smk): every exit's logits on dev and test into `output.logits`.
    `job` is the script's `snakemake` object. The batch size is read from the config, not
    a rule param, so that changing it does not retrain."""
    return predict(
        job.output.model,
        job.params.data_dir,
        job.output.logits,
        batch_size=job.config["predict"]["batch_size"],
        device=job.params.device,
        threads=job.threads,
    )
