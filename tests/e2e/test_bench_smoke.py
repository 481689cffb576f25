"""The benchmark's smoke run (what CI runs): every part measures something and writes its JSON and chart.

Figures are printed and stored, never asserted against targets here: a loaded CI machine is no benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_smoke_writes_figures_for_every_part(tmp_path):
    # Two workers for the latency and snapshot stacks. Each counts only its own partitions, so the snapshot
    # must add them up to finish at all; the latency run's watermarks are the group's, whoever reads them.
    out = subprocess.run([sys.executable, "-m", "trueup.cli", "bench", "--smoke", "--latency-workers", "2",
                          "--snapshot-workers", "2", "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    [result_file] = tmp_path.glob("bench-*.json")
    [chart] = tmp_path.glob("bench-*.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads(result_file.read_text())
    assert result["machine"]["cpus"] >= 1
    throughput = result["throughput"]
    assert set(throughput["events_per_s"]) == {"raw_consume", "faust_minimal", "faust_naive", "pipeline"}
    assert all(v > 0 for v in throughput["events_per_s"].values())
    # The same variants per CPU-second of their own processes, as the machine's load does not stretch them.
    assert set(throughput["events_per_cpu_s"]) == set(throughput["events_per_s"])
    assert all(v > 0 for v in throughput["events_per_cpu_s"].values())
    assert set(throughput["ratios_by_cpu"]) == {"pipeline_vs_naive", "pipeline_vs_minimal"}
    assert "per CPU-second of each variant's own process: raw_consume" in out.stdout
    # Every raw record went through the pipeline's normalizer and on to the joins.
    stage = throughput["stages"][0]
    raw_in = sum(v for t, v in stage["records_in"].items() if ".public." in t)
    assert raw_in == throughput["events"] and stage["stage_drained_s"]["links"] > 0
    # A missed target brings one more run, profiled and kept apart from the counted ones.
    assert len(throughput["all_runs"]["pipeline"]) == throughput["runs"]
    if not throughput["targets_met"]:
        profile = throughput["profile"]
        assert "error" not in profile, profile
        assert profile["events_per_s"] > 0 and profile["samples_per_thread"]["MainThread"] > 0
        assert any("(streams/join_agent.py)" in row["function"] for row in profile["main_thread_inclusive_trueup"])
        assert "profiled run (not counted)" in out.stdout
        # Its raw stacks are kept beside the result, where the result and the printed figures say.
        raw = (tmp_path / profile["raw_stacks"]).read_text()
        assert "MainThread" in raw and "(streams/join_agent.py" in raw
        assert f"raw stacks (py-spy, every thread): {profile['raw_stacks']}" in out.stdout
    latency = result["latency"]
    assert latency["workers"] == 2 and ", 2 workers:" in out.stdout
    assert latency["changes_written"] > 0 and latency["commit_to_event_s"]["count"] > 0
    assert latency["commit_to_event_s"]["p50"] > 0 and latency["commit_to_projection_s"]["count"] > 0
    # Where the alerts' wait went: barriers timed through the raw stage and the last link hop during the run.
    stages = latency["watermark_stage_mean_s"]
    assert stages["raw"]["count"] > 0 and stages["links hop 3"]["count"] > 0 and stages["raw"]["mean_s"] > 0
    snapshot = result["snapshot"]
    assert snapshot["rows"] == 3000 and snapshot["rows_per_s"] > 0 and snapshot["workers"] == 2
    assert "throughput over 3000 events" in out.stdout and "snapshot of 3000 rows" in out.stdout
    assert "rows/s end to end with 2 workers" in out.stdout
