"""Time the search task from a cold start: build, embeddings, training, evaluation.

    python bench/search.py [--quick]

Data and caches go to a temporary folder, so nothing cached is reused. The issue's budget is
the full notebook in <= 6 minutes on a 2-core CPU; this prints the stages' seconds.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import config  # noqa: E402
from cvtasks import search  # noqa: E402
from cvtasks.data import openclipart  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cfg = config.get("search", quick=args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        config.CACHE_DIR = Path(tmp) / "cache"
        config.SEARCH_DATA_DIR = Path(tmp) / "data"
        times = {}
        t = time.perf_counter()
        data = search.course_search.load(openclipart.ensure_built(openclipart.BuildSettings.from_config(cfg)))
        times["build dataset"] = time.perf_counter() - t
        t = time.perf_counter()
        feats = search.compute_features(cfg, data)
        times["embeddings"] = time.perf_counter() - t
        t = time.perf_counter()
        split = search.split_by_image(data.pairs.image, cfg.test_fraction, cfg.val_fraction, cfg.seed)
        exp = search.run_experiment(cfg, prepared=(data, feats, split))
        times["train + evaluate all models"] = time.perf_counter() - t
        t = time.perf_counter()
        search.crowd_blend_effect(exp)
        times["crowd blend (3 retrainings)"] = time.perf_counter() - t
    for stage, seconds in times.items():
        print(f"{stage:32s} {seconds:7.1f} s")
    print(f"{'total':32s} {sum(times.values()):7.1f} s  (mode: {'quick' if args.quick else 'full'})")


if __name__ == "__main__":
    main()
