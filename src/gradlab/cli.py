"""The `gradlab` command: run experiments, list, compare, rerun and redraw runs.

    gradlab logreg optimizer.lr=0.1               # == python experiments/logreg.py optimizer.lr=0.1
    gradlab logreg -m optimizer.lr=0.01,0.1       # sweeps, launchers, --cfg job, --help: all of Hydra
    gradlab run-all                               # == python experiments/run_all.py (what `make run` runs)
    gradlab runs [ROOT] [--experiment X] [--status S] [--override key=value] [--tag T] [--all] [--wide | --json | --csv]
    gradlab compare DIR DIR [DIR ...]
    gradlab rerun DIR [--out NEW] [--ignore PATTERN]
    gradlab replot DIR [--out NEW]
    gradlab resume SWEEP_DIR
    gradlab search EXPERIMENT [search=NAME] [search.KEY=VALUE ...] [overrides...]   # an Optuna search

An experiment is a module of `gradlab.experiments` with its defaults in configs/<name>.yaml. A path that is not
what a command needs is one line on stderr (`gradlab: error: <path>: <problem>`) and exit code 2.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import pkgutil
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

EXIT_USAGE = 2
COMMANDS = ("runs", "compare", "rerun", "replot", "resume", "search")
ALIASES = {"run-all": "run_all"}


def experiments() -> list[str]:
    """The experiments `gradlab <name>` runs: modules of gradlab.experiments with a configs/<name>.yaml."""
    import gradlab.experiments
    from gradlab.runner.run import CONFIG_DIR

    modules = (m.name for m in pkgutil.iter_modules(gradlab.experiments.__path__))
    return sorted(name for name in modules if (CONFIG_DIR / f"{name}.yaml").is_file())


def summary_line(experiment: str, width: int = 76) -> str:
    """The first paragraph of the experiment's docstring, shortened; read without importing it (no JAX)."""
    spec = importlib.util.find_spec(f"gradlab.experiments.{experiment}")
    try:
        doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) if spec and spec.origin else None
    except (OSError, SyntaxError):
        doc = None
    return textwrap.shorten((doc or "").split("\n\n")[0], width, placeholder=" ...")


def experiments_help() -> str:
    names = experiments()
    rows = [("run-all" if name == "run_all" else name, summary_line(name)) for name in names]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {line}" for name, line in rows)


def run_experiment(name: str, overrides: Sequence[str]) -> int:
    """`python experiments/<name>.py <overrides>`: the Hydra app of the experiment, here; its exit code."""
    from gradlab.runner.run import launch

    saved = sys.argv
    sys.argv = [f"gradlab {name}", *overrides]
    try:
        launch(name)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        sys.argv = saved
    return 0


