"""`early-exit serve`: an HTTP JSON API over the engine, on FastAPI and uvicorn.

    POST /classify  {"text": "one text"} or {"text": ["a", "b"]} (+ "text_pair" for a pair
                    task) -> {"answers": [...]}, each answer with the fields of
                    `early-exit predict` (`line` is the text's 1-based place in the list)
    GET  /health    -> {"status": "ok", the mode, policy, knob, queue and limits}
    GET  /metrics   -> per-stage server timings (parse, tokenise, queue, model, answer) and
                       the rows per layer call (early_exit.serving.metrics)

The event loop only reads, parses and queues; one thread tokenises (once per text) and one
`Worker` thread runs the model, so the scheduler sees every request (docs/serving.md).
Limits: `max_texts` texts per request, `max_body` bytes (the declared Content-Length is
checked before reading, and the body is read with that cap), `max_queue` texts waiting
(503 beyond it), `timeout` seconds per request (504). Every bad request is a 4xx JSON
`{"error": ...}` naming the problem, anything unexpected a JSON 500 naming it; the server
keeps serving. Shutdown (SIGINT/SIGTERM) stops accepting, answers what is
queued and in flight, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from early_exit.serving.limits import Limits
from early_exit.serving.metrics import StageTimes
from early_exit.serving.scheduler import Job, QueueFull, Scheduler, Worker
from early_exit.support.errors import DataError


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
    except RecursionError:
        return 400, "invalid JSON: nested too deeply"
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        return 400, f"invalid JSON ({err})"
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
    for name, column in zip(fields, columns, strict=False):
        for i, value in enumerate(column):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as err:  # JSON's \ud800 escapes decode to lone surrogates
                return 422, (
                    f"{name!r} {i + 1}: not encodable as UTF-8 ({err.reason}, "
                    f"{value[err.start]!r} at character {err.start})"
                )
    return columns[0], (columns[1] if len(columns) > 1 else None)


async def read_body(request: Request, limit: int) -> bytes | tuple[int, str]:
    """The body, read in chunks up to `limit` bytes; (status, message) when the declared
    Content-Length is over the limit or invalid (nothing read) or the stream passes it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            return 400, f"content-length {declared!r}: not a number of bytes"
        if int(declared) > limit:
            return 413, f"body of {int(declared)} bytes: the limit is {limit}"
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return 413, f"body of more than {limit} bytes: the limit is {limit}"
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(engine, policy, mode: str = "refill", limits: Limits | None = None, info=None):
    """The ASGI app: `policy` (a runtime policy, or None at full depth) and `mode` fixed."""
    limits = limits or Limits()
    scheduler = Scheduler(engine, policy, mode, limits.max_batch, limits.max_wait, limits.admission)
    worker = Worker(scheduler, limits.max_queue)
    times = StageTimes()
    # one thread tokenises: off the event loop, and a fast tokenizer is not safe to call
    # from two threads at once
    tokenising = ThreadPoolExecutor(1, thread_name_prefix="early-exit-tokenise")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        worker.start()
        yield
        await asyncio.get_running_loop().run_in_executor(None, worker.stop)
        tokenising.shutdown(wait=False)

    app = FastAPI(title="early-exit", lifespan=lifespan)
    app.state.worker = worker
    app.state.times = times

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception):
        # Starlette still logs the traceback; the client gets JSON naming the problem
        return error(500, f"internal error: {type(err).__name__}: {err}")

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
            "admission": scheduler.admission,
        }

    @app.get("/metrics")
    async def metrics():
        return {
            "mode": mode,
            "requests": times.requests,
            "stages": times.summary(),
            "rows_per_call": scheduler.rows_per_call.summary(),
        }

    @app.post("/classify")
    async def classify(request: Request):
        start = time.perf_counter()
        try:
            raw = await read_body(request, limits.max_body)
        except ClientDisconnect:
            return error(400, "the client disconnected before the body arrived")
        if isinstance(raw, tuple):
            return error(*raw)
        parsed = parse_body(raw, request.headers.get("content-type", ""), limits, engine.fields)
        if isinstance(parsed[0], int):
            return error(*parsed)
        texts, pairs = parsed
        loop = asyncio.get_running_loop()
        parsed_at = time.perf_counter()
        try:
            features, truncated = await loop.run_in_executor(
                tokenising, engine.encode, texts, pairs
            )
        except DataError as err:
            return error(422, str(err))
        except Exception as err:  # noqa: BLE001 - a text the tokenizer cannot take
            return error(500, f"the tokenizer failed on this request ({type(err).__name__}: {err})")
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
            return error(500, f"the model failed on this request ({type(err).__name__}: {err})")
        body = {"answers": [{"line": i + 1, **a.to_json()} for i, a in enumerate(answers)]}
        end = time.perf_counter()
        admitted = job.admitted if job.admitted is not None else job.arrived
        finished = job.finished if job.finished is not None else end
        times.record(
            parse=parsed_at - start,
            tokenise=job.arrived - parsed_at,
            queue=admitted - job.arrived,
            model=finished - admitted,
            answer=end - finished,
            total=end - start,
        )
        return body

    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line DataError (port in use, no such address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # protocol IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose `proto`
    # says TCP, and an accepted socket inherits the listener's. Without it uvicorn's
    # separate header and body writes wait for the client's delayed ACK (about 40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
