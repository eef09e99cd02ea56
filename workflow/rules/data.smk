rule prepare_data:
    input:
        dataset_copy,
    output:
        splits=multiext("data/{task}/", "train.jsonl", "dev.jsonl", "test.jsonl"),
        manifest="data/{task}/manifest.json",
    log:
        "results/logs/data/{task}.log",
    params:
        spec=lambda wc: cached_task(config, wc.task),
        seed=config["data_seed"],
        out_dir=lambda wc: f"data/{wc.task}",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/prepare_data.py"
