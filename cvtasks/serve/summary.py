"""Tables of the export checks and the load test against their targets (for the notebook)."""
from __future__ import annotations

from typing import Any

import pandas as pd

import config


def _row(what: str, target: str, value: Any, ok: bool) -> dict[str, Any]:
    return {"what": what, "target": target, "measured": value, "met": "yes" if ok else "NO"}


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


def load_table(bench: dict[str, Any]) -> pd.DataFrame:
    """Every run of the load test: the service, the same model unbatched, the naive baseline."""
    rows = []
    for key, label in (("service", "ONNX INT8 + micro-batching"), ("onnx_without_batching", "ONNX INT8, no batching"),
                       ("naive_baseline", "PyTorch eager, no batching (naive)")):
        server = bench[key]
        for run in server["runs"]:
            load = f"{run['offered_rps']} req/s" if run["offered_rps"] else "saturation"
            rows.append({"server": label, "load": load, **{k: run[k] for k in
                         ("rps", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "error_rate", "server_cpu_percent")},
                         "peak_rss_mb": server["peak_rss_mb"], "cold_start_s": server["cold_start_s"]})
    return pd.DataFrame(rows).set_index(["server", "load"])


def slo_table(bench: dict[str, Any]) -> pd.DataFrame:
    """The service against the project documents' target and the stricter goals of the load test."""
    service = bench["service"]
    runs = {run["offered_rps"]: run for run in service["runs"]}
    at100, top = runs.get(100), runs.get(max(r for r in runs if r))
    slo, goals = config.SERVE_SLO, config.SERVE_GOALS
    int8_ms = bench["inference_ms"]["onnx_int8"]["batch1_ms"]
    rows = [
        _row("mean latency at 100 req/s (ms)", f"<= {slo['mean_ms']}", at100["mean_ms"], at100["mean_ms"] <= slo["mean_ms"]),
        _row("p95 latency at 100 req/s (ms)", f"<= {slo['p95_ms']}", at100["p95_ms"], at100["p95_ms"] <= slo["p95_ms"]),
        _row("server CPU at 100 req/s (% of one core)", f"<= {slo['cpu_percent_at_100rps']}",
             at100["server_cpu_percent"], at100["server_cpu_percent"] <= slo["cpu_percent_at_100rps"]),
        _row(f"throughput at {top['offered_rps']} req/s offered", f">= {goals['rps']}", top["rps"],
             top["rps"] >= 0.95 * goals["rps"]),
        _row(f"p95 latency at {top['offered_rps']} req/s (ms)", f"<= {goals['p95_ms']}", top["p95_ms"],
             top["p95_ms"] <= goals["p95_ms"]),
        _row("error rate, all runs", "0", max(r["error_rate"] for r in service["runs"]),
             all(r["error_rate"] == 0 for r in service["runs"])),
        _row("server peak RSS (MB)", f"<= {goals['memory_mb']}", service["peak_rss_mb"],
             service["peak_rss_mb"] <= goals["memory_mb"]),
        _row("cold start, process start -> ready (s)", f"<= {goals['cold_start_s']}", service["cold_start_s"],
             service["cold_start_s"] <= goals["cold_start_s"]),
        _row("model inference, INT8, one image (ms)", f"<= {slo['inference_ms']}", int8_ms, int8_ms <= slo["inference_ms"]),
        _row("saturation throughput vs naive baseline", f">= {goals['ratio_vs_naive']}x",
             bench["throughput_ratio_vs_naive"], bench["throughput_ratio_vs_naive"] >= goals["ratio_vs_naive"]),
        _row("micro-batching gain (same model, batch 1 vs batched)", "measured", bench["micro_batching_gain"], True),
    ]
    return pd.DataFrame(rows).set_index("what")
