"""`early-exit predict`: classify new text with a model the workflow trained, exiting early;
`early-exit export`: write a trained run as ONNX graphs that ONNX Runtime runs the same way;
`early-exit serve`: answer the same over HTTP (docs/serving.md).

    early-exit predict results/bbc-news/deebert/seed13 --policy entropy --threshold auto \
        < texts.txt > answers.jsonl
    early-exit export results/bbc-news/deebert/seed13 exported/deebert
    early-exit predict exported/deebert --policy entropy < texts.txt > answers.jsonl

Input (a file, or stdin): one text per line, JSONL with the task's text fields
(`text`, plus `text_pair` for a pair task), or a TSV whose header names them; the
format follows the file's extension (.jsonl, .tsv) or `--format`. Output: one JSON
object per input line (its `line` number, label, label name, exit layer, the score
that decided, FLOPs, tokens, whether it was truncated). Empty lines are skipped and
reported on stderr with their numbers (output rows carry `line`, so they still join
with the input). `predict` runs a run directory on the torch engine and an export
directory (it has an export.json) on the ONNX Runtime engine. Bad input (not a trained
run, an incomplete or corrupt export, a piece that cannot be exported, onnxruntime not
installed, unknown policy, pair task given single texts, non-UTF-8 bytes) is one line on
stderr naming the problem, and exit status 2.
A policy's own options (patience's `--tau`) are command-line options, made from what
its module declares (`Policy.options`); giving one to another policy is an error.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from early_exit.exits.policies import get_policy, runtime_names
from early_exit.serving.limits import Limits
from early_exit.support.errors import ConfigError, DataError

FORMATS = ("auto", "lines", "jsonl", "tsv")
PROGRESS_FROM = 256  # examples; shorter inputs get no progress bar


def decode_lines(raw: bytes, source: str) -> list[str]:
    """Lines of `raw` as text; a non-UTF-8 line is an error naming it."""
    lines = []
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            lines.append(line.decode("utf-8-sig" if number == 1 else "utf-8"))
        except UnicodeDecodeError as err:
            reason = f"{err.reason} at byte {err.start}"
            raise DataError(f"{source}:{number}: not UTF-8 ({reason})") from None
    return lines


def guess_format(path: str, lines: list[str]) -> str:
    if path.endswith(".jsonl"):
        return "jsonl"
    if path.endswith(".tsv"):
        return "tsv"
    first = next((line for line in lines if line.strip()), "")
    return "jsonl" if first.lstrip().startswith("{") else "lines"


def parse_records(lines: list[str], fmt: str, fields: list[str], source: str):
    """(line numbers, texts per field, skipped empty line numbers)."""
    numbers, records, skipped = [], [], []
    start = 1
    if fmt == "tsv":
        header = lines[0].split("\t") if lines else []
        missing = [f for f in fields if f not in header]
        if missing:
            raise DataError(f"{source}:1: TSV header {header} lacks column(s) {missing}")
        rows = csv.reader(lines[1:], delimiter="\t", quoting=csv.QUOTE_NONE)
        lines = [dict(zip(header, row, strict=False)) for row in rows]
        start = 2
    for number, line in enumerate(lines, start=start):
        if fmt == "lines":
            if not line.strip():
                skipped.append(number)
                continue
            if len(fields) > 1:
                raise DataError(
                    f"{source}:{number}: this run classifies pairs ({', '.join(fields)}), but the "
                    "input has single texts: give JSONL or a TSV with those fields"
                )
            record = {"text": line}
        elif fmt == "jsonl":
            if not line.strip():
                skipped.append(number)
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{source}:{number}: invalid JSON ({err.msg})") from None
        else:
            record = line
        if not isinstance(record, dict) or any(not isinstance(record.get(f), str) for f in fields):
            raise DataError(f"{source}:{number}: expected text field(s) {fields}")
        if not any(record[f].strip() for f in fields):
            skipped.append(number)
            continue
        numbers.append(number)
        records.append(record)
    return numbers, [[r[f] for r in records] for f in fields], skipped


def read_input(path: str, fmt: str, fields: list[str]):
    source = "<stdin>" if path == "-" else path
    if path == "-":
        raw = sys.stdin.buffer.read()
    else:
        try:
            raw = Path(path).read_bytes()
        except OSError as err:
            raise DataError(f"{path}: cannot read input ({err.strerror})") from None
    lines = decode_lines(raw, source)
    fmt = guess_format(path, lines) if fmt == "auto" else fmt
    return parse_records(lines, fmt, fields, source)


def threshold_arg(value: str) -> float | str:
    if value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither a number nor 'auto'") from None


# JSON-schema types of policy settings -> argparse types
OPTION_TYPES = {"number": float, "integer": int, "string": str}


def policy_options() -> dict[str, tuple[dict, list[str]]]:
    """Every option a runtime policy declares: name -> (its settings schema, policies)."""
    options: dict[str, tuple[dict, list[str]]] = {}
    for name in runtime_names():
        policy = get_policy(name)
        for option in policy.options:
            options.setdefault(option, (policy.settings[option], []))[1].append(name)
    return options


def policy_help() -> str:
    names = [
        f"{name} (a model with an exit gate)" if get_policy(name).needs_scores else name
        for name in runtime_names()
    ]
    return f"{', '.join(names)} or full"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="early-exit", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    p = commands.add_parser("predict", help="classify texts with a trained run, exiting early")
    p.add_argument(
        "run_dir",
        help="results/<task>/<method>/seed<seed> (or its model/ directory), or a directory "
        "written by early-exit export (run on ONNX Runtime)",
    )
    p.add_argument("input", nargs="?", default="-", help="input file (default: stdin)")
    p.add_argument(
        "--policy",
        default="entropy",
        help=policy_help(),
    )
    p.add_argument(
        "--threshold",
        type=threshold_arg,
        default="auto",
        help="the policy's knob, or auto: the operating point the workflow chose on dev",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--output", default="-", help="output JSONL (default: stdout)")
    p.add_argument("--keep-order", action="store_true", help="batch in arrival order")
    p.add_argument(
        "--max-drop",
        type=float,
        default=None,
        help="for --threshold auto: choose the knob from the run's sweep with this allowed "
        "dev drop (default: the workflow's operating_points.tsv, else the config schema's "
        "default analysis.max_drop)",
    )
    for option, (spec, owners) in policy_options().items():
        p.add_argument(
            f"--{option.replace('_', '-')}",
            dest=option,
            type=OPTION_TYPES[spec.get("type", "string")],
            default=None,
            help=f"{', '.join(owners)}: {spec.get('description', option)} "
            f"(default {spec.get('default')})",
        )
    e = commands.add_parser(
        "export", help="write a trained run as ONNX graphs for the ONNX Runtime engine"
    )
    e.add_argument("run_dir", help="results/<task>/<method>/seed<seed> (or its model/ directory)")
    e.add_argument("out_dir", help="the export directory to write (replaced atomically)")
    s = commands.add_parser(
        "serve", help="answer POST /classify over HTTP, refilling the batch as rows exit"
    )
    s.add_argument("run_dir", help="a run directory (torch) or an export directory (ONNX Runtime)")
    s.add_argument("--policy", default="entropy", help=policy_help())
    s.add_argument(
        "--threshold",
        type=threshold_arg,
        default="auto",
        help="the policy's knob, or auto: the operating point chosen on dev",
    )
    s.add_argument(
        "--mode",
        choices=("refill", "shrink", "full"),
        default="refill",
        help="refill (default: the batch refilled as rows exit, for a run directory and an "
        "export alike), shrink (dynamic batches that shrink as rows exit) or full (full depth)",
    )
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    d = Limits()  # the server's defaults, shown here, kept in one place
    s.add_argument("--max-batch", type=int, default=d.max_batch, help="rows per layer call")
    s.add_argument("--max-queue", type=int, default=d.max_queue, help="texts waiting (503 beyond)")
    s.add_argument(
        "--max-texts", type=int, default=d.max_texts, help="texts per request (413 beyond)"
    )
    s.add_argument("--timeout", type=float, default=d.timeout, help="seconds per request (504)")
    s.add_argument(
        "--max-wait",
        type=int,
        default=d.max_wait,
        help="layer calls a deeper cohort waits before it must run (fairness)",
    )
    s.add_argument(
        "--admission",
        choices=["eager", "bulk"],
        default="eager",
        help="refill: admit whenever a slot frees (eager) or in bulk (docs/serving.md)",
    )
    return top


def serve_command(args) -> int:
    from early_exit.serving.app import serve

    for name in ("max_batch", "max_queue", "max_texts", "timeout"):
        if getattr(args, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be > 0")
    engine = load_engine(args.run_dir, args.device)
    mode = args.mode
    if args.policy == "full":
        policy, mode, knob = None, "full", None
    else:
        knob = engine.operating_point(args.policy) if args.threshold == "auto" else args.threshold
        policy = engine.policy(args.policy, knob)
    from early_exit.serving.scheduler import Admission

    admission = Admission.bulk(args.max_batch) if args.admission == "bulk" else Admission()
    limits = Limits(
        args.max_batch,
        args.max_queue,
        args.max_texts,
        timeout=args.timeout,
        max_wait=args.max_wait,
        admission=admission,
    )
    info = {
        "run": str(args.run_dir),
        "policy": args.policy,
        "threshold": knob,
        "task": engine.meta.get("task"),
    }
    return serve(engine, policy, mode, args.host, args.port, limits, info)


def load_engine(path: str, device: str):
    """The engine for a run directory (torch) or an export directory (ONNX Runtime)."""
    from early_exit.inference.ort_engine import OrtEngine, looks_like_export

    if looks_like_export(path):
        return OrtEngine.from_dir(path, device=device)
    from early_exit.inference.engine import EarlyExitEngine

    return EarlyExitEngine.from_run(path, device=device)


def export_command(args) -> int:
    from early_exit.inference.onnx_export import export_run

    out = export_run(args.run_dir, args.out_dir)
    graphs = len(list(out.glob("*.onnx")))
    print(f"early-exit: exported {graphs} ONNX graphs to {out} (model card: {out / 'README.md'})",
          file=sys.stderr)  # fmt: skip
    return 0


def predict_command(args) -> int:
    engine = load_engine(args.run_dir, args.device)
    given = {name: getattr(args, name) for name in policy_options()}
    options = {"max_drop": args.max_drop} | {k: v for k, v in given.items() if v is not None}
    if args.policy != "full":
        engine.policy(args.policy, args.threshold, **dict(options))  # fail before reading input
    numbers, texts, skipped = read_input(args.input, args.format, engine.fields)
    pairs = texts[1] if len(texts) > 1 else None
    answers = engine.classify(
        texts[0],
        args.policy,
        args.threshold,
        pairs,
        args.batch_size,
        not args.keep_order,
        progress=len(numbers) >= PROGRESS_FROM,
        **options,
    )
    lines = "".join(
        json.dumps({"line": n, **a.to_json()}) + "\n" for n, a in zip(numbers, answers, strict=True)
    )
    if args.output == "-":
        sys.stdout.write(lines)
    else:
        from early_exit.support.atomic import write_text

        write_text(args.output, lines)
    summarise(answers, skipped, engine.max_length)
    return 0


def summarise(answers, skipped: list[int], max_length: int) -> None:
    truncated = sum(a.truncated for a in answers)
    layers = [a.exit_layer for a in answers]
    mean = sum(layers) / len(layers) if layers else float("nan")
    print(f"early-exit: {len(answers)} answers, mean exit layer {mean:.2f}", file=sys.stderr)
    if truncated:
        print(f"early-exit: {truncated} truncated to {max_length} tokens", file=sys.stderr)
    if skipped:
        shown = ", ".join(map(str, skipped[:20])) + (" ..." if len(skipped) > 20 else "")
        print(f"early-exit: skipped {len(skipped)} empty line(s): {shown}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"predict": predict_command, "export": export_command, "serve": serve_command}
    command = commands[args.command]
    try:
        return command(args)
    except (ConfigError, DataError) as err:
        print(f"early-exit: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
