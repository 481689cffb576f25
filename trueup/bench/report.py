"""The benchmark's outputs: a JSON result file, a PNG chart, and the lines printed for people."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def write_png(result: dict, path: Path) -> None:
    """Throughput per variant (events/s) and latency percentiles per stage (s), side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    throughput = (result.get("throughput") or {}).get("events_per_s") or {}
    if throughput:
        names = list(throughput)
        bars = left.bar(names, [throughput[n] for n in names], color=["#888", "#4a7", "#47a", "#c63"][: len(names)])
        left.bar_label(bars, fmt="%.0f")
        left.set_title(f"throughput, {result['throughput']['events']} events (median of {result['throughput']['runs']})")
        left.set_ylabel("events/s")
        left.set_yscale("log")
    else:
        left.set_axis_off()
    latency = result.get("latency") or {}
    stages = [s for s in ("commit_to_event_s", "commit_to_projection_s", "commit_to_alert_s")
              if (latency.get(s) or {}).get("count")]
    if stages:
        width = 0.25
        for i, p in enumerate(("p50", "p95", "p99")):
            xs = [j + (i - 1) * width for j in range(len(stages))]
            right.bar(xs, [latency[s][p] for s in stages], width, label=p)
        right.set_xticks(range(len(stages)), [s.removesuffix("_s").replace("_", " ") for s in stages])
        right.set_ylabel("seconds")
        right.set_title(f"latency at {latency['rate_asked']:g} changes/s asked "
                        f"({latency.get('rate_achieved')} achieved)")
        right.legend()
    else:
        right.set_axis_off()
    machine = result.get("machine", {})
    fig.suptitle(f"trueup bench {result.get('started', '')[:19]} on {machine.get('cpus')} CPUs, "
                 f"{machine.get('memory_gib')} GiB")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def lines(result: dict) -> list[str]:
    out = []
    t = result.get("throughput")
    if t:
        out.append(f"throughput over {t['events']} events, median of {t['runs']} run(s), events/s:")
        out += [f"  {name:14} {value:>12,.0f}" for name, value in t["events_per_s"].items()]
        out.append("  ratios: " + ", ".join(f"{k} {v}" for k, v in t["ratios"].items())
                   + f" (targets: naive >= {t['targets']['pipeline_vs_naive']}, "
                     f"minimal >= {t['targets']['pipeline_vs_minimal']})")
        by_cpu = t.get("events_per_cpu_s")  # absent from result files written before it was kept
        if by_cpu:
            out.append("  per CPU-second of each variant's own process: "
                       + ", ".join(f"{name} {value:,.0f}" for name, value in by_cpu.items())
                       + "; ratios: " + (", ".join(f"{k} {v}" for k, v in t["ratios_by_cpu"].items()) or "none"))
        for i, stage in enumerate(t["stages"]):
            out.append(f"  run {i + 1}: stages drained at {stage['stage_drained_s']} s")
        out.append("  settings: " + ", ".join(f"{k}={v}" for k, v in t["settings"].items()))
        profile = t.get("profile") or {}
        if profile.get("error"):
            out.append(f"  profile: none, {profile['error']}")
        elif profile:
            top = profile["main_thread_inclusive_trueup"][:8]
            out.append(f"  profiled run (not counted): {profile['events_per_s']:,.0f} events/s; main thread, "
                       "inclusive: " + (", ".join(f"{row['function']} {row['share']:.0%}" for row in top) or "no samples"))
            if profile.get("raw_stacks"):
                out.append(f"  raw stacks (py-spy, every thread): {profile['raw_stacks']} beside the result file")
    lat = result.get("latency")
    if lat:
        out.append(f"latency at {lat['rate_asked']:g} changes/s asked, {lat['rate_achieved']} achieved, "
                   f"{lat['changes_written']} changes, {_workers(lat)}:")
        for stage in ("commit_to_event_s", "commit_to_projection_s", "commit_to_alert_s"):
            s = lat[stage]
            out.append(f"  {stage:24} n={s['count']:<6} p50={s['p50']} p95={s['p95']} p99={s['p99']}")
        for rule, s in (lat.get("commit_to_alert_by_rule_s") or {}).items():
            out.append(f"    {rule:22} n={s['count']:<6} p50={s['p50']} max={s['max']}")
        stages = lat.get("watermark_stage_mean_s") or {}
        if stages:
            out.append("  watermark stages, mean s per barrier: "
                       + ", ".join(f"{stage} {s['mean_s']} (n={s['count']})" for stage, s in stages.items()))
    snap = result.get("snapshot")
    if snap:
        out.append(f"snapshot of {snap['rows']} rows: {snap['elapsed_s']} s, {snap['rows_per_s']} rows/s end to end "
                   f"with {_workers(snap)} (target {snap['target_rows_per_s']})")
    return out


def _workers(part: dict) -> str:
    """'1 worker' or 'N workers': a part's worker count, one for result files from before it was kept."""
    count = part.get("workers", 1)
    return f"{count} worker{'s' if count > 1 else ''}"
