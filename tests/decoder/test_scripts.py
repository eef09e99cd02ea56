"""The decoder's scripts on bad input: one line on stderr, exit status 2, nothing written."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny_decoder import save_tiny_llama

ROOT = Path(__file__).resolve().parents[2]


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def test_the_training_script(tmp_path, tiny_dir, capsys):
    train = script("train_decoder_exits")
    out = tmp_path / "exits"
    threads = torch.get_num_threads()
    for bad in (["--layers", "4"], ["--stories", "0"], ["--model", str(tmp_path / "x.gguf")]):
        assert train.main(["--model", str(tiny_dir), "--out", str(out), *bad]) == 2
        torch.set_num_threads(threads)  # the script sets its own
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
        assert not out.exists()


def test_the_benchmark_script(tmp_path, tiny_dir, capsys):
    bench = script("bench_decoder")
    out = tmp_path / "bench.tsv"
    threads = torch.get_num_threads()
    cases = [
        (["--prompts", "0"], "--prompts"),
        (["--speculative", "6:0"], "draft length"),
        (["--exits", str(tmp_path / "none")], "exit maps not found"),
    ]
    for bad, named in cases:
        argv = ["--model", str(tiny_dir), "--exits", str(tmp_path), "--out", str(out), *bad]
        assert bench.main(argv) == 2
        torch.set_num_threads(threads)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and named in err[0], err
        assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit) as exit_:  # argparse: a malformed E:draft
        bench.main(["--exits", str(tmp_path), "--speculative", "six"])
    assert exit_.value.code == 2


def test_the_benchmark_script_writes_its_tables(tmp_path, tiny_dir, capsys, monkeypatch):
    """A whole run on the tiny model (its prompts in place of BBC chats): the per-run rows,
    the summary and the held-out perplexity land where `--out` says."""
    from tiny_decoder import prompts, training_text

    from early_exit.decoder import stage
    from early_exit.decoder.exits import save_exits, train_exits
    from early_exit.decoder.loading import load_causal_lm
    from early_exit.decoder.stack import DecoderStack

    model, _ = load_causal_lm(str(tiny_dir))
    exits, _ = train_exits(DecoderStack(model), training_text(), [1, 2, 3], epochs=1, batch=64)
    save_exits(exits, tmp_path / "exits", {})
    named = {f"p{i}": p for i, p in enumerate(prompts(3))}
    monkeypatch.setattr(stage, "test_prompts", lambda settings, tokenizer, context: named)
    monkeypatch.setattr(stage, "held_out_texts", lambda settings, tokenizer: training_text(2))
    out = tmp_path / "bench.tsv"
    argv = ["--model", str(tiny_dir), "--exits", str(tmp_path / "exits"), "--out", str(out)]
    argv += ["--prompts", "3", "--new-tokens", "6", "--rounds", "1", "--threads", "1"]
    argv += ["--speculative", "2:2", "--calm", "0.5", "--peer", "2", "--held-out", "2"]
    assert script("bench_decoder").main(argv) == 0
    runs = pd.read_csv(out, sep="\t")
    assert set(runs.prompt) == set(named)
    summary = pd.read_csv(out.with_suffix(".summary.tsv"), sep="\t")
    assert len(summary) >= 4  # greedy, the walk, speculative, CALM, the peer
    perplexity = pd.read_csv(out.with_suffix(".perplexity.tsv"), sep="\t")
    assert len(perplexity) == 4  # the three exits and the full model
    assert "tokens" in capsys.readouterr().out
