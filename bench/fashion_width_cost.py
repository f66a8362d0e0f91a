"""Serving cost of the fashion ResNet at each candidate width, measured on this machine before
any wider model is trained (the cost does not depend on the weights' values).

Each width's network (random weights, the served recipe otherwise) is exported to ONNX and
quantised to INT8 the way `python -m cvtasks export` does, then timed in onnxruntime with the
service's settings (one intra-op thread, batches of ``--batch``). Prints ms per image and
parameters per width, and writes them to ``--out`` (default reports/fashion/width_cost.json):

    python bench/fashion_width_cost.py [--widths 32 48 64] [--batch 32] [--repeats 200]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import config
from cvtasks.fashion.data import prepare_data
from cvtasks.models.fashion_nets import count_parameters, create_fashion_net
from cvtasks.provenance import cpu_name, git_commit, utc_now
from cvtasks.serve.backends import OnnxClassifier
from cvtasks.serve.export import export_onnx, quantize_int8


def ms_per_image(path: Path, images: np.ndarray, batch: int, repeats: int) -> float:
    """Median over ``repeats`` model calls of one batch, divided by its size (one thread)."""
    clf = OnnxClassifier(path, threads=1)
    x = images[:batch, None].astype(np.float32)
    for _ in range(20):
        clf.predict(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        clf.predict(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000 / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 48, 64])
    parser.add_argument("--batch", type=int, default=32, help="images per model call (the service's max_batch)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", type=Path, default=config.REPORTS_DIR / "fashion" / "width_cost.json")
    args = parser.parse_args()
    cfg = config.FashionConfig()
    torch.manual_seed(cfg.seed)
    data = prepare_data(cfg)
    images = data.x_val[:512].astype(np.float32) / 255
    meta = {"mean": float(data.x_train.mean() / 255), "std": float(data.x_train.std() / 255),
            "classes": list(data.classes)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width in args.widths:
            net = create_fashion_net(cfg.model, len(meta["classes"]), dropout=cfg.dropout, batchnorm=cfg.batchnorm,
                                     width=width, depth=cfg.depth).eval()
            fp32 = export_onnx(net, {**meta, "training_key": f"width-{width}"}, Path(tmp) / f"w{width}.onnx")
            int8 = quantize_int8(fp32, Path(tmp) / f"w{width}.int8.onnx", images[:256])
            rows.append({"width": width, "parameters": count_parameters(net),
                         "int8_ms_per_image": ms_per_image(int8, images, args.batch, args.repeats),
                         "fp32_ms_per_image": ms_per_image(fp32, images, args.batch, args.repeats)})
            print(json.dumps(rows[-1]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"batch": args.batch, "threads": 1, "cpu": cpu_name(), "git_commit": git_commit(),
                                    "date_utc": utc_now(), "widths": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
