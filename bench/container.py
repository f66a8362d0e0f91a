"""Build the service image and run it: proof that docker/Dockerfile works, where an engine runs.

    python bench/container.py [--engine podman|docker] [--base IMAGE]

No image registry is reachable from this machine, so unless ``--base`` names an image the engine
already has, the base image is made from Debian packages: ``mmdebstrap`` (Python 3.11, pip) piped
into ``<engine> import``. Then ``<engine> build`` of docker/Dockerfile with that base, a container
on loopback, and probes: time to /health/ready, one /predict, /metrics, graceful stop. Prints
each command with its output and writes reports/fashion/container.json.

In a VM without CAP_SYS_RESOURCE and with hybrid cgroups (this one), rootful podman's defaults
fail; when a trial run fails the script retries with runc, lowered ulimits and host networking,
and records which flags it used.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import config  # noqa: E402
from cvtasks.io import atomic_write_text  # noqa: E402
from cvtasks.serve.loadtest import free_port, stamp  # noqa: E402

BASE = "localhost/cvtasks-base:bookworm"
IMAGE = "localhost/cvtasks-fashion:local"
RESTRICTED = ["--runtime", "runc", "--network=host", "--ulimit", "nofile=10000:10000", "--ulimit", "nproc=4096:4096"]
LOG: list[dict] = []


def sh(cmd: list[str], check: bool = True, timeout: float = 1800, stdin=None) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=stdin is None, timeout=timeout, stdin=stdin)
    text = out.stdout if isinstance(out.stdout, str) else out.stdout.decode(errors="replace")
    err = out.stderr if isinstance(out.stderr, str) else out.stderr.decode(errors="replace")
    tail = (text + err).strip().splitlines()[-6:]
    print("\n".join("  " + line for line in tail), flush=True)
    LOG.append({"cmd": " ".join(cmd), "rc": out.returncode, "output_tail": tail})
    if check and out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} {cmd[1]} failed ({out.returncode}): {' | '.join(tail)}")
    return out


def base_image(engine: str) -> str:
    if sh([engine, "image", "exists", BASE], check=False).returncode == 0:
        return BASE
    if not shutil.which("mmdebstrap"):
        raise RuntimeError("no base image and no mmdebstrap: `apt install mmdebstrap`, or pass --base")
    tar = Path("/tmp/cvtasks-base.tar")
    # the machine's own CA certificates go in too: where HTTPS passes a site's proxy, pip in the
    # build trusts what this machine trusts
    local_cas = Path("/usr/local/share/ca-certificates")
    hooks = ([f"--customize-hook=copy-in {local_cas} /usr/local/share",
              '--customize-hook=chroot "$1" update-ca-certificates'] if any(local_cas.glob("*.crt")) else [])
    sh(["mmdebstrap", "--variant=apt", "--include=python3,python3-pip,python-is-python3,ca-certificates,passwd",
        *hooks, "bookworm", str(tar)])
    sh([engine, "import", "--change", "CMD [\"python3\"]", str(tar), BASE])
    tar.unlink()
    return BASE


def run_flags(engine: str, base: str) -> list[str]:
    """[] when a plain container runs; else the flags that make one run here."""
    if sh([engine, "run", "--rm", base, "python", "--version"], check=False).returncode == 0:
        return []
    sh([engine, "run", "--rm", *RESTRICTED, base, "python", "--version"])
    return RESTRICTED


def png() -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def predict(url: str) -> dict:
    boundary = "cvtasks-container-probe"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + png() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}/predict", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="podman" if shutil.which("podman") else "docker")
    ap.add_argument("--base", help="a base image the engine already has (default: built with mmdebstrap)")
    args = ap.parse_args()
    engine = args.engine
    model = config.get("serve").model_path
    if not shutil.which(engine):
        raise SystemExit(f"{engine} is not installed (`apt install podman` or docker.io)")
    if not model.exists():
        raise SystemExit(f"{model} is missing: run `python -m cvtasks run fashion` and `python -m cvtasks export`")
    version = sh([engine, "--version"]).stdout.strip()
    base = args.base or base_image(engine)
    flags = run_flags(engine, base)
    build_flags = [f for f in flags if f != "--network=host"] + ["--network=host"]
    build_flags += ["--format", "docker"] if engine == "podman" else []   # keeps HEALTHCHECK
    start = time.perf_counter()
    sh([engine, "build", *build_flags, "--build-arg", f"BASE_IMAGE={base}", "-f", "docker/Dockerfile", "-t", IMAGE,
        str(config.ROOT)])
    build_s = time.perf_counter() - start
    size = sh([engine, "image", "inspect", IMAGE, "--format", "{{.Size}}"]).stdout.strip()
    port = free_port()
    name = f"cvtasks-probe-{port}"
    net = [] if "--network=host" in flags else ["-p", f"127.0.0.1:{port}:{port}"]
    start = time.perf_counter()
    sh([engine, "run", "-d", "--name", name, *flags, *net, IMAGE,
        "python", "-m", "cvtasks", "serve", "--host", "127.0.0.1" if net == [] else "0.0.0.0", "--port", str(port)])
    url, ready_s, result = f"http://127.0.0.1:{port}", None, {}
    try:
        while time.perf_counter() - start < 60:
            try:
                with urllib.request.urlopen(f"{url}/health/ready", timeout=1) as r:
                    if r.status == 200:
                        ready_s = time.perf_counter() - start
                        break
            except OSError:
                time.sleep(0.1)
        if ready_s is None:
            raise RuntimeError("the container did not become ready within 60 s")
        result = predict(url)
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
            metrics_ok = b"model_ready 1.0" in r.read()
        print(f"ready after {ready_s:.2f} s; /predict -> {result['predictions'][0]}; /metrics model_ready 1: {metrics_ok}")
    finally:
        sh([engine, "stop", "-t", "10", name], check=False)
        logs = sh([engine, "logs", name], check=False)
        sh([engine, "rm", "-f", name], check=False)
    graceful = "Application shutdown complete" in (logs.stdout or "") + (logs.stderr or "")
    report = {**stamp(model, {"probe": "one /predict of a 28x28 PNG"}), "engine": version, "base_image": base,
              "run_flags": flags, "build_s": round(build_s, 1), "image_bytes": int(size),
              "ready_s": round(ready_s, 2), "predict": result, "metrics_model_ready": metrics_ok,
              "graceful_stop": graceful, "commands": LOG}
    out = config.ROOT / "reports" / "fashion" / "container.json"
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