def parser(with_experiments: bool = False) -> argparse.ArgumentParser:
    """The command line; `with_experiments` lists the experiments in --help (reads their docstrings)."""
    top = argparse.ArgumentParser(
        prog="gradlab",
        description="Run gradlab experiments; list, compare, rerun and redraw their runs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "experiments: gradlab <experiment> [overrides...] == python experiments/<experiment>.py [overrides...]\n"
            "(-m sweeps, --cfg job, and `gradlab <experiment> --help` for its config: all of Hydra)\n"
            + (experiments_help() if with_experiments else "  (listed by `gradlab --help`)")
        ),
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    runs = commands.add_parser("runs", help="list every run under ROOT (default: outputs/) as a table",
                               description="Every run under ROOT, oldest first: status (crashed: the record says "
                               "running, the process is gone; unreadable: its metrics.json is damaged), wall time, "
                               "overrides, key metrics and path, cut to fit the terminal; --wide adds experiment, "
                               "start time, tags and git commit, uncut. A sweep job's attempt that a later `gradlab "
                               "resume` replaced is hidden (--all shows it, marked replaced). Filters combine (AND); "
                               "repeat one to allow several values.")
    runs.add_argument("root", nargs="?", default="outputs", type=Path, metavar="ROOT")
    runs.add_argument("--experiment", action="append", default=[], metavar="NAME", help="only runs of NAME")
    runs.add_argument("--status", action="append", default=[],
                      choices=["ok", "failed", "interrupted", "crashed", "running", "unreadable"],
                      help="only runs with STATUS")
    runs.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                      help="only runs whose KEY is VALUE (as overridden, or in the config they ran with)")
    runs.add_argument("--tag", action="append", default=[], metavar="TAG",
                      help="only runs tagged TAG (started with tags=[TAG,...])")
    runs.add_argument("--all", action="store_true",
                      help="also the attempts of sweep jobs that a later `gradlab resume` replaced")
    form = runs.add_mutually_exclusive_group()
    form.add_argument("--wide", action="store_true", help="every column, uncut (wider than a terminal)")
    form.add_argument("--json", action="store_true", help="a JSON list, one object per run")
    form.add_argument("--csv", action="store_true", help="CSV, one column per key metric")

    compare = commands.add_parser("compare", help="config, metric and version differences of runs, side by side",
                                  description="Only what differs: the config keys, metrics and versions.")
    compare.add_argument("dirs", nargs="+", type=Path, metavar="DIR")

    rerun = commands.add_parser("rerun", help="run DIR again (same overrides, same seed); exit 0 if every metric "
                                "is identical bit for bit",
                                description="Runs DIR's experiment again from its saved overrides (less Hydra's "
                                "own, hydra.*: where the original ran) into a new directory and reports per metric: "
                                "identical, or the max abs/rel difference; and the versions that differ. Exit code 0 "
                                "only if every metric is identical.")
    rerun.add_argument("dir", type=Path, metavar="DIR")
    rerun.add_argument("--out", type=Path, metavar="NEW", help="where to run (default: DIR-rerun, DIR-rerun-1, ...)")
    rerun.add_argument("--ignore", action="append", default=[], metavar="PATTERN",
                       help="metrics left out of the verdict (glob on dotted names, e.g. 'limits.*'): timings")

    replot = commands.add_parser("replot", help="redraw every figure of DIR from its saved arrays (no JAX, ~1 s)",
                                 description="Redraws every figure of DIR from plot_data.npz and the config in "
                                 "metrics.json, with the current code of gradlab.figures.<experiment>.")
    replot.add_argument("dir", type=Path, metavar="DIR")
    replot.add_argument("--out", type=Path, metavar="NEW",
                        help="an empty or new directory (default: DIR/replot, DIR/replot-1, ...)")
    resume = commands.add_parser("resume", help="run again the jobs of a sweep that did not end ok; the summary "
                                 "covers all", description="Each job of SWEEP_DIR whose latest attempt is not ok "
                                 "(failed, interrupted, crashed) runs again from its saved overrides into "
                                 "SWEEP_DIR/resume-<k>/<job>; then summary.csv is written from every job's latest "
                                 "attempt.")
    resume.add_argument("dir", type=Path, metavar="SWEEP_DIR")
    search = commands.add_parser(
        "search", help="an Optuna search: each trial a run of EXPERIMENT; resumes from its database",
        description="Runs the Optuna study of configs/hpo/NAME.yaml (default: EXPERIMENT_optuna): each trial is a "
        "run of EXPERIMENT in <dir>/<trial>; ends with <dir>/summary.csv, summary.png and best.yaml. The same "
        "command resumes a stopped or killed search. search.KEY=VALUE sets a key of the search config (n_trials, "
        "storage, study_name, seed, direction, dir); other overrides go to every trial's run. See docs/search.md.")
    search.add_argument("experiment", metavar="EXPERIMENT")
    search.add_argument("overrides", nargs="*", metavar="OVERRIDE")
    return top


def _runs(args: argparse.Namespace) -> int:
    from gradlab.runner import runs

    matching = runs.select(runs.find_runs(args.root), args.experiment, args.status, args.override, args.tag,
                           replaced=True)
    found = [run for run in matching if args.all or run.replaced_by is None]
    if args.json:
        print(runs.runs_json(found))
    elif args.csv:
        print(runs.runs_csv(found), end="")
    elif found:
        print(runs.runs_table(found, wide=args.wide))
    else:
        filtered = args.experiment or args.status or args.override or args.tag
        print(f"no runs under {args.root}" + (" match" if filtered else ""))
    hidden = len(matching) - len(found)
    if hidden and not (args.json or args.csv):
        print(f"({hidden} attempt{'s' if hidden > 1 else ''} replaced by a later `gradlab resume` not shown: --all)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from gradlab.runner.runs import RunError, compare

    if len(args.dirs) < 2:
        raise RunError(args.dirs[0], "compare needs two or more run directories")
    print(compare(args.dirs))
    return 0


def _search(args: argparse.Namespace) -> int:
    from gradlab.runner.runs import RunError

    if args.experiment not in experiments():
        raise RunError(Path(args.experiment), "not an experiment (one of: " + ", ".join(experiments()) + ")")
    from gradlab.runner.search import search

    return search(args.experiment, args.overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """The console entry point; returns the exit code."""
    if argv is None and sys.argv[1:2] in (["run-all"], ["run_all"]):  # the main job, as experiments/run_all.py:
        from gradlab.runner.process import hold_signals  # Ctrl-C from the first moment ends with a report

        hold_signals()
    try:
        return _main(argv)
    except BrokenPipeError:  # `gradlab runs | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        name = ALIASES.get(argv[0], argv[0])
        if name in experiments():
            return run_experiment(name, argv[1:])
    args = parser(with_experiments=not argv or argv[0].startswith("-") or argv[0] not in COMMANDS).parse_args(argv)
    if args.command is None:
        parser(with_experiments=True).print_help()
        return EXIT_USAGE

    from gradlab.runner.runs import RunError

    try:
        if args.command == "runs":
            return _runs(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "resume":
            from gradlab.runner.resume import resume

            return resume(args.dir)
        if args.command == "search":
            return _search(args)
        from gradlab.runner import reproduce

        if args.command == "rerun":
            return reproduce.rerun(args.dir, args.out, args.ignore)
        return reproduce.replot(args.dir, args.out)
    except RunError as err:
        print(f"gradlab: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
