"""Lint what can be linted without a Docker engine: the Dockerfile copies files that exist, the
image's requirements cover what the service imports (and no torch), compose and Prometheus agree,
and the alert rules use the metrics the service really exports."""
import re
import subprocess
import sys

import yaml

import config
from cvtasks.serve.app import Metrics

DOCKER = config.ROOT / "docker"


def test_dockerfile_copies_existing_sources():
    lines = (DOCKER / "Dockerfile").read_text().splitlines()
    assert lines and any(line.startswith("FROM python:3.11") for line in lines)
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
    assert set(compose["services"]) == {"classifier", "prometheus"}
    (target,) = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "classifier" and f"{port}:{port}" in compose["services"]["classifier"]["ports"]
    assert prom["scrape_configs"][0]["metrics_path"] == "/metrics"
    mounted = " ".join(compose["services"]["prometheus"]["volumes"])
    assert "prometheus.yml" in mounted and "alerts.yml" in mounted


def test_alert_rules_cover_the_target_with_real_metric_names():
    rules = yaml.safe_load((DOCKER / "alerts.yml").read_text())["groups"][0]["rules"]
    by_name = {r["alert"]: r["expr"] for r in rules}
    assert "> 0.3" in by_name["PredictLatencyP95High"] and "histogram_quantile(0.95" in by_name["PredictLatencyP95High"]
    assert "> 0.01" in by_name["ErrorRateHigh"]
    exported = {m.name for m in Metrics().registry.collect()}
    exported |= {f"{name}_bucket" for name in exported} | {f"{name}_total" for name in exported}
    exported |= {name + "_total" for name in exported}
    for expr in by_name.values():
        for metric in re.findall(r"\b([a-z_]+)(?=\{|\[|\))", expr):
            if metric.startswith(("http_", "model_")):
                assert metric in exported, f"alert uses {metric}, which the service does not export"
