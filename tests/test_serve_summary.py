"""The production tables judge the figures against the targets correctly."""
from cvtasks.serve import summary


def _bench(p95_at_300, errors=0.0, rss=120.0):
    run = lambda rate, rps, p95, err=0.0: {"offered_rps": rate, "rps": rps, "mean_ms": 10, "p50_ms": 8,  # noqa: E731
                                           "p95_ms": p95, "p99_ms": p95 + 5, "error_rate": err,
                                           "server_cpu_percent": 40, "cpu_ms_per_request": 1.2}
    server = lambda runs, workers=1: {"runs": runs, "peak_rss_mb": rss, "cold_start_s": 1.0,  # noqa: E731
                                      "workers": workers}
    one = server([run(100, 100, 15), run(300, 299, p95_at_300, errors), run(None, 480, 90)])
    two = server([run(100, 100, 12), run(300, 300, 20), run(None, 700, 60)], workers=2)
    return {"service": one, "service_by_workers": [one, two], "cpu_count": 2,
            "onnx_without_batching": server([run(None, 250, 150)]),
            "naive_baseline": server([run(None, 170, 220)]),
            "throughput_ratio_vs_naive": 480 / 170, "micro_batching_gain": 480 / 250, "model_mb": {"int8": 0.5},
            "inference_ms": {"onnx_int8": {"batch1_ms": 0.2, "batch32_ms_per_image": 0.1}}}


def _soak(p95=40.0, errors=0, slope=1.0, rps=100.0):
    windows = [{"t_s": 10.0 * i, "requests": 1000, "errors": 0, "p50_ms": 10, "p95_ms": p95, "p99_ms": p95 * 2,
                "rss_mb": 150.0, "cpu_percent": 60.0} for i in range(60)]
    return {"duration_s": 600.0, "load": {"rate": 100.0}, "rps": rps, "p95_ms": p95, "errors": errors,
            "rss_slope_mb_per_h": slope, "cpu_percent_of_cores": 30.0, "windows": windows}


def test_slo_table_marks_each_goal():
    good = summary.slo_table(_bench(p95_at_300=80))
    assert (good["met"] == "yes").all()
    bad = summary.slo_table(_bench(p95_at_300=150, errors=0.02, rss=900))
    missed = set(bad.index[bad["met"] == "NO"])
    assert missed == {"p95 latency at 300 req/s (ms)", "error rate, all runs", "server peak RSS (MB)"}


def test_soak_rows_judge_latency_errors_and_growth():
    good = summary.slo_table(_bench(80), _soak())
    drift = "soak: RSS of the last minute minus the first minute (MB)"
    assert (good.drop(drift)["met"] == "yes").all() and good.loc[drift, "met"] == "-"   # no target: reported only
    bad = summary.slo_table(_bench(80), _soak(p95=400, errors=3, slope=300))
    assert set(bad.index[bad["met"] == "NO"]) == {"soak: 10 min at 100 req/s, p95 (ms)",
                                                   "soak: errors (5xx, timeouts, a good image refused)",
                                                   "soak: memory growth after warm-up (MB per hour, least squares)"}
    assert good.loc[drift, "measured"] == 0.0
    growth = "soak: memory growth after warm-up (MB per hour, least squares)"
    overloaded = summary.slo_table(_bench(80), _soak(p95=9000, errors=500, slope=-250, rps=74))
    assert overloaded.loc[growth, "met"] == "-"   # RSS followed a request queue: no verdict either way
    assert summary.soak_figure(_soak()).axes[0].get_ylabel() == "latency (ms)"


def test_a_bench_of_another_model_is_flagged(tmp_path):
    model = tmp_path / "model.int8.onnx"
    model.write_bytes(b"model a")
    from cvtasks.provenance import file_sha256

    assert summary.stale({"model_sha256": file_sha256(model)}, model) is None
    assert "another model" in summary.stale({"model_sha256": "0" * 64}, model)
    assert "no model stamp" in summary.stale({}, model)


def test_load_table_lists_every_run_of_every_worker_count():
    table = summary.load_table(_bench(80))
    assert len(table) == 8
    assert table.loc[("ONNX INT8 + micro-batching, 1 worker", "300 req/s"), "p95_ms"] == 80
    assert table.loc[("ONNX INT8 + micro-batching, 2 workers", "saturation"), "rps"] == 700


