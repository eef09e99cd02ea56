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
        state_dir=lambda wc: f"{run_dir(wc)}/pretrain_state",
        backbone=method_start,
        pretrain=lambda wc: METHOD_SPECS[wc.method]["pretrain"],
        training=lambda wc: training_settings(config, wc.method),
        device=config["device"],
    threads: model_threads()
    resources:
        mem_mb=8000,
        runtime=240,
    script:
        "../scripts/elastic_pretrain.py"


rule train:
    input:
        data=rules.prepare_data.output,
        backbone=lambda wc: pretrained_backbone(wc) or backbone_copy(wc),
        first_stage=first_stage_model,
    output:
        model=directory("results/{task}/{method}/seed{seed}/model"),
    log:
        "results/logs/train/{task}/{method}/seed{seed}.log",
    params:
        data_dir="data/{task}",
        # not an output: Snakemake must not delete it, it is what a rerun resumes from
        state_dir=lambda wc: f"{run_dir(wc)}/train_state",
        backbone=train_backbone,
        method=lambda wc: METHOD_SPECS[wc.method],
        training=lambda wc: training_settings(config, wc.method),
        first_stage=lambda wc: first_stage_model(wc) or None,
        device=config["device"],
    threads: model_threads()
    resources:
        mem_mb=8000,
        runtime=240,
    script:
        "../scripts/train.py"


# COST-EFF methods are slenderized from another method's trained model (their `teacher`,
# same task and seed), so nothing already trained is trained again.
import re

SLENDERIZED = [m for m, s in METHOD_SPECS.items() if s["recipe"] == "costeff"]


rule slenderize:
    input:
        data=rules.prepare_data.output,
        teacher=lambda wc: f"results/{wc.task}/{METHOD_SPECS[wc.method]['teacher']}/seed{wc.seed}/model",
        backbone=backbone_copy,  # the TA may start from the pre-trained backbone
    output:
        model=directory("results/{task}/{method}/seed{seed}/model"),
    log:
        "results/logs/slenderize/{task}/{method}/seed{seed}.log",
    wildcard_constraints:
        method="|".join(map(re.escape, SLENDERIZED)) or "(?!)",
    params:
        data_dir="data/{task}",
        backbone=method_start,
        method=lambda wc: METHOD_SPECS[wc.method],
        training=lambda wc: training_settings(config, wc.method),
        device=config["device"],
    threads: model_threads()
    resources:
        mem_mb=8000,
        runtime=240,
    script:
        "../scripts/slenderize.py"


ruleorder: slenderize > train
