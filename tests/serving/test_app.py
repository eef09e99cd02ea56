"""The HTTP API on a real uvicorn server on 127.0.0.1: the engine's answers under
concurrent load, every bad input answered 4xx while a load runs, 503/504, graceful
shutdown, an ONNX export served, and the CLI's one-line errors."""

import contextlib
import socket
import threading
import time

import httpx
import pytest

from early_exit.cli import main
from early_exit.inference.engine import EarlyExitEngine
from early_exit.serving.app import Limits, bind, create_app, server
from early_exit.serving.load import run_load

KNOB = 0.01


@contextlib.contextmanager
def serving(engine, mode="refill", policy="entropy", **limits):
    rule = None if policy == "full" else engine.policy(policy, KNOB)
    sock = bind("127.0.0.1", 0)
    srv = server(create_app(engine, rule, mode, Limits(**limits)), sock, graceful=10)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):  # bounded: 10 s
        if srv.started:
            break
        time.sleep(0.05)
    assert srv.started
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", srv
    finally:
        srv.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture(scope="module")
def engine(serving_runs):
    runs, _ = serving_runs
    return EarlyExitEngine.from_run(runs["sledgehammer"], device="cpu")


def expected(engine, texts):
    return [(a.label, a.exit_layer) for a in engine.classify(texts, "entropy", KNOB)]


def test_concurrent_load_gives_the_engines_answers(engine, serving_runs):
    _, texts = serving_runs
    want = expected(engine, texts)
    with serving(engine) as (url, _):
        r = httpx.post(f"{url}/classify", json={"text": texts[0]})
        assert r.status_code == 200, r.text
        one = r.json()["answers"]
        assert set(one[0]) == {
            "line",
            "label",
            "label_name",
            "exit_layer",
            "score_name",
            "score",
            "flops",
            "tokens",
            "truncated",
        }
        batch = httpx.post(f"{url}/classify", json={"text": texts}).json()["answers"]
        assert [(a["label"], a["exit_layer"]) for a in batch] == want
        load = run_load(url, texts, rate=400.0, n_requests=len(texts) * 2, max_seconds=20)
        assert load.answered == load.sent == len(texts) * 2
        got = [(a[0]["label"], a[0]["exit_layer"]) for a in load.answers]
        assert got == want * 2
        assert httpx.get(f"{url}/health").json()["status"] == "ok"


BAD = [  # (content type, body, status, words in the error)
    ("application/json", b"", 400, "empty body"),
    ("application/json", b"{" + b" " * 5000 + b"}", 413, "bytes"),
    ("application/json", b'{"text": ["a", "b", "c", "d", "e"]}', 413, "texts"),
    ("application/json", b'{"text": "caf\xe9"}', 400, "not UTF-8"),
    ("text/plain", b'{"text": "a"}', 415, "content type"),
    ("application/json", b"{nope", 400, "invalid JSON"),
    ("application/json", b'{"texts": "a"}', 422, "text"),
    ("application/json", b'{"text": []}', 422, "empty"),
    ("application/json", b'{"text": 3}', 422, "string"),
]


def test_bad_input_while_a_load_runs(engine, serving_runs):
    _, texts = serving_runs
    want = expected(engine, texts)
    with serving(engine, max_texts=4, max_body=4096) as (url, _):
        result = {}
        load = threading.Thread(
            target=lambda: result.setdefault(
                "load", run_load(url, texts, rate=100.0, n_requests=len(texts), max_seconds=20)
            )
        )
        load.start()
        for content_type, body, status, words in BAD:
            r = httpx.post(f"{url}/classify", content=body, headers={"content-type": content_type})
            assert r.status_code == status, (body, r.text)
            assert words in r.json()["error"], r.json()
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as s:
            s.sendall(
                b"POST /classify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json"
                b'\r\ncontent-length: 1000\r\n\r\n{"text": "half'
            )  # then hang up
        load.join(30)
        got = [(a[0]["label"], a[0]["exit_layer"]) for a in result["load"].answers]
        assert got == want
        assert httpx.post(f"{url}/classify", json={"text": texts[:2]}).status_code == 200


def test_pair_task_given_one_text():
    from early_exit.serving.app import parse_body

    status, message = parse_body(
        b'{"text": "a"}', "application/json", Limits(), ["text", "text_pair"]
    )
    assert status == 422 and "text_pair" in message
    texts, pairs = parse_body(
        b'{"text": "a", "text_pair": "b"}', "application/json", Limits(), ["text", "text_pair"]
    )
    assert (texts, pairs) == (["a"], ["b"])


def test_full_queue_is_503_and_timeout_504(engine, serving_runs):
    _, texts = serving_runs
    with serving(engine, max_queue=1) as (url, _):
        r = httpx.post(f"{url}/classify", json={"text": texts[:2]})
        assert r.status_code == 503 and "queue" in r.json()["error"]
        assert httpx.post(f"{url}/classify", json={"text": texts[0]}).status_code == 200
    with serving(engine, timeout=1e-6) as (url, _):
        r = httpx.post(f"{url}/classify", json={"text": texts})
        assert r.status_code == 504 and "no answer" in r.json()["error"]


def test_graceful_shutdown_answers_what_is_in_flight(engine, serving_runs, monkeypatch):
    _, texts = serving_runs
    results = []
    run = engine.run

    def slow(*args, **kwargs):  # each dynamic batch takes 0.2 s: requests are in flight
        time.sleep(0.2)
        return run(*args, **kwargs)

    monkeypatch.setattr(engine, "run", slow)
    with serving(engine, mode="shrink", max_batch=8) as (url, srv):

        def ask():
            results.append(httpx.post(f"{url}/classify", json={"text": texts}, timeout=20))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        worker = srv.config.app.state.worker
        for _ in range(200):  # bounded: 10 s
            if worker.submitted == 4:
                break
            time.sleep(0.05)
        assert worker.submitted == 4
        srv.should_exit = True
        for t in threads:
            t.join(20)
    assert len(results) == 4
    assert all(r.status_code == 200 and len(r.json()["answers"]) == len(texts) for r in results)


def test_an_onnx_export_is_served(serving_runs, tmp_path):
    pytest.importorskip("onnxruntime")
    from early_exit.inference.onnx_export import export_run
    from early_exit.inference.ort_engine import OrtEngine

    runs, texts = serving_runs
    out = export_run(runs["joint"], tmp_path / "export")
    ort = OrtEngine.from_dir(out, device="cpu")
    want = [(a.label, a.exit_layer) for a in ort.classify(texts, "entropy", KNOB)]
    with serving(ort, mode="shrink") as (url, _):
        load = run_load(url, texts, rate=200.0, n_requests=len(texts), max_seconds=20)
        assert [(a[0]["label"], a[0]["exit_layer"]) for a in load.answers] == want


def test_cli_port_in_use_and_invalid_run_dir(serving_runs, capsys, tmp_path):
    runs, _ = serving_runs
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert (
            main(
                [
                    "serve",
                    str(runs["joint"]),
                    "--threshold",
                    "0.1",
                    "--port",
                    str(port),
                    "--device",
                    "cpu",
                ]
            )
            == 2
        )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot listen" in err
    assert main(["serve", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a trained run" in err