def test_export_table():
    m = {"export/onnx_max_abs_diff": 2e-6, "export/onnx_top1_agreement": 1.0, "export/int8_accuracy_drop_points": 0.7,
         "export/int8_mb": 0.2, "export/checkpoint_mb": 0.6, "export/fp32_mb": 0.6, "export/torch_test_accuracy": 0.9,
         "export/fp32_test_accuracy": 0.9, "export/int8_test_accuracy": 0.893}
    checks, sizes = summary.export_table(m)
    assert list(checks["met"]) == ["yes", "yes", "NO", "yes"]
    assert sizes.loc["ONNX INT8", "test accuracy"] == 0.893


def test_repeated_runs_report_the_median_and_every_runs_figure():
    from cvtasks.serve.loadtest import median_run

    runs = [{"p95_ms": p, "cpu_ms_per_request": c} for p, c in ((10, 1.9), (12, 1.4), (9, 1.6), (30, 1.5), (11, 1.7))]
    median = median_run(runs)
    assert (median["cpu_ms_per_request"], median["p95_ms"]) == (1.6, 9)   # the median run, its latency with it
    assert median["repeats"] == 5 and median["cpu_ms_per_request_runs"] == [1.9, 1.4, 1.6, 1.5, 1.7]
    bench = _bench(80)
    bench["service"]["runs"][1] = {**bench["service"]["runs"][1], **median_run(
        [{**bench["service"]["runs"][1], "cpu_ms_per_request": c} for c in (1.2, 1.4, 1.3)])}
    table = summary.slo_table(bench)
    row = "server CPU per request at 300 req/s (ms; median of 3 runs, 1.20-1.40)"
    assert table.loc[row, "measured"] == 1.3 and table.loc[row, "met"] == "yes"


def test_a_figure_above_its_goal_within_its_own_spread_is_no_difference_not_a_miss():
    from cvtasks.serve.loadtest import median_run

    def cpu_row(values):
        bench = _bench(80)
        bench["service"]["runs"][1] = {**bench["service"]["runs"][1], **median_run(
            [{**bench["service"]["runs"][1], "cpu_ms_per_request": c} for c in values])}
        table = summary.slo_table(bench)
        return table.loc[[i for i in table.index if i.startswith("server CPU per request")][0], "met"]

    assert cpu_row((1.45, 1.52, 1.71)) == "no difference"   # one run under the goal: cannot tell
    assert cpu_row((1.55, 1.6, 1.7)) == "NO"                # every run above it: a miss
    growth = "soak: memory growth after warm-up (MB per hour, least squares; 95 % interval -30.0 to +70.0)"
    soak = {**_soak(slope=21.0), "rss_slope_mb_per_h_ci_low": -30.0, "rss_slope_mb_per_h_ci_high": 70.0}
    assert summary.slo_table(_bench(80), soak).loc[growth, "met"] == "no difference"
    soak = {**_soak(slope=300.0), "rss_slope_mb_per_h_ci_low": 150.0, "rss_slope_mb_per_h_ci_high": 400.0}
    table = summary.slo_table(_bench(80), soak)
    assert table.loc[growth.replace("-30.0 to +70.0", "+150.0 to +400.0"), "met"] == "NO"


def test_rss_slope_interval_tells_a_steady_climb_from_flat_memory_that_steps():
    import numpy as np

    from cvtasks.serve.loadtest import rss_slope_mb_per_h

    t = np.arange(0.0, 600.0)
    rng = np.random.default_rng(0)
    steps = 2**20 * (140 + 12 * np.sign(np.sin(t / 37)) + rng.normal(0, 2, t.size))   # up and down, no trend
    flat = rss_slope_mb_per_h(list(zip(t, steps, t)), skip_s=10, block_s=60, seed=0)
    assert flat.low < 0 < flat.high
    climbing = steps + 2**20 * 200 * t / 3600                                           # +200 MB/h on top
    climb = rss_slope_mb_per_h(list(zip(t, climbing, t)), skip_s=10, block_s=60, seed=0)
    assert 20 < climb.low < 200 < climb.high   # above the goal, the true slope inside
