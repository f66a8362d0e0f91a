"""Lint what can be linted without a Docker engine: the Dockerfile copies files that exist, the
image's requirements cover what the service imports (and no torch), compose and Prometheus agree,
and the alert rules use the metrics the service really exports."""
import re
import subprocess
import sys

import yaml

import config
from cvtasks.serve.app import Metrics
from tests.serve_fixtures import dashboard_queries

DOCKER = config.ROOT / "docker"


def test_dockerfile_copies_existing_sources():
    lines = (DOCKER / "Dockerfile").read_text().splitlines()
    assert "ARG BASE_IMAGE=python:3.11-slim" in lines and "FROM ${BASE_IMAGE}" in lines
    for line in lines:
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            for src in sources:
                generated = src.startswith("models/")  # made by `python -m cvtasks export`
                assert generated or (config.ROOT / src).exists(), f"Dockerfile copies missing {src}"
    assert 'CMD ["python", "-m", "cvtasks", "serve"' in "\n".join(lines)


def test_service_imports_no_torch_and_needs_only_the_image_requirements():
    code = ("import sys; from cvtasks.serve.server import classifier_loader; "
            "from cvtasks.serve.backends import OnnxClassifier; import cvtasks.cli; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=config.ROOT, check=True)
    modules = set(out.stdout.split())
    assert "torch" not in modules
    needed = {"fastapi", "uvicorn", "multipart", "prometheus_client", "onnxruntime", "numpy", "PIL", "yaml"}
    requirements = (DOCKER / "requirements-serve.txt").read_text()
    names = {"multipart": "python-multipart", "PIL": "pillow", "yaml": "pyyaml", "prometheus_client": "prometheus-client"}
    for module in needed & modules:
        assert names.get(module, module) in requirements, f"{module} is imported but not in the image"


def test_compose_and_prometheus_agree():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    prom = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    assert set(compose["services"]) == {"classifier", "prometheus", "grafana"}
    (target,) = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "classifier" and f"{port}:{port}" in compose["services"]["classifier"]["ports"]
    assert prom["scrape_configs"][0]["metrics_path"] == "/metrics"
    mounted = " ".join(compose["services"]["prometheus"]["volumes"])
    assert "prometheus.yml" in mounted and "alerts.yml" in mounted
    assert prom["rule_files"] == ["/etc/prometheus/alerts.yml"]


def exported_names() -> set[str]:
    """Every series name the service exports, plus the recorded ones of alerts.yml."""
    names = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    for family in Metrics().registry.collect():   # a labelled metric has no sample until first used
        names |= {family.name + suffix for suffix in suffixes[family.type]}
    groups = yaml.safe_load((DOCKER / "alerts.yml").read_text())["groups"]
    return names | {r["record"] for g in groups for r in g["rules"] if "record" in r} | {"up"}


def series_in(expr: str) -> set[str]:
    """Series names used by a PromQL expression (functions, keywords and labels left out)."""
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)          # label matchers, ranges
    expr = re.sub(r"(?<![\w:])\d[\d.]*(e-?\d+)?", "", expr)            # numbers
    expr = re.sub(r"\b(by|without)\s*\([^)]*\)", "", expr)     # grouping labels
    words = [m.group() for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)
             if not expr[m.end():].lstrip().startswith("(")]          # not a function
    return set(words) - {"or", "and", "unless"}


def test_alert_rules_use_only_metrics_the_service_exports():
    groups = yaml.safe_load((DOCKER / "alerts.yml").read_text())["groups"]
    rules = [r for g in groups for r in g["rules"]]
    alerts = {r["alert"]: r["expr"] for r in rules if "alert" in r}
    assert {"PredictLatencyP95High", "ErrorRateHigh", "ModelNotReady", "MemoryHigh", "CpuHigh"} <= set(alerts)
    assert "> 0.3" in alerts["PredictLatencyP95High"] and "> 0.01" in alerts["ErrorRateHigh"]
    exported = exported_names()
    for rule in rules:
        used = series_in(rule["expr"])
        assert used and used <= exported, f"{rule.get('alert', rule.get('record'))} uses {used - exported}"


def test_grafana_dashboard_queries_metrics_the_service_exports():
    import json

    dash = json.loads((DOCKER / "grafana" / "dashboards" / "classifier.json").read_text())
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for topic in ("requests", "p50", "p95", "p99", "errors", "batch size", "in flight", "memory"):
        assert topic in titles, f"no panel on {topic}"
    exported = exported_names()
    for expr in dashboard_queries():
        used = series_in(expr)
        assert used and used <= exported, f"the dashboard queries {used - exported}, which nothing exports"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_compose_provisions_the_dashboard_and_its_datasource():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    mounts = {v.split(":")[1]: DOCKER / v.split(":")[0] for v in volumes}
    provisioning = mounts["/etc/grafana/provisioning"]
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert source["url"] == "http://prometheus:9090" and source["uid"] == "prometheus"
    provider = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())["providers"][0]
    dashboards = mounts[provider["options"]["path"]]
    assert (dashboards / "classifier.json").exists()
