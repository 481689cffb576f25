"""CPU figures of the benchmark: a process's CPU seconds from /proc, events per CPU-second and their ratios."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from trueup.bench.cpu import per_cpu_s, process_cpu_s
from trueup.bench.report import lines
from trueup.bench.throughput import cpu_figures


def test_a_process_cpu_time_grows_with_the_work_it_does_and_is_none_once_it_is_gone():
    before = process_cpu_s(os.getpid())
    started = time.process_time()
    while time.process_time() - started < 0.3:
        sum(range(10_000))
    after = process_cpu_s(os.getpid())
    assert before is not None and after - before >= 0.2  # /proc counts in clock ticks of 10 ms
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: no /proc entry left
    assert process_cpu_s(child.pid) is None


def test_a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields(tmp_path):
    script = tmp_path / "odd (name) x.py"
    script.write_text("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
                      "time.sleep(30)\n")
    link = tmp_path / "py (odd) name"
    link.symlink_to(sys.executable)
    child = subprocess.Popen([str(link), str(script)])
    try:
        deadline = time.monotonic() + 20
        while (process_cpu_s(child.pid) or 0) < 0.2:
            assert time.monotonic() < deadline, "the child never used its CPU"
            time.sleep(0.1)
        assert process_cpu_s(child.pid) < 5
    finally:
        child.kill()
        child.wait()


def test_events_per_cpu_second_skips_what_cannot_be_divided_by():
    assert per_cpu_s(1000, 2.0) == 500
    assert per_cpu_s(1000, None) is None and per_cpu_s(1000, 0.0) is None


def test_cpu_figures_are_medians_over_runs_with_a_figure_and_ratios_of_those():
    figures = cpu_figures(1000, {"raw_consume": [0.1, 0.2, 0.1], "faust_minimal": [1.0, None, 2.0],
                                 "faust_naive": [2.0, 2.5, 4.0], "pipeline": [10.0, 8.0, 20.0]})
    assert figures["events_per_cpu_s"] == {"raw_consume": 10000.0, "faust_minimal": 750.0, "faust_naive": 400.0,
                                           "pipeline": 100.0}
    assert figures["ratios_by_cpu"] == {"pipeline_vs_naive": 0.25, "pipeline_vs_minimal": 0.133}
    assert figures["cpu_s"]["faust_minimal"] == [1.0, None, 2.0]
    without = cpu_figures(1000, {"faust_naive": [None], "faust_minimal": [1.0], "pipeline": [2.0]})
    assert without["events_per_cpu_s"] == {"faust_minimal": 1000.0, "pipeline": 500.0}
    assert without["ratios_by_cpu"] == {"pipeline_vs_minimal": 0.5}


def test_the_printed_figures_carry_the_cpu_line_only_when_the_result_has_it():
    throughput = {"events": 100, "runs": 1, "events_per_s": {"pipeline": 10.0}, "ratios": {"pipeline_vs_naive": 0.1},
                  "targets": {"pipeline_vs_naive": 1.2, "pipeline_vs_minimal": 0.5}, "stages": [], "settings": {}}
    assert not [text for text in lines({"throughput": throughput}) if "CPU-second" in text]
    throughput.update(events_per_cpu_s={"faust_naive": 4123.4, "pipeline": 1010.0},
                      ratios_by_cpu={"pipeline_vs_naive": 0.245})
    [line] = [text for text in lines({"throughput": throughput}) if "CPU-second" in text]
    assert line == ("  per CPU-second of each variant's own process: faust_naive 4,123, pipeline 1,010; "
                    "ratios: pipeline_vs_naive 0.245")
