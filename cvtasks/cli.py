"""Command line: ``python -m cvtasks <command>``; ``--help`` lists the commands."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

import config

# Each task module exposes run(cfg) -> dict of flat, slash-named metrics.
TASK_MODULES = {
    "brands": "cvtasks.brands",
    "styles": "cvtasks.styles",
    "spill": "cvtasks.spill",
    "search": "cvtasks.search",
    "fashion": "cvtasks.fashion",
}


def _quick(args: argparse.Namespace) -> bool:
    """--quick or CVTASKS_QUICK=1; once chosen, exported so that child processes agree."""
    quick = bool(args.quick) or config.quick_from_env()
    os.environ[config.QUICK_ENV] = "1" if quick else "0"
    return quick


def cmd_run(args: argparse.Namespace) -> int:
    quick = _quick(args)
    try:
        module = importlib.import_module(TASK_MODULES[args.task])
    except ModuleNotFoundError as err:
        if err.name != TASK_MODULES[args.task]:
            raise
        print(f"task {args.task!r} is not implemented yet", file=sys.stderr)
        return 2
    from cvtasks.io import write_metrics

    metrics = module.run(config.get(args.task, quick=quick))
    path = write_metrics(args.task, metrics, quick=quick)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    print(f"wrote {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from cvtasks.report import NotebookError, execute_many

    unknown = sorted(set(args.tasks) - set(config.NOTEBOOKS))
    if unknown:
        print(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(config.NOTEBOOKS)}", file=sys.stderr)
        return 2
    quick = _quick(args)
    try:
        execute_many(args.tasks or list(config.NOTEBOOKS), quick=quick)
    except NotebookError as err:
        print(f"report failed:\n{err}", file=sys.stderr)
        return 1
    return 0


def cmd_encoders(args: argparse.Namespace) -> int:
    print("image encoders:", ", ".join(config.IMAGE_ENCODERS), f"(offline: {config.OFFLINE_IMAGE_ENCODER})")
    print("text encoders: ", ", ".join(config.TEXT_ENCODERS), f"(offline: {config.OFFLINE_TEXT_ENCODER})")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    quick = _quick(args)
    from cvtasks import search

    if args.k < 1:
        print(f"--k {args.k}: must be >= 1", file=sys.stderr)
        return 2
    try:
        hits = search.search(args.query, k=args.k, cfg=config.get("search", quick=quick))
    except ValueError as err:
        print(f"search failed: {err}", file=sys.stderr)
        return 2
    for row in hits.itertuples():
        print(f"{row.score:.3f}  {row.image}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cvtasks",
                                     description="Five computer-vision course projects: train, evaluate, report.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    run = sub.add_parser("run", help="train and evaluate one task; writes reports/<task>/metrics.json")
    run.add_argument("task", choices=list(TASK_MODULES))
    run.add_argument("--quick", action="store_true", help="small sizes and few epochs (minutes on a CPU)")
    run.set_defaults(func=cmd_run)

    report = sub.add_parser("report", help="execute the notebooks (full: outputs in place + HTML in reports/)")
    report.add_argument("tasks", nargs="*", metavar="task",
                        help=f"any of {', '.join(config.NOTEBOOKS)} (default: all)")
    report.add_argument("--quick", action="store_true", help="execute temporary copies in quick mode")
    report.set_defaults(func=cmd_report)

    search = sub.add_parser("search", help="images of the search gallery that fit a text query, best first")
    search.add_argument("query", help='the text to search for, e.g. "a red car"')
    search.add_argument("--k", type=int, default=config.SearchConfig.top_k, help="how many images to list")
    search.add_argument("--quick", action="store_true", help="the quick-mode model (trained if missing)")
    search.set_defaults(func=cmd_search)

    encoders = sub.add_parser("encoders", help="list the pretrained encoders and which work offline")
    encoders.set_defaults(func=cmd_encoders)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
