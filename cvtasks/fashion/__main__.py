"""``python -m cvtasks.fashion prepare``: the prepared splits as one file, DVC's first stage
(dvc.yaml); the other stages are ``python -m cvtasks study fashion`` and ``run fashion``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import config
from cvtasks.fashion.data import prepare_data, save_data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvtasks.fashion", description=__doc__)
    parser.add_argument("stage", choices=("prepare",))
    parser.add_argument("--quick", action="store_true", help="quick mode (also CVTASKS_QUICK=1)")
    parser.add_argument("--out", type=Path, default=config.FASHION_DATA)
    args = parser.parse_args(argv)
    cfg = config.get("fashion", quick=args.quick or config.quick_from_env())
    print(f"wrote {save_data(prepare_data(cfg), args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
