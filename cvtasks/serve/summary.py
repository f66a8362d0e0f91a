"""Tables and a figure of the export checks, the load test and the soak against their targets
(for the notebook)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

import config
from cvtasks.provenance import file_sha256
from cvtasks.stats import verdict


# The file each ``python -m cvtasks bench <target>`` writes under reports/fashion/.
BENCH_FILES = {"serve": "bench_serve", "soak": "soak", "memory": "soak_memory"}


def _row(what: str, target: str, value: Any, ok: bool | None) -> dict[str, Any]:
    """A table row; ``ok`` None for a figure reported without a target."""
    return {"what": what, "target": target, "measured": value, "met": "-" if ok is None else "yes" if ok else "NO"}


def _at_most(what: str, goal: float, value: float, low: float | None = None) -> dict[str, Any]:
    """A row whose figure should be at most ``goal``; ``low``: the lowest of its spread (the
    interval's low end, or the lowest of repeated runs), see stats.verdict."""
    return {**_row(what, f"<= {goal}", value, None), "met": verdict(value, goal, at_least=False, low=low)}


def _interval(figures: dict[str, Any], key: str) -> str:
    """``; 95 % interval a to b`` where the file has one for ``key``, else nothing."""
    low, high = figures.get(f"{key}_ci_low"), figures.get(f"{key}_ci_high")
    return "" if low is None or high is None else f"; 95 % interval {low:+.1f} to {high:+.1f}"


def export_table(m: dict[str, float]) -> pd.DataFrame:
    t = config.EXPORT_TARGETS
    rows = [
        _row("ONNX vs PyTorch: max |diff| of probabilities (10k test)", f"<= {t['max_abs_diff']:g}",
             f"{m['export/onnx_max_abs_diff']:.2e}", m["export/onnx_max_abs_diff"] <= t["max_abs_diff"]),
        _row("ONNX vs PyTorch: same top-1", f">= {t['top1_agreement']:.1%}",
             f"{m['export/onnx_top1_agreement']:.2%}", m["export/onnx_top1_agreement"] >= t["top1_agreement"]),
        _row("INT8 accuracy drop (points, 10k test)", f"<= {t['int8_drop_points']}",
             f"{m['export/int8_accuracy_drop_points']:.2f}", m["export/int8_accuracy_drop_points"] <= t["int8_drop_points"]),
        _row("INT8 model size (MB)", f"<= {config.SERVE_SLO['model_mb']}", f"{m['export/int8_mb']:.2f}",
             m["export/int8_mb"] <= config.SERVE_SLO["model_mb"]),
    ]
    sizes = pd.DataFrame({"MB": [m["export/checkpoint_mb"], m["export/fp32_mb"], m["export/int8_mb"]],
                          "test accuracy": [m["export/torch_test_accuracy"], m["export/fp32_test_accuracy"],
                                            m["export/int8_test_accuracy"]]},
                         index=pd.Index(["PyTorch checkpoint", "ONNX FP32", "ONNX INT8"], name="model")).round(4)
    return pd.DataFrame(rows).set_index("what"), sizes


def inference_table(bench: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(bench["inference_ms"]).T.rename_axis("backend").rename(
        columns={"batch1_ms": "ms per image, batch 1", "batch32_ms_per_image": "ms per image, batch 32"})


def kinds_table(bench: dict[str, Any]) -> pd.DataFrame:
    """Each upload kind decoded in full and at reduced scale: CPU per decode in process, per
    request in the service, and how often the model predicts the same class from both."""
    names = {"mean_kb": "mean KB", "decode_ms_full": "decode ms, full", "decode_ms_draft": "decode ms, reduced",
             "server_cpu_ms_full": "server CPU ms/request, full", "server_cpu_ms_draft": "server CPU ms/request, reduced",
             "same_class": "same class, reduced vs full"}
    table = pd.DataFrame(bench["upload_kinds"]).set_index("kind")
    return table[list(names)].rename(columns=names)


def load_table(bench: dict[str, Any]) -> pd.DataFrame:
    """Every run of the load test: the service at each worker count, the same model unbatched,
    the naive baseline."""
    servers = [(f"ONNX INT8 + micro-batching, {srv['workers']} worker{'s' * (srv['workers'] > 1)}", srv)
               for srv in bench["service_by_workers"]]
    servers += [("ONNX INT8, no batching", bench["onnx_without_batching"]),
                ("PyTorch eager, no batching (naive)", bench["naive_baseline"])]
    rows = []
    for label, server in servers:
        for run in server["runs"]:
            load = f"{run['offered_rps']} req/s" if run["offered_rps"] else "saturation"
            rows.append({"server": label, "load": load, **{k: run[k] for k in
                         ("rps", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "error_rate", "server_cpu_percent",
                          "cpu_ms_per_request")},
                         "peak_rss_mb": server["peak_rss_mb"], "cold_start_s": server["cold_start_s"]})
    return pd.DataFrame(rows).set_index(["server", "load"])


def _runs(run: dict[str, Any]) -> list[float]:
    return [v for v in run.get("cpu_ms_per_request_runs") or [] if v is not None]


def _lowest_run(run: dict[str, Any]) -> float | None:
    values = _runs(run)
    return min(values) if len(values) > 1 else None


def _held_rate_only(soak: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """No verdict on a soak that did not hold its rate: it grew a request queue, and RSS follows
    the queue."""
    return row if soak["rps"] >= 0.95 * soak["load"]["rate"] else {**row, "met": "-"}


def _spread(run: dict[str, Any]) -> str:
    """``; median of 5 runs, 1.45-1.85`` for a repeated run, else nothing."""
    values = _runs(run)
    if len(values) < 2:
        return ""
    return f"; median of {len(values)} runs, {min(values):.2f}-{max(values):.2f}"


def slo_table(bench: dict[str, Any], soak: dict[str, Any] | None = None) -> pd.DataFrame:
    """The service as deployed (its configured worker count) against the plan's targets and
    the stricter goals of the load test; the soak's figures where there is one."""
    service = bench["service"]
    runs = {run["offered_rps"]: run for run in service["runs"]}
    at100, top = runs.get(100), runs.get(max(r for r in runs if r))
    slo, goals = config.SERVE_SLO, config.SERVE_GOALS
    int8_ms = bench["inference_ms"]["onnx_int8"]["batch1_ms"]
    cores = bench.get("cpu_count") or 1
    cpu100 = at100["server_cpu_percent"] / cores
    rows = [
        _row("mean latency at 100 req/s (ms)", f"<= {slo['mean_ms']}", at100["mean_ms"], at100["mean_ms"] <= slo["mean_ms"]),
        _row("p95 latency at 100 req/s (ms)", f"<= {slo['p95_ms']}", at100["p95_ms"], at100["p95_ms"] <= slo["p95_ms"]),
        _row(f"server CPU at 100 req/s (% of the {cores} cores)", f"<= {slo['cpu_percent_at_100rps']}",
             round(cpu100, 1), cpu100 <= slo["cpu_percent_at_100rps"]),
        _row(f"throughput at {top['offered_rps']} req/s offered", f">= {goals['rps']}", top["rps"],
             top["rps"] >= 0.95 * goals["rps"]),
        _row(f"p95 latency at {top['offered_rps']} req/s (ms)", f"<= {goals['p95_ms']}", top["p95_ms"],
             top["p95_ms"] <= goals["p95_ms"]),
        _at_most(f"server CPU per request at {top['offered_rps']} req/s (ms{_spread(top)})",
                 goals["cpu_ms_per_request"], top["cpu_ms_per_request"], _lowest_run(top)),
        _row("error rate, all runs", f"<= {slo['error_rate']:.0%} (goal 0)", max(r["error_rate"] for r in service["runs"]),
             all(r["error_rate"] == 0 for r in service["runs"])),
        _row("server peak RSS (MB)", f"<= {goals['memory_mb']} (plan: {slo['memory_mb']})", service["peak_rss_mb"],
             service["peak_rss_mb"] <= goals["memory_mb"]),
        _row("cold start, process start -> ready (s)", f"<= {goals['cold_start_s']} (plan: {slo['cold_start_s']})",
             service["cold_start_s"], service["cold_start_s"] <= goals["cold_start_s"]),
        _row("model file (MB)", f"<= {slo['model_mb']}", bench["model_mb"]["int8"], bench["model_mb"]["int8"] <= slo["model_mb"]),
        _row("model inference, INT8, one image (ms)", f"<= {slo['inference_ms']}", int8_ms, int8_ms <= slo["inference_ms"]),
        _row("saturation throughput vs naive baseline", f">= {goals['ratio_vs_naive']}x",
             bench["throughput_ratio_vs_naive"], bench["throughput_ratio_vs_naive"] >= goals["ratio_vs_naive"]),
    ]
    if soak is not None:
        rows += [
            _row(f"soak: rate held ({soak['load']['rate']:.0f} req/s offered; answered per s)",
                 f">= {0.99 * soak['load']['rate']:.0f}", soak["rps"], soak["rps"] >= 0.99 * soak["load"]["rate"]),
            _row(f"soak: {soak['duration_s'] / 60:.0f} min at {soak['load']['rate']:.0f} req/s, p95 (ms)",
                 f"<= {slo['p95_ms']}", soak["p95_ms"], soak["p95_ms"] <= slo["p95_ms"]),
            _row("soak: errors (5xx, timeouts, a good image refused)", "0", soak["errors"], soak["errors"] == 0),
            _held_rate_only(soak, _at_most(
                f"soak: memory growth after warm-up (MB per hour, least squares{_interval(soak, 'rss_slope_mb_per_h')})",
                goals["rss_growth_mb_per_h"], soak["rss_slope_mb_per_h"], soak.get("rss_slope_mb_per_h_ci_low"))),
            _row("soak: RSS of the last minute minus the first minute (MB)", "measured",
                 round(rss_drift_mb(soak), 1), None),
            _row("soak: server CPU (% of the cores)", f"<= {slo['cpu_percent_at_100rps']}",
                 soak["cpu_percent_of_cores"], soak["cpu_percent_of_cores"] <= slo["cpu_percent_at_100rps"]),
        ]
    return pd.DataFrame(rows).set_index("what")


def rss_drift_mb(soak: dict[str, Any]) -> float:
    """Mean server RSS over the soak's last minute minus over its first minute: the plain-terms
    companion of the slope, which a step in the middle of a short run can swing either way."""
    w = pd.DataFrame(soak["windows"]).dropna(subset=["rss_mb"])
    end = w["t_s"].max()
    return float(w.loc[w["t_s"] > end - 60, "rss_mb"].mean() - w.loc[w["t_s"] < 60, "rss_mb"].mean())


def stale(bench: dict[str, Any], model: Path) -> str | None:
    """Why a bench file does not describe ``model`` (None when it does)."""

    if "model_sha256" not in bench:
        return "the file carries no model stamp"
    if not model.exists():
        return f"{model} does not exist"
    if bench["model_sha256"] != file_sha256(model):
        return f"it measured another model (sha256 {bench['model_sha256'][:12]}...), not the current {model.name}"
    return None


def soak_figure(soak: dict[str, Any]):
    """The soak, window by window: latency percentiles, errors, server memory and CPU."""
    import matplotlib.pyplot as plt

    w = pd.DataFrame(soak["windows"])
    minutes = w["t_s"] / 60
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), constrained_layout=True)
    for q, style in (("p50_ms", ":"), ("p95_ms", "-"), ("p99_ms", "--")):
        axes[0].plot(minutes, w[q], style, label=q.replace("_ms", ""))
    axes[0].axhline(config.SERVE_SLO["p95_ms"], color="crimson", lw=0.8, label="p95 target")
    axes[0].set(yscale="log", xlabel="minutes", ylabel="latency (ms)",
                title=f"latency per {soak['windows'][1]['t_s'] - soak['windows'][0]['t_s']:.0f} s window")
    axes[0].legend(fontsize=8)
    axes[1].plot(minutes, w["rss_mb"], color="tab:purple")
    axes[1].set(xlabel="minutes", ylabel="server RSS (MB)",
                title=f"memory: {soak['rss_slope_mb_per_h']:+.1f} MB/h after warm-up")
    axes[2].plot(minutes, w["cpu_percent"], color="tab:green")
    axes[2].set(xlabel="minutes", ylabel="server CPU (% of one core)",
                title=f"CPU; errors in the run: {soak['errors']}")
    return fig
