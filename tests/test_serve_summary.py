"""The production tables judge the figures against the targets correctly."""
from cvtasks.serve import summary


def _bench(p95_at_300, errors=0.0, rss=120.0):
    run = lambda rate, rps, p95, err=0.0: {"offered_rps": rate, "rps": rps, "mean_ms": 10, "p50_ms": 8,  # noqa: E731
                                           "p95_ms": p95, "p99_ms": p95 + 5, "error_rate": err,
                                           "server_cpu_percent": 40}
    server = lambda runs: {"runs": runs, "peak_rss_mb": rss, "cold_start_s": 1.0}  # noqa: E731
    return {"service": server([run(100, 100, 15), run(300, 299, p95_at_300, errors), run(None, 480, 90)]),
            "onnx_without_batching": server([run(None, 250, 150)]),
            "naive_baseline": server([run(None, 170, 220)]),
            "throughput_ratio_vs_naive": 480 / 170, "micro_batching_gain": 480 / 250,
            "inference_ms": {"onnx_int8": {"batch1_ms": 0.2, "batch32_ms_per_image": 0.1}}}


def test_slo_table_marks_each_goal():
    good = summary.slo_table(_bench(p95_at_300=80))
    assert (good["met"] == "yes").all()
    bad = summary.slo_table(_bench(p95_at_300=150, errors=0.02, rss=900))
    missed = set(bad.index[bad["met"] == "NO"])
    assert missed == {"p95 latency at 300 req/s (ms)", "error rate, all runs", "server peak RSS (MB)"}


def test_load_table_lists_every_run():
    table = summary.load_table(_bench(80))
    assert len(table) == 5 and table.loc[("ONNX INT8 + micro-batching", "300 req/s"), "p95_ms"] == 80


def test_export_table():
    m = {"export/onnx_max_abs_diff": 2e-6, "export/onnx_top1_agreement": 1.0, "export/int8_accuracy_drop_points": 0.7,
         "export/int8_mb": 0.2, "export/checkpoint_mb": 0.6, "export/fp32_mb": 0.6, "export/torch_test_accuracy": 0.9,
         "export/fp32_test_accuracy": 0.9, "export/int8_test_accuracy": 0.893}
    checks, sizes = summary.export_table(m)
    assert list(checks["met"]) == ["yes", "yes", "NO", "yes"]
    assert sizes.loc["ONNX INT8", "test accuracy"] == 0.893
