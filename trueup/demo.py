"""`trueup demo`: the stack, the simulator at a low fault rate, and a live view of what flows and what is wrong."""

from __future__ import annotations

import threading
import time

from rich.live import Live

from trueup.demo_view import render, snapshot
from trueup.simulator import Simulator

DEMO_FAULT_RATE = 0.02
ROUND_S = 120.0  # the simulator plans a run up front, so the demo runs it in rounds until Ctrl-C


class SimulatorThread(threading.Thread):
    """Round after round of simulated quote-to-cash traffic, each with a fresh seed, until stopped."""

    def __init__(self, dsns: dict[str, str], rate: float) -> None:
        super().__init__(name="demo-simulator", daemon=True)
        self.dsns, self.rate = dsns, rate
        self.current: Simulator | None = None
        self.done = {"changes": 0, "faults": 0}
        self.error: str | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        seed = int(time.time())
        while not self.halt.is_set():
            # A fresh seed each round: the simulator refuses to write a seed's ids into the same databases twice.
            self.current = Simulator(self.dsns, rate=self.rate, duration_s=ROUND_S, seed=seed,
                                     faults=DEMO_FAULT_RATE)
            try:
                self.current.run()
            except Exception as exc:  # shown in the view; the demo goes on so the stack can still be looked at
                self.error = f"{type(exc).__name__}: {exc}"
                return
            finally:
                for k, v in self.current.progress().items():
                    self.done[k] += v
                self.current = None
            seed += 1

    def stop(self) -> None:
        self.halt.set()
        current = self.current
        if current is not None:
            current.stop(drain=False)

    def progress(self) -> dict:
        current = self.current
        now = current.progress() if current is not None else {}
        return {k: v + now.get(k, 0) for k, v in self.done.items()} | {"error": self.error}


def run_demo(stack, workers: int, rate: float, token: str | None = None) -> None:
    print("starting the stack (PostgreSQL, broker, three Debezium connectors, workers)...")
    stack.up(workers=workers)
    traffic = SimulatorThread(stack.status()["postgres"], rate)
    traffic.start()
    before = None
    try:
        with Live(refresh_per_second=1, screen=False) as live:
            while True:
                now = snapshot(stack, token, time.monotonic(), traffic.progress())
                live.update(render(now, before))
                before = now
                time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        traffic.stop()
        traffic.join(10)
        print("stopping the stack...")
        stack.down()
        print("stopped: no trueup process left running")
