"""The monitoring files run for real: promtool checks and unit-tests the alert rules, and a
Prometheus on loopback scrapes a two-worker service under load and computes, through its HTTP
API, the same request count, p95 and error ratio as the load generator measured."""
import asyncio
import os
import shutil
import subprocess
import time

import numpy as np
import pytest

import config
from cvtasks.serve import loadtest, monitor
from cvtasks.serve.app import LATENCY_BUCKETS
from cvtasks.serve.uploads import Upload, small_png
from tests.serve_fixtures import dashboard_queries, exported_tiny_model

DOCKER = config.ROOT / "docker"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing on CI: scripts/setup.sh installs Debian's prometheus")
        pytest.skip(f"{name} not installed (apt install prometheus)")
    return found


def test_alert_rules_are_valid():
    out = subprocess.run([_tool("promtool"), "check", "rules", str(DOCKER / "alerts.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_fires_and_stays_quiet_in_promtool_unit_tests():
    import yaml

    tests = yaml.safe_load((DOCKER / "alerts.test.yml").read_text())["tests"]
    alerts = [r["alert"] for g in yaml.safe_load((DOCKER / "alerts.yml").read_text())["groups"]
              for r in g["rules"] if "alert" in r]
    cases = [(case["alertname"], bool(case["exp_alerts"])) for t in tests for case in t["alert_rule_test"]]
    for alert in alerts:   # a case where it fires and one where it does not, for every alert
        assert (alert, True) in cases and (alert, False) in cases, alert
    out = subprocess.run([_tool("promtool"), "test", "rules", "alerts.test.yml"], cwd=DOCKER,
                         capture_output=True, text=True)
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


def test_prometheus_config_is_valid_with_its_rules(tmp_path):
    cfg = tmp_path / "prometheus.yml"
    import yaml

    cfg.write_text(yaml.safe_dump(monitor.local_config("127.0.0.1:8000", DOCKER / "alerts.yml")))
    out = subprocess.run([_tool("promtool"), "check", "config", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_prometheus_reads_what_the_load_test_measured(tmp_path):
    _tool("prometheus")
    model = exported_tiny_model(tmp_path / "model")
    rng = np.random.default_rng(0)
    good = [small_png(rng.integers(0, 255, (28, 28), dtype=np.uint8)) for _ in range(16)]
    uploads = good * 3 + [Upload(b"not an image", "x.txt", "text/plain", False)]   # a share of 4xx
    server = loadtest.start_server("onnx", model, tmp_path / "service.log", max_batch=8, threads=1, workers=2)
    prom = None
    try:
        prom = monitor.start_prometheus(server.url.removeprefix("http://"), tmp_path / "prom",
                                        loadtest.free_port(), scrape_interval="1s")
        prom.wait_until_up()
        result = asyncio.run(loadtest._drive(server.url, uploads, rate=60, concurrency=8, seconds=8,
                                             max_requests=480))
        n = len(result.records)
        summary = result.summary()
        predicted = 'sum(http_requests_total{route="/predict"})'
        for _ in range(40):   # scrapes and rule evaluations catch up within seconds
            if prom.value(predicted) == n and prom.value("classifier:predict_latency_p95:5m") is not None:
                break
            time.sleep(0.5)
        # the counters of both workers, added up by multiprocess mode: exactly what was sent
        assert prom.value(predicted) == n
        assert prom.value('sum(http_requests_total{route="/predict",status="415"})') == result.rejected > 0
        assert prom.value('sum(service_workers_ready)') == 2
        # the alert's error ratio: no 5xx, as the load test saw
        assert summary["errors"] == 0 and prom.value("classifier:error_ratio:5m") == 0
        # the alert's p95 (server side, interpolated within histogram buckets) against the load
        # test's p95 (client side, exact): within the width of the bucket that holds it + 5 ms
        p95_prom = prom.value("classifier:predict_latency_p95:5m") * 1000
        p95_client = summary["p95_ms"]
        edges = [0.0] + [b * 1000 for b in LATENCY_BUCKETS]
        width = next(hi - lo for lo, hi in zip(edges, edges[1:]) if p95_client <= hi)
        assert abs(p95_prom - p95_client) <= width + 5, (p95_prom, p95_client)
        # every panel of the Grafana dashboard shows data from this service
        for expr in dashboard_queries():
            assert prom.query(expr.replace("$__rate_interval", "1m")), f"no data for {expr}"
    finally:
        if prom is not None:
            prom.stop()
        loadtest.stop_server(server)
