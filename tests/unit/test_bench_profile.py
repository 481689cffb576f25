"""The benchmark's profile summary: py-spy's raw stacks per thread, read as own and inclusive shares."""

from __future__ import annotations

from trueup.bench.throughput import summarize_profile

RAW = "\n".join([
    "thread (11): MainThread;main (trueup/cli.py:708);process (streams/join_agent.py:91);dumps (streams/pickling.py:26) 6",
    # py-spy leaves a thread's name out where it cannot read it: the main thread's id is the process id.
    "thread (11);main (trueup/cli.py:708);process (streams/join_agent.py:127);loads (streams/pickling.py:30) 3",
    "thread (11): MainThread;main (trueup/cli.py:708);walk (streams/x.py:5);walk (streams/x.py:7) 1",
    "thread (12): Thread-1;fetch (aiokafka/fetcher.py:216) 5",
    "not a sample line",
])


def test_shares_are_of_the_main_thread_and_a_function_counts_once_per_stack_whatever_its_line():
    summary = summarize_profile(RAW, main_thread_id=11)
    assert summary["samples_per_thread"] == {"MainThread": 10, "Thread-1": 5}
    own = {row["function"]: row["share"] for row in summary["main_thread_own"]}
    assert own == {"dumps (streams/pickling.py)": 0.6, "loads (streams/pickling.py)": 0.3, "walk (streams/x.py)": 0.1}
    inclusive = {row["function"]: row["share"] for row in summary["main_thread_inclusive"]}
    # process ran at two lines: one function holding 9 of the main thread's 10 samples; recursion counts once.
    assert inclusive["process (streams/join_agent.py)"] == 0.9
    assert inclusive["main (trueup/cli.py)"] == 1.0 and inclusive["walk (streams/x.py)"] == 0.1
    assert "fetch (aiokafka/fetcher.py)" not in inclusive
    assert [row["function"] for row in summary["main_thread_inclusive"]][0] == "main (trueup/cli.py)"
    # trueup's own modules, ranked before any cut, so library frames never crowd them out.
    ours = summarize_profile(RAW, main_thread_id=11, top=3)["main_thread_inclusive_trueup"]
    assert [row["function"] for row in ours] == ["process (streams/join_agent.py)", "dumps (streams/pickling.py)",
                                                "loads (streams/pickling.py)"]


def test_an_unnamed_thread_that_is_not_the_process_is_not_the_main_thread():
    summary = summarize_profile(RAW, main_thread_id=99)
    assert summary["samples_per_thread"] == {"MainThread": 7, "thread 11": 3, "Thread-1": 5}
    assert {row["function"]: row["share"] for row in summary["main_thread_own"]}["dumps (streams/pickling.py)"] == 0.8571


def test_top_limits_the_rows_and_no_samples_gives_empty_lists():
    assert len(summarize_profile(RAW, top=2)["main_thread_own"]) == 2
    assert summarize_profile("") == {"samples_per_thread": {}, "main_thread_own": [], "main_thread_inclusive": [],
                                     "main_thread_inclusive_trueup": []}


def test_the_printed_figures_name_the_profiled_run_and_trueup_own_functions_only():
    from trueup.bench.report import lines

    throughput = {"events": 100, "runs": 1, "events_per_s": {"pipeline": 10.0},
                  "ratios": {"pipeline_vs_naive": 0.1}, "targets": {"pipeline_vs_naive": 1.2, "pipeline_vs_minimal": 0.5},
                  "stages": [], "settings": {}, "profile": {"events_per_s": 8.0, **summarize_profile(RAW, 11)}}
    [line] = [text for text in lines({"throughput": throughput}) if "profile" in text]
    assert line.startswith("  profiled run (not counted): 8 events/s")
    assert "process (streams/join_agent.py) 90%" in line and "cli.py" not in line
    throughput["profile"] = {"error": "py-spy is not installed"}
    assert [text for text in lines({"throughput": throughput}) if "profile" in text] == [
        "  profile: none, py-spy is not installed"]


def test_the_sampler_profiles_a_live_process_until_told_to_finish(tmp_path):
    import subprocess
    import sys
    import time

    from trueup.bench.throughput import Sampler

    busy = subprocess.Popen([sys.executable, "-c", "def spin():\n    while True: sum(range(1000))\nspin()"])
    try:
        sampler = Sampler(busy.pid, tmp_path)
        sampler.start()
        time.sleep(1.0)
        summary = sampler.finish()
        still_running = busy.poll() is None  # finishing stops the sampling, not the process sampled
    finally:
        busy.kill()
        busy.wait()
    assert still_running and summary["samples_per_thread"]["MainThread"] > 10, summary
    assert summary["main_thread_inclusive"][0]["function"] in ("<module> (<string>)", "spin (<string>)")


def test_a_sampler_without_samples_says_why(tmp_path):
    from trueup.bench.throughput import Sampler

    sampler = Sampler(1, tmp_path)
    assert sampler.finish() == {"error": "py-spy never started"}


def test_the_profiled_runs_raw_stacks_are_kept_beside_the_result_and_named_in_it(tmp_path):
    from trueup.bench.report import lines
    from trueup.bench.run import _keep_profile

    work = tmp_path / "work"
    (work / "full-0").mkdir(parents=True)  # a counted run: never profiled, so it has no stacks
    (work / "full-1").mkdir()
    (work / "full-1" / "profile.txt").write_text(RAW)
    throughput = {"events": 100, "runs": 1, "events_per_s": {"pipeline": 10.0}, "ratios": {},
                  "targets": {"pipeline_vs_naive": 1.2, "pipeline_vs_minimal": 0.5}, "stages": [], "settings": {},
                  "profile": {"events_per_s": 8.0, **summarize_profile(RAW, 11)}}
    stem = tmp_path / "out" / "bench-20261207T000000Z"
    _keep_profile(throughput, work, stem)
    kept = tmp_path / "out" / "bench-20261207T000000Z-profile.txt"
    assert kept.read_text() == RAW
    assert throughput["profile"]["raw_stacks"] == kept.name
    assert f"  raw stacks (py-spy, every thread): {kept.name} beside the result file" in lines(
        {"throughput": throughput})


def test_a_profile_that_failed_keeps_no_raw_stacks(tmp_path):
    from trueup.bench.run import _keep_profile

    (tmp_path / "full-1").mkdir()
    (tmp_path / "full-1" / "profile.txt").write_text(RAW)
    throughput = {"profile": {"error": "py-spy wrote no profile"}}
    _keep_profile(throughput, tmp_path, tmp_path / "out" / "bench-x")
    assert throughput == {"profile": {"error": "py-spy wrote no profile"}}
    assert not (tmp_path / "out").exists()
