rule elastic_pretrain:
    input:
        data=rules.prepare_data.output,
        backbone=backbone_copy,
    output:
        backbone=directory("results/{task}/{method}/seed{seed}/elastic_backbone"),
    log:
        "results/logs/pretrain/{task}/{method}/seed{seed}.log",
    params:
        data_dir="data/{task}",
        state_dir=lambda wc: f"{run_dir(wc.task, wc.method, wc.seed)}/pretrain_state",
        backbone=method_start,
        method=lambda wc: METHOD_SPECS[wc.method],
        training=lambda wc: training_settings(config, wc.method, wc.task),
        device=config["device"],
    threads: model_threads()
    priority: lambda wc: job_priority(wc, chain=True)
    resources:
        mem_mb=8000,
        runtime=240,
    script:
        "../scripts/elastic_pretrain.py"


# PREDICT_IN_JOB: the job that trains a model also makes its one inference pass over dev
# and test (`early_exit.inference.predict`, every exit's logits into exit_logits.npz),
# from the model directory it has just written. A separate job would import torch and
# transformers, load the model and tokenise the data once more for each of the 20
# default runs (docs/performance.md). The batch size of that pass is read from the
# config by the script, not a param: changing it must not retrain.


rule train:
    input:
        data=rules.prepare_data.output,
        backbone=lambda wc: pretrained_backbone(wc) or backbone_copy(wc),
        first_stage=first_stage_model,
    output:
        model=directory("results/{task}/{method}/seed{seed}/model"),
        logits="results/{task}/{method}/seed{seed}/exit_logits.npz",  # see PREDICT_IN_JOB
    log:
        "results/logs/train/{task}/{method}/seed{seed}.log",
    params:
        data_dir="data/{task}",
        # not an output: Snakemake must not delete it, it is what a rerun resumes from
        state_dir=lambda wc: f"{run_dir(wc.task, wc.method, wc.seed)}/train_state",
        backbone=train_backbone,
        method=lambda wc: METHOD_SPECS[wc.method],
        training=lambda wc: training_settings(config, wc.method, wc.task),
        first_stage=lambda wc: first_stage_model(wc) or None,
        device=config["device"],
    threads: model_threads()
    priority: job_priority
    resources:
        mem_mb=8000,
        runtime=240,
    script:
        "../scripts/train.py"


# Methods whose recipe is trained by slenderizing (COST-EFF: `TRAINED_BY` in its module) start
# from another method's trained model (their `teacher`, same task and seed), so nothing
# already trained is trained again.
SLENDERIZED = [m for m, s in METHOD_SPECS.items() if trained_by(s) == "slenderize"]


rule slenderize:
    input:
        data=rules.prepare_data.output,
        teacher=lambda wc: f"results/{wc.task}/{METHOD_SPECS[wc.method]['teacher']}/seed{wc.seed}/model",
        backbone=backbone_copy,  # the TA may start from the pre-trained backbone
    output:
        model=directory("results/{task}/{method}/seed{seed}/model"),
        logits="results/{task}/{method}/seed{seed}/exit_logits.npz",  # see PREDICT_IN_JOB
    log:
        "results/logs/slenderize/{task}/{method}/seed{seed}.log",
    wildcard_constraints:
        method="|".join(map(re.escape, SLENDERIZED)) or "(?!)",
    params:
        data_dir="data/{task}",
        backbone=method_start,
        method=lambda wc: METHOD_SPECS[wc.method],
        training=lambda wc: training_settings(config, wc.method, wc.task),
        device=config["device"],
    threads: model_threads()
    priority: lambda wc: job_priority(wc, chain=True)
    resources:
        mem_mb=8000,
        runtime=240,
    script:
        "../scripts/slenderize.py"


ruleorder: slenderize > train
