"""Prometheus beside the service, on this machine: ``python -m cvtasks monitor`` (``make monitor``).

Runs Debian's ``prometheus`` binary (``apt install prometheus``; the set-up installs it where apt
can) with the project's own scrape config and alert rules (docker/prometheus.yml,
docker/alerts.yml), the scrape target pointed at the service on loopback instead of the compose
network's ``classifier:8000``. The same pair runs in containers with docker/compose.yaml.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import config

DOCKER = config.ROOT / "docker"
INSTALL_HINT = ("Prometheus is not installed: `sudo apt install prometheus` (Debian/Ubuntu), or run the "
                "containers instead: `docker compose -f docker/compose.yaml up`")


def binary(name: str = "prometheus") -> str:
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(INSTALL_HINT)
    return found


def local_config(target: str, rules: Path, scrape_interval: str | None = None) -> dict[str, Any]:
    """docker/prometheus.yml with the service at ``target`` (host:port) and the rules at ``rules``."""
    cfg = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    cfg["rule_files"] = [str(rules)]
    cfg["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
    if scrape_interval:
        cfg["global"].update(scrape_interval=scrape_interval, evaluation_interval=scrape_interval)
    return cfg


@dataclass
class Prometheus:
    process: subprocess.Popen
    url: str
    log: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query through the HTTP API: [{"metric": labels, "value": float}, ...]."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.loads(r.read())
        if body.get("status") != "success":
            raise RuntimeError(f"query {expr!r} failed: {body}")
        return [{"metric": item["metric"], "value": float(item["value"][1])} for item in body["data"]["result"]]

    def value(self, expr: str) -> float | None:
        """The single value of a query, or None when it returns nothing."""
        result = self.query(expr)
        return result[0]["value"] if result else None

    def wait_until_up(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.value('up{job="classifier"}') == 1.0:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"Prometheus did not scrape the service within {timeout_s:.0f} s; see {self.log}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_prometheus(target: str, folder: Path, port: int, scrape_interval: str | None = None) -> Prometheus:
    """Prometheus on 127.0.0.1:``port``, its config, rules, data and log under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rules = folder / "alerts.yml"
    shutil.copyfile(DOCKER / "alerts.yml", rules)
    cfg_path = folder / "prometheus.yml"
    cfg_path.write_text(yaml.safe_dump(local_config(target, rules, scrape_interval), sort_keys=False))
    log = folder / "prometheus.log"
    cmd = [binary(), f"--config.file={cfg_path}", f"--storage.tsdb.path={folder / 'data'}",
           f"--web.listen-address=127.0.0.1:{port}"]
    with open(log, "w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    prom = Prometheus(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=1):
                return prom
        except OSError:
            time.sleep(0.1)
    prom.stop()
    raise TimeoutError(f"prometheus was not ready within 20 s; see {log}")
