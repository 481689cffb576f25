"""Run a connector loop in the foreground until SIGTERM or SIGINT, then let it finish its current step."""

from __future__ import annotations

import signal


def run_until_signalled(runner) -> int:
    """runner has a `stop` event and a `run()` returning the exit code."""

    def halt(*_):
        runner.stop.set()

    signal.signal(signal.SIGTERM, halt)
    signal.signal(signal.SIGINT, halt)
    return runner.run()
