"""Command line: ``python -m cvtasks <command>``; ``--help`` lists the commands."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import config
from cvtasks.registry import TASK_CLASSES, task_class

# The task objects (cvtasks.task.Task), imported when a command needs one.
def _quick(args: argparse.Namespace) -> bool:
    """--quick or CVTASKS_QUICK=1. Passed on explicitly (config, kernel environment), never
    written back into this process's environment."""
    return bool(args.quick) or config.quick_from_env()


def cmd_run(args: argparse.Namespace) -> int:
    overrides = {"paths": config.Paths.under(args.out, cache=config.CACHE_DIR)} if args.out else {}
    if args.retrain:
        if args.task != "fashion":
            print("--retrain is for the fashion task (its weights are committed)", file=sys.stderr)
            return 2
        overrides["retrain"] = True
    task = task_class(args.task)(config.get(args.task, quick=_quick(args), **overrides), caller="cli")
    metrics = task.run()
    print(json.dumps(metrics, indent=2, sort_keys=True))
    print(f"wrote {task.metrics_file}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train one fashion recipe (the default, or a long-schedule candidate) and write its
    checkpoint and training record; needs only torch, so it runs as it is on an accelerator."""
    # imported here, not at the top: each command loads only its own stack (start-up time)
    from cvtasks.fashion.data import prepare_data
    from cvtasks.fashion.training import train_final
    from cvtasks.models.fashion_classifier import model_path

    quick = _quick(args)
    overrides = {k: v for k, v in (config.FASHION_CANDIDATES[args.candidate] if args.candidate else {}).items()
                 if not (quick and k in config.FashionConfig.QUICK)}   # quick mode keeps its small sizes
    if args.seed is not None:
        overrides["seed"] = args.seed
    cfg = config.get("fashion", quick=quick, **overrides)
    checkpoint = args.out / f"model-{args.candidate or 'default'}-{cfg.seed}.pt" if args.out else model_path(cfg)
    _, meta = train_final(cfg, prepare_data(cfg), checkpoint, reuse=False)
    best = meta["history"][meta["best_epoch"] - 1]
    print(f"{args.candidate or 'default'} seed {cfg.seed}: val/acc {best['val/acc']:.4f} at epoch {meta['best_epoch']}, "
          f"{meta['train_seconds']:.0f} s on {meta['device']}; wrote {checkpoint}")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    """Add fashion checkpoints trained elsewhere to reports/fashion/schedules.json."""
    # imported here, not at the top: each command loads only its own stack (start-up time)
    from cvtasks.fashion import schedules

    for checkpoint in args.checkpoints:
        print(f"{checkpoint}: entry {schedules.add(checkpoint)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    # imported here, not at the top: each command loads only its own stack (start-up time)
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


def cmd_export(args: argparse.Namespace) -> int:
    # imported here, not at the top: each command loads only its own stack (start-up time)
    from cvtasks.fashion.data import prepare_data
    from cvtasks.models.fashion_classifier import model_path
    from cvtasks.io import atomic_write_text, write_metrics
    from cvtasks.serve.export import export_fashion

    quick = _quick(args)
    fashion_cfg, serve_cfg = config.get("fashion", quick=quick), config.get("serve", quick=quick)
    checkpoint = args.checkpoint or model_path(fashion_cfg)
    if not checkpoint.exists():
        print(f"no trained model at {checkpoint}: run `python -m cvtasks run fashion"
              f"{' --quick' if quick else ''}` first", file=sys.stderr)
        return 2
    data = prepare_data(fashion_cfg)
    out_dir = args.out_dir or serve_cfg.model_path.parent
    metrics = export_fashion(checkpoint, data, out_dir)
    text = json.dumps(metrics, indent=2, sort_keys=True)
    path = (atomic_write_text(args.metrics, text + "\n") if args.metrics
            else write_metrics("fashion", metrics, quick=quick, name="export"))
    print(text)
    print(f"wrote {out_dir}/model.onnx, model.int8.onnx and {path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    # imported here, not at the top: each command loads only its own stack (start-up time)
    from cvtasks.serve.server import serve

    quick = _quick(args)
    overrides = {k: v for k, v in {"backend": args.backend, "model_path": args.model, "host": args.host,
                                   "port": args.port, "threads": args.threads, "max_batch": args.max_batch,
                                   "max_wait_ms": args.max_wait_ms, "workers": args.workers,
                                   "decode_draft_side": args.decode_draft_side}.items() if v is not None}
    settings = config.get("serve", quick=quick, **overrides)
    if not settings.model_path.exists():
        print(f"no model at {settings.model_path}: run `python -m cvtasks export"
              f"{' --quick' if quick else ''}` (or pass --model)", file=sys.stderr)
        return 2
    serve(settings, overrides)
    return 0


def cmd_readme(args: argparse.Namespace) -> int:
    # imported here, not at the top: each command loads only its own stack (start-up time)
    from cvtasks import readme

    changed = readme.rewrite()
    print("README.md: measured block " + ("rewritten from reports/" if changed else "already matches reports/"))
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    """The service and a Prometheus scraping it (its alerts loaded) until Ctrl-C."""
    import signal
    import time

    # imported here, not at the top: each command loads only its own stack (start-up time)
    from cvtasks.serve import loadtest, monitor

    def interrupted(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)   # `kill` stops both processes, like Ctrl-C

    settings = config.get("serve", quick=_quick(args))
    if not settings.model_path.exists():
        print(f"no model at {settings.model_path}: run `python -m cvtasks export` first", file=sys.stderr)
        return 2
    try:
        monitor.binary()
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 2
    folder = config.ROOT / "runs" / "monitor"   # git-ignored: logs and Prometheus data
    folder.mkdir(parents=True, exist_ok=True)
    server = loadtest.start_server("onnx", settings.model_path, folder / "service.log", max_batch=settings.max_batch,
                                   threads=settings.threads, workers=settings.workers)
    prom = None
    try:
        prom = monitor.start_prometheus(server.url.removeprefix("http://"), folder, settings.prometheus_port)
        print(f"service:    {server.url}/docs  (log {folder / 'service.log'})")
        print(f"prometheus: {prom.url}/alerts  {prom.url}/graph  (log {prom.log})")
        print("Ctrl-C stops both.")
        while server.process.poll() is None and prom.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if prom is not None:
            prom.stop()
        loadtest.stop_server(server)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    # imported here, not at the top: each command loads only its own stack (start-up time)
    from cvtasks.io import atomic_write_text, metrics_path
    from cvtasks.serve import loadtest
    from cvtasks.serve.summary import BENCH_FILES

    quick = _quick(args)
    out = metrics_path("fashion", quick, name=BENCH_FILES[args.target])
    if args.seconds and args.target == "serve":
        print("--seconds sets a soak's length; `bench serve` runs its fixed schedule", file=sys.stderr)
        return 2
    try:
        summary = (loadtest.bench_serve(quick, log_dir=out.parent / "bench_logs") if args.target == "serve"
                   else loadtest.soak(quick, log_dir=out.parent / "bench_logs", seconds=args.seconds,
                                      trace_memory=args.target == "memory"))
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 2
    text = json.dumps(summary, indent=2)
    atomic_write_text(out, text + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("windows", "memory_trace")}, indent=2))
    print(f"wrote {out}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    # imported here, not at the top: each command loads only its own stack (start-up time)
    from cvtasks.fashion import study
    from cvtasks.fashion.data import prepare_data
    from cvtasks.tracking import Tracker

    cfg = config.get("fashion", quick=_quick(args))
    tracker = Tracker("fashion", cfg, caller="cli", job_type="study", wandb_dir=cfg.paths.wandb)
    result = study.run(prepare_data(cfg), cfg, trials=args.trials, storage=args.storage)
    table = study.top_recipes(result, cfg)
    summary = {"study/n_trials": len(study.trials_table(result)), "study/seeds_per_top_config": int(table.seeds.min())
               if len(table) else 0, "study/best_val_acc_mean": float(table.val_acc_mean.iloc[0]) if len(table) else 0.0}
    if tracker.mode != "disabled":
        tracker.log_table("study/trials", study.trials_table(result))
    tracker.finish(summary)
    print(table.head(10).to_string())
    print(json.dumps(summary, indent=2))
    return 0


def cmd_encoders(args: argparse.Namespace) -> int:
    print("image encoders:", ", ".join(config.IMAGE_ENCODERS), f"(offline: {config.OFFLINE_IMAGE_ENCODER})")
    print("text encoders: ", ", ".join(config.TEXT_ENCODERS), f"(offline: {config.OFFLINE_TEXT_ENCODER})")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    # imported here, not at the top: each command loads only its own stack (start-up time)
    from cvtasks.search import service

    cfg = config.get("search", quick=_quick(args))
    try:
        hits, notes = service.search(args.query, service.load(service.bundle_path(cfg)), args.k)
    except (service.QueryError, FileNotFoundError) as err:
        print(f"search: {err}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}")
    for row in hits.itertuples():
        print(f"{row.score:.2f}  {row.title}  ({row.file})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cvtasks",
                                     description="Five computer-vision course projects: train, evaluate, report.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    run = sub.add_parser("run", help="train and evaluate one task; writes reports/<task>/metrics.json")
    run.add_argument("task", choices=list(TASK_CLASSES))
    run.add_argument("--quick", action="store_true", help="small sizes and few epochs (minutes on a CPU)")
    run.add_argument("--out", type=Path, help="write reports/, models/, runs/ and wandb/ under this folder "
                                              "instead of the repository (the feature cache stays shared)")
    run.add_argument("--retrain", action="store_true",
                     help="fashion: train the default recipe again instead of reusing weights/fashion/model.pt")
    run.set_defaults(func=cmd_run)

    train = sub.add_parser("train", help="train one fashion recipe: the default, or a long-schedule candidate "
                                         "(config.FASHION_CANDIDATES); CUDA when there is one")
    train.add_argument("task", choices=["fashion"])
    train.add_argument("--candidate", choices=list(config.FASHION_CANDIDATES), help="default: the default recipe")
    train.add_argument("--seed", type=int, help="default: the config's seed")
    train.add_argument("--out", type=Path, help="folder for model-<candidate>-<seed>.pt and .json "
                                                "(default: the recipe's own path)")
    train.add_argument("--quick", action="store_true", help="small sizes and few epochs")
    train.set_defaults(func=cmd_train)

    schedule = sub.add_parser("schedule", help="add fashion checkpoints trained elsewhere (`train fashion --out`) "
                                               "to reports/fashion/schedules.json, for the validation comparison")
    schedule.add_argument("task", choices=["fashion"])
    schedule.add_argument("checkpoints", nargs="+", type=Path, metavar="checkpoint")
    schedule.set_defaults(func=cmd_schedule)

    report = sub.add_parser("report", help="execute the notebooks (full: outputs in place + HTML in reports/)")
    report.add_argument("tasks", nargs="*", metavar="task",
                        help=f"any of {', '.join(config.NOTEBOOKS)} (default: all)")
    report.add_argument("--quick", action="store_true", help="execute temporary copies in quick mode")
    report.set_defaults(func=cmd_report)

    search = sub.add_parser("search", help="images of the search gallery that fit a text query, best first")
    search.add_argument("query", help='the text to search for, e.g. "a red car"')
    search.add_argument("--k", type=int, default=config.SearchConfig.top_k, help="how many images to list")
    search.add_argument("--quick", action="store_true", help="the quick-mode model")
    search.set_defaults(func=cmd_search)

    export = sub.add_parser("export", help="export the trained fashion model to ONNX FP32 + INT8, with checks")
    export.add_argument("--quick", action="store_true", help="the quick model (models/fashion/quick/)")
    export.add_argument("--checkpoint", type=Path, help="trained model (default: the config's)")
    export.add_argument("--out-dir", type=Path, help="where model.onnx and model.int8.onnx go")
    export.add_argument("--metrics", type=Path, help="export.json (default: reports/fashion/)")
    export.set_defaults(func=cmd_export)

    serve = sub.add_parser("serve", help="run the fashion classifier service (FastAPI, uvicorn)")
    serve.add_argument("--backend", choices=["onnx", "torch"], help="default: onnx (the INT8 model)")
    serve.add_argument("--model", type=Path, help="ONNX file, or the training checkpoint for --backend torch")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--threads", type=int, help="model threads")
    serve.add_argument("--max-batch", type=int, help="micro-batch size (1: no batching)")
    serve.add_argument("--max-wait-ms", type=float, help="how long a micro-batch waits to fill")
    serve.add_argument("--workers", type=int, help="server processes (default 1)")
    serve.add_argument("--decode-draft-side", type=int,
                       help="JPEGs decoded at reduced scale, longest side >= this many px (0: full decode)")
    serve.add_argument("--quick", action="store_true", help="serve the quick model")
    serve.set_defaults(func=cmd_serve)

    bench = sub.add_parser("bench", help="benchmarks: `bench serve` load-tests the service on loopback, "
                                         "`bench soak` holds the target rate with product photos, `bench memory` "
                                         "soaks with the server tracing its heap (what grows)")
    bench.add_argument("target", choices=["serve", "soak", "memory"])   # cvtasks.serve.summary.BENCH_FILES
    bench.add_argument("--quick", action="store_true", help="short runs against the quick model")
    bench.add_argument("--seconds", type=float, help="the soak's length (default: ServeConfig.soak_seconds)")
    bench.set_defaults(func=cmd_bench)

    rd = sub.add_parser("readme", help="rewrite README's measured block from reports/ (metrics and bench files)")
    rd.set_defaults(func=cmd_readme)

    mon = sub.add_parser("monitor", help="the service and a Prometheus with its alert rules, on this machine")
    mon.add_argument("--quick", action="store_true", help="serve the quick model")
    mon.set_defaults(func=cmd_monitor)

    study = sub.add_parser("study", help="the fashion classifier's hyperparameter study (Optuna; resumable)")
    study.add_argument("task", choices=["fashion"])
    study.add_argument("--quick", action="store_true", help="tiny sizes, a few trials")
    study.add_argument("--trials", type=int, help="sampled trials the study should hold (default: the config's)")
    study.add_argument("--storage", help="Optuna storage shared by workers: a database URL or journal:PATH "
                                         "(default: SQLite under reports/fashion/)")
    study.set_defaults(func=cmd_study)

    encoders = sub.add_parser("encoders", help="list the pretrained encoders and which work offline")
    encoders.set_defaults(func=cmd_encoders)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
