# Token-level early exit in a decoder (docs/decoder.md): read the model once into a plain
# safetensors folder, train exits with the backbone frozen, one inference pass storing per-token exit outputs, knob sweeps simulated from
# them, the measured benchmark (checked against the simulation), its notebook and slides.
# Every job reads `decoder:` through early_exit.decoder.settings; DECODER is None when the
# section is absent or disabled (then only the placeholder slide is made).


rule decoder_model:
    output:
        model=directory("results/decoder/model"),
    log:
        "results/logs/decoder/model.log",
    benchmark:
        "results/benchmarks/decoder/model.tsv"
    params:
        source=DECODER.model if DECODER else None,  # another model: the folder is remade
    threads: DECODER.threads if DECODER else 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../scripts/decoder_model.py"


rule decoder_exits:
    input:
        model=rules.decoder_model.output.model,
    output:
        exits="results/decoder/exits/exits.safetensors",
        vocabulary="results/decoder/exits/vocabulary.json",
        training="results/decoder/exits/training.json",
    log:
        "results/logs/decoder/exits.log",
    benchmark:
        "results/benchmarks/decoder/exits.tsv"
    threads: DECODER.threads if DECODER else 1
    resources:
        mem_mb=6000,
        runtime=60,
    script:
        "../scripts/decoder_exits.py"


rule decoder_outputs:
    input:
        model=rules.decoder_model.output.model,
        exits=rules.decoder_exits.output.exits,
        vocabulary=rules.decoder_exits.output.vocabulary,
    output:
        tokens="results/decoder/outputs/tokens.tsv",
        perplexity="results/decoder/outputs/perplexity.tsv",
        meta="results/decoder/outputs/meta.json",
    log:
        "results/logs/decoder/outputs.log",
    benchmark:
        "results/benchmarks/decoder/outputs.tsv"
    threads: DECODER.threads if DECODER else 1
    resources:
        mem_mb=6000,
        runtime=60,
    script:
        "../scripts/decoder_outputs.py"


rule decoder_sweep:
    input:
        tokens=rules.decoder_outputs.output.tokens,
        meta=rules.decoder_outputs.output.meta,
    output:
        speculative="results/decoder/sweep_speculative.tsv",
        calm="results/decoder/sweep_calm.tsv",
        knobs="results/decoder/knobs.json",
    log:
        "results/logs/decoder/sweep.log",
    benchmark:
        "results/benchmarks/decoder/sweep.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/decoder_sweep.py"


rule decoder_benchmark:
    input:
        model=rules.decoder_model.output.model,
        exits=rules.decoder_exits.output.exits,
        vocabulary=rules.decoder_exits.output.vocabulary,
        tokens=rules.decoder_outputs.output.tokens,
        meta=rules.decoder_outputs.output.meta,
        speculative=rules.decoder_sweep.output.speculative,
        calm=rules.decoder_sweep.output.calm,
        knobs=rules.decoder_sweep.output.knobs,
    output:
        runs="results/decoder/benchmark_runs.tsv",
        summary=report(
            "results/decoder/benchmark.tsv", caption="../report/decoder.rst", category="Decoder"
        ),
        check="results/decoder/check.tsv",
    log:
        "results/logs/decoder/benchmark.log",
    benchmark:
        "results/benchmarks/decoder/benchmark.tsv"
    threads: every_core()  # a timing job runs alone
    resources:
        mem_mb=6000,
        runtime=60,
    script:
        "../scripts/decoder_benchmark.py"


rule decoder_notebook:
    input:
        notebook="results/analysis/decoder.source.ipynb",
        summary=rules.decoder_benchmark.output.summary,
        check=rules.decoder_benchmark.output.check,
        speculative=rules.decoder_sweep.output.speculative,
        calm=rules.decoder_sweep.output.calm,
        perplexity=rules.decoder_outputs.output.perplexity,
        training=rules.decoder_exits.output.training,
    output:
        tradeoff=report(
            "results/analysis/decoder_tradeoff.png",
            caption="../report/decoder_tradeoff.rst",
            category="Decoder",
        ),
        acceptance=report(
            "results/analysis/decoder_acceptance.png",
            caption="../report/decoder_acceptance.rst",
            category="Decoder",
        ),
        table="results/analysis/decoder.md",
        notebook="results/analysis/decoder.ipynb",
        html="results/analysis/decoder.html",
    log:
        "results/logs/analysis/decoder.log",
    params:
        summary=lambda wc, input: input.summary,
        check=lambda wc, input: input.check,
        speculative=lambda wc, input: input.speculative,
        calm=lambda wc, input: input.calm,
        perplexity=lambda wc, input: input.perplexity,
        training=lambda wc, input: input.training,
    shell:
        notebook_shell(
            "decoder", ["summary", "check", "speculative", "calm", "perplexity", "training"]
        )


rule decoder_slides:
    input:
        unpack(decoder_slide_inputs),
    output:
        slides="results/slides/generated/decoder.md",
    log:
        "results/logs/decoder_slides.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/decoder_slides.py"
