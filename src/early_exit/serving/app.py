"""`early-exit serve`: an HTTP JSON API over the engine, on FastAPI and uvicorn.

    POST /classify  {"text": "one text"} or {"text": ["a", "b"]} (+ "text_pair" for a pair
                    task) -> {"answers": [...]}, each answer with the fields of
                    `early-exit predict` (`line` is the text's 1-based place in the list)
    GET  /health    -> {"status": "ok", the mode, policy, knob, queue and limits}

The event loop only parses, tokenises and queues; one `Worker` thread runs the model, so
the scheduler sees every request (docs/serving.md). Limits: `max_texts` texts per
request, `max_body` bytes, `max_queue` texts waiting (503 beyond it), `timeout` seconds
per request (504). Every bad request is a 4xx JSON `{"error": ...}` naming the problem;
the server keeps serving. Shutdown (SIGINT/SIGTERM) stops accepting, answers what is
queued and in flight, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from early_exit.serving.scheduler import Job, QueueFull, Scheduler, Worker
from early_exit.support.errors import DataError


@dataclass(frozen=True)
class Limits:
    max_batch: int = 32  # rows per layer call
    max_queue: int = 256  # texts waiting
    max_texts: int = 64  # texts per request
    max_body: int = 1 << 20  # bytes per request
    timeout: float = 30.0  # seconds per request
    max_wait: int = 4  # ticks a cohort waits before it must run (the fairness bound)


def error(status: int, message: str):
    return JSONResponse({"error": message}, status_code=status)


def parse_body(raw: bytes, content_type: str, limits: Limits, fields: list[str]):
    """(texts, pairs or None) from a request body, or (status, message) of what is wrong."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        return 415, f"content type {content_type or 'missing'!r}: send application/json"
    if not raw:
        return 400, 'empty body: send {"text": "..."} or {"text": ["...", ...]}'
    if len(raw) > limits.max_body:
        return 413, f"body of {len(raw)} bytes: the limit is {limits.max_body}"
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        return 400, f"body not UTF-8 ({err.reason} at byte {err.start})"
    except json.JSONDecodeError as err:
        return 400, f"invalid JSON ({err.msg} at line {err.lineno} column {err.colno})"
    if not isinstance(body, dict) or "text" not in body:
        return 422, 'expected a JSON object with a "text" field (a string or a list of strings)'
    columns = []
    for name in fields:
        if name not in body:
            return 422, (
                f"this model classifies pairs ({', '.join(fields)}): give {name!r} as well"
            )
        value = body[name]
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return 422, f"{name!r}: expected a string or a list of strings"
        columns.append(value)
    if any(len(c) != len(columns[0]) for c in columns):
        return 422, f"{', '.join(fields)}: lists of different lengths"
    n = len(columns[0])
    if n == 0:
        return 422, "no texts: the list is empty"
    if n > limits.max_texts:
        return 413, f"{n} texts: the limit is {limits.max_texts} per request"
    if any(not any(c[i].strip() for c in columns) for i in range(n)):
        return 422, "an empty text: every text needs some characters"
    return columns[0], (columns[1] if len(columns) > 1 else None)


def create_app(engine, policy, mode: str = "refill", limits: Limits = Limits(), info=None):
    """The ASGI app: `policy` (a runtime policy, or None at full depth) and `mode` fixed."""
    scheduler = Scheduler(engine, policy, mode, limits.max_batch, limits.max_wait)
    worker = Worker(scheduler, limits.max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        worker.start()
        yield
        await asyncio.get_running_loop().run_in_executor(None, worker.stop)

    app = FastAPI(title="early-exit", lifespan=lifespan)
    app.state.worker = worker

    @app.get("/health")
    async def health():
        return {
            "status": "ok",
            "mode": mode,
            "policy": "full" if policy is None else type(policy).__name__,
            "fields": engine.fields,
            "waiting": len(scheduler.waiting),
            "in_flight_rows": scheduler.in_flight if mode == "refill" else None,
            **(info or {}),
            **{k: getattr(limits, k) for k in limits.__dataclass_fields__},
        }

    @app.post("/classify")
    async def classify(request: Request):
        try:
            raw = await request.body()
        except ClientDisconnect:
            return error(400, "the client disconnected before the body arrived")
        parsed = parse_body(raw, request.headers.get("content-type", ""), limits, engine.fields)
        if isinstance(parsed[0], int):
            return error(*parsed)
        texts, pairs = parsed
        try:
            features, truncated = engine.encode(texts, pairs)
        except DataError as err:
            return error(422, str(err))
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def settle(answers, err):
            def set_():
                if not future.done():
                    future.set_result((answers, err))

            loop.call_soon_threadsafe(set_)

        job = Job(features, truncated, settle)
        try:
            worker.submit(job)
        except QueueFull as err:
            return error(503, str(err))
        try:
            answers, err = await asyncio.wait_for(future, limits.timeout)
        except asyncio.TimeoutError:
            job.cancelled = True
            return error(504, f"no answer within {limits.timeout:g} s; the server is overloaded")
        if err is not None:
            return error(500, f"the model failed on this request ({err})")
        return {"answers": [{"line": i + 1, **a.to_json()} for i, a in enumerate(answers)]}

    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line DataError (port in use, no such address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise DataError(f"{host}:{port}: cannot listen ({err.strerror})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def server(app, sock: socket.socket, log_level: str = "warning", graceful: float = 30.0):
    """A uvicorn server for `app` on `sock` (run it with `.run(sockets=[sock])`)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level=log_level,
        timeout_graceful_shutdown=graceful,
        access_log=False,
        lifespan="on",
    )
    return uvicorn.Server(config)


def serve(engine, policy, mode: str, host: str, port: int, limits: Limits, info=None) -> int:
    """Run the API until interrupted; the socket is bound first, so a port in use is a
    one-line error before anything starts."""
    import sys

    sock = bind(host, port)
    app = create_app(engine, policy, mode, limits, info)
    print(
        f"early-exit: serving {mode} on http://{host}:{sock.getsockname()[1]} "
        "(POST /classify, GET /health; Ctrl-C stops after answering what is in flight)",
        file=sys.stderr,
    )
    # uvicorn re-raises the signal after its graceful shutdown
    with contextlib.suppress(KeyboardInterrupt):
        server(app, sock, "info").run(sockets=[sock])
    return 0
