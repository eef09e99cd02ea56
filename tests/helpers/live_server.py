"""A real `early-exit serve` app on 127.0.0.1 (an ephemeral port) in a thread, for the
serving tests: started within 10 s or the test fails, shut down gracefully after."""

import contextlib
import threading
import time

from early_exit.serving.app import bind, create_app, server
from early_exit.serving.limits import Limits

KNOB = 0.01


@contextlib.contextmanager
def serving(engine, mode="refill", policy="entropy", **limits):
    """Yields (base URL, the uvicorn server) while the block runs."""
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
