"""Run a workflow job with its logging, progress bars and errors in the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from early_exit.support.errors import EarlyExitError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
USER_ERROR = 2  # exit status of a problem the user can fix, as the CLI's (a bug exits 1)


@contextlib.contextmanager
def job_log(path: str | Path | None) -> Iterator[None]:
    """Send stdout/stderr/logging to `path`; turn user errors into a one-line exit message.

    A problem the user can fix (EarlyExitError) ends the job with its message and no
    traceback, both in the log and on the terminal; anything else is a bug and keeps
    its traceback.
    """
    if path is None:
        logging.basicConfig(level=logging.INFO, format=FORMAT, force=True)
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    message = None
    with (
        open(path, "a", encoding="utf-8") as fh,
        contextlib.redirect_stdout(fh),
        contextlib.redirect_stderr(fh),
    ):
        logging.basicConfig(stream=fh, level=logging.INFO, format=FORMAT, force=True)
        try:
            yield
        except EarlyExitError as err:
            logging.getLogger("early_exit").error("%s", err)
            message = f"error: {err}"
        except BaseException:
            logging.getLogger("early_exit").exception("job failed")  # traceback into the log
            raise
    if message:
        print(message, file=sys.stderr)
        raise SystemExit(USER_ERROR)
