"""Run a notebook as papermill's command line does, ending a user error as one line.

`python -m early_exit.analysis.notebook IN OUT [papermill options]` is `papermill` with one
difference: a cell that raises a problem the user can fix (`DataError`, `ConfigError`: a
missing or broken table, say) ends the job with that error's message as the log's last
line and exit status 2, as a workflow script does (`early_exit.support.joblog`), instead
of papermill's traceback; anything else is a bug and keeps it.
"""

from __future__ import annotations

import sys

from early_exit.support.joblog import USER_ERROR

USER_ERRORS = ("DataError", "ConfigError")  # EarlyExitError's kinds, by name in the kernel


def main(argv: list[str] | None = None) -> int:
    import click
    from papermill.cli import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.main(args=argv, prog_name="papermill", standalone_mode=False)
    except click.ClickException as err:  # a bad option: click's own message, as papermill's
        err.show()
        return err.exit_code
    except PapermillExecutionError as err:
        if err.ename not in USER_ERRORS:
            raise
        print(f"error: {err.evalue}", file=sys.stderr)
        return USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
