"""The ``modelperf`` command line: browse the history store, write reports, compare runs, list baselines,
estimate how far sessions spread.

Every expected problem (no store, an empty store, an unknown test or run, a bad baseline file)
ends as one sentence with the fix on stderr and exit status 2, the status argparse uses for usage
errors, so scripts can tell "you asked wrongly" from a crash.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from modelperf.cli.baselines import cmd_baselines
from modelperf.cli.common import (
    DEFAULT_BASELINE_DIR,
    DEFAULT_HISTORY,
    HISTORY_ENV,
    RECORD,
    SAVE,
    SHORT_ID,
    CliError,
    baseline_root,
    baseline_store,
    open_store,
    require_runs,
    resolve_run,
    text,
)
from modelperf.records import Measurement, SessionResults
from modelperf.report.html import ReportError, render_html
from modelperf.report.markdown import render_markdown
from modelperf.report.series import series_by_key
from modelperf.report.terminal import markdown_summary
from modelperf.report.trends import change_points
from modelperf.store.atomic import atomic_write_text
from modelperf.store.history import HistoryError, HistoryRow, HistoryStore
from modelperf.units import format_change, format_commit, format_time, format_value
from modelperf.utils import parse_positive_int
from modelperf.vocab import STATISTICS

__all__ = ["DEFAULT_BASELINE_DIR", "DEFAULT_HISTORY", "HISTORY_ENV", "CliError", "build_parser", "main"]




def main(argv: list[str] | None = None) -> int:
    """Run ``modelperf``; returns the exit status (0 fine, 2 for a problem with the request)."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except _expected_errors() as exc:
        print(f"modelperf {args.command}: {exc}", file=sys.stderr)
        return 2


def _expected_errors() -> tuple[type[Exception], ...]:
    from modelperf.store.baselines import BaselineError  # lazy: `modelperf history` needs no baselines module

    return (CliError, HistoryError, BaselineError, ReportError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelperf", description="Browse and report the results that `pytest --benchmark` recorded."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    history_help = (
        f"history store: a file path or an SQLAlchemy URL (default: ${HISTORY_ENV} if set, else {DEFAULT_HISTORY})"
    )

    def add(name: str, handler: Callable[[argparse.Namespace], int], text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--history", metavar="PATH_OR_URL", help=history_help)
        sub.set_defaults(handler=handler)
        return sub

    sub = add("history", _cmd_history, "Show each test's figures over time, one table per test and metric.")
    sub.add_argument("--test", metavar="SUBSTR", help="only tests whose id contains SUBSTR (default: all)")
    sub.add_argument("--metric", metavar="NAME", help="only this metric, e.g. median (default: all)")
    sub.add_argument("--hardware", metavar="ID", help="only runs on this hardware id (default: all)")
    sub.add_argument("--limit", type=parse_positive_int, metavar="N", help="only the last N points (default: all)")

    sub = add("report", _cmd_report, "Write an HTML report with interactive charts and/or a markdown summary, of "
              "the history and/or of one session's results (a pull request's --against run).")
    sub.add_argument("--html", metavar="FILE", help="write one self-contained HTML page here (default: none)")
    sub.add_argument(
        "--markdown",
        metavar="FILE",
        help="write the markdown summary here, of the --results session if given, else of the history's latest runs; "
        "- for stdout (default: stdout when --html is not given)",
    )
    sub.add_argument("--results", metavar="FILE", help="a session's --results-json file: its verdicts as a chart of "
                     "change/base ratios; the history is then optional (default: none)")
    sub.add_argument("--report-url", metavar="URL", help="link the markdown summary to the HTML report published "
                     "here, e.g. a CI artifact (default: no link)")
    sub.add_argument("--baseline-dir", metavar="DIR", help="mark baseline saves from this folder (default: none)")
    sub.add_argument("--test", metavar="SUBSTR", help="only tests whose id contains SUBSTR (default: all)")
    sub.add_argument("--hardware", metavar="ID", help="only runs on this hardware id (default: all)")

    sub = add("compare", _cmd_compare, "Compare two runs, or a run with the stored baselines, side by side.")
    sub.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="a run id or unique prefix, `latest`, or `previous` (the run before the latest on the same hardware)",
    )
    sub.add_argument("--baseline-dir", metavar="DIR", help="compare one RUN with the baselines in DIR (default: none)")
    sub.add_argument("--hardware", metavar="ID", help="resolve latest/previous on this hardware id (default: any)")

    sub = add("baselines", cmd_baselines, "List stored baselines, or preview what saving a run would change.")
    sub.add_argument(
        "--baseline-dir",
        default=DEFAULT_BASELINE_DIR,
        metavar="DIR",
        help=f"baseline folder (default: {DEFAULT_BASELINE_DIR})",
    )
    sub.add_argument(
        "--hardware", metavar="ID", help="list the records of this hardware id (default: a summary of all)"
    )
    sub.add_argument(
        "--preview-run",
        metavar="RUN",
        help="show what `--baseline-save` of this run's measurements would change for its hardware (default: none)",
    )

    sub = add("spread", _cmd_spread, "Estimate --session-spread from the history: how far each latency test's "
              "drift-corrected figure moves between sessions of the same code on one machine.")
    sub.add_argument("--test", metavar="SUBSTR", help="only tests whose id contains SUBSTR (default: all)")
    sub.add_argument("--hardware", metavar="ID", help="only runs on this hardware id (default: all)")

    sub = add("export", _cmd_export, "Copy every run of the history store into another store (e.g. a database "
              "into a SQLite file a CI job can extend without touching the original).")
    sub.add_argument("--to", required=True, metavar="PATH_OR_URL", help="the store to copy into (created if missing)")
    return parser


def _cmd_export(args: argparse.Namespace) -> int:
    with open_store(args) as source, HistoryStore(args.to) as target:
        present = {run.run_id for run in target.runs()}
        missing = [run for run in source.runs() if run.run_id not in present]  # a re-export adds only new runs
        for run in missing:
            target.append(run, source.measurements(run.run_id))
        print(f"Copied {len(missing)} runs from {source.display} to {target.display} "
              f"({len(present)} were there already).")
    return 0


def _filtered_rows(store: HistoryStore, args: argparse.Namespace) -> list[HistoryRow]:
    """The rows the filters select; when they select nothing, say which filter matched nothing."""
    hardware = getattr(args, "hardware", None)
    require_runs(store, hardware)
    test, metric = getattr(args, "test", None), getattr(args, "metric", None)
    rows = store.series(test, metric, hardware)
    if rows:
        return rows
    if test is not None and not store.series(test=test):
        raise CliError(
            f"No test id in history store {store.display} contains {test!r}: run `modelperf history` "
            "without --test to see the tests it holds."
        )
    if metric is not None and not store.series(metric=metric):
        metrics = ", ".join(sorted({r.metric for r in store.series()}))
        raise CliError(f"History store {store.display} holds no metric {metric!r}: use one of {metrics}.")
    raise CliError(f"No measurements in history store {store.display} match all of the given filters: drop one.")


def _cmd_history(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        rows = _filtered_rows(store, args)
    blocks = []
    for (hardware, test, metric), points in series_by_key(rows).items():
        table = []
        for index, point in enumerate(points):
            previous = points[index - 1].value if index else None
            table.append(
                [
                    format_time(point.started_at),
                    point.run_id[:SHORT_ID],
                    format_commit(point.commit, point.dirty),
                    format_value(point.value, point.unit),
                    format_change(previous, point.value),
                    point.judgement.verdict.value if point.judgement else "",
                ]
            )
        shown = table[-args.limit :] if args.limit else table
        headers = ["time", "run", "commit", "value", "change", "verdict"]
        # Found over the whole series, even when --limit shows only its end.
        steps = "".join(f"\nchange point: {point.line()}" for point in change_points(points))
        blocks.append(f"{test}  {metric}  [{hardware}]\n" + text(headers, shown, "lllrrl") + steps)
    print("\n\n".join(blocks))
    return 0


def _cmd_spread(args: argparse.Namespace) -> int:
    from modelperf import decide
    from modelperf.store.spreads import group_figures

    with open_store(args) as store:
        runs = require_runs(store, args.hardware)
        figures = group_figures(((run, store.measurements(run.run_id)) for run in runs), args.test)
    if not figures:
        raise CliError(f"History store {store.display} holds no stored-mode latency figure with control rounds and "
                       f"no stored-mode load figure{' for tests containing ' + repr(args.test) if args.test else ''}: {RECORD} first.")
    rows: list[list[str]] = []
    largest: dict[str, tuple[float, str]] = {}
    for (hardware, test, statistic), groups in sorted(figures.items()):
        spread = decide.pooled_spread(list(groups.values()))
        used = decide.SpreadTable(history={(test, statistic): spread}).for_figure(test, statistic).value
        enough = spread.enough
        rows.append([hardware, test, statistic, str(spread.sessions), str(len(groups)),
                     f"{spread.sd * 100:.2f} %" if enough else f"- (needs {decide.MIN_SPREAD_DF - spread.df} more)",
                     f"{used * 100:.2f} %"])
        # One value for every test is a latency setting: a served figure's spread, 8-35 % on a shared VM,
        # would blunt every latency comparison (and a served tail scales what is set by 2 or 4).
        if enough and statistic in STATISTICS and spread.sd > largest.get(hardware, (0.0, ""))[0]:
            largest[hardware] = (spread.sd, test)
    print(text(["hardware", "test", "statistic / served figure", "sessions", "commits", "spread (sd of one session)",
                "a stored verdict uses"], rows, "lllrrrr"))
    print("The spread is pooled within sessions of one commit, so real changes between commits stay out of it. "
          "A stored comparison uses its test's own: the upper 80 % bound of that sd, or a default until "
          f"{decide.MIN_SPREAD_DF + 1} sessions of one commit exist.")
    if not largest:
        print(f"No latency test has enough repeated sessions yet ({decide.MIN_SPREAD_DF + 1} of one commit, or 3 of each of "
              "two): run `pytest --benchmark` a few more times without changing the code, then ask again.")
    for hardware, (sd, test) in sorted(largest.items()):
        print(f"{hardware}: largest latency spread {sd * 100:.2f} % ({test}); `--session-spread "
              f"{math.ceil(sd * 200) / 200:.3f}` would set that one value for every test instead.")
    return 0


def _latest_tradeoff(store: HistoryStore) -> list[list[str]] | None:
    """The side-by-side table of the newest run that measured both models, if any did."""
    from modelperf.report.tradeoff import rows as tradeoff_rows

    for run in reversed(store.runs()):
        models = run.versions.get("models") or {}
        if len(models) >= 2:
            return tradeoff_rows(models, store.measurements(run.run_id))
    return None


def _cmd_report(args: argparse.Namespace) -> int:
    session = _read_results(Path(args.results)) if args.results else None
    rows: list[HistoryRow] = []
    tradeoff = None
    if session is None or args.history or os.environ.get(HISTORY_ENV) or Path(DEFAULT_HISTORY).exists():
        with open_store(args) as store:
            rows = _filtered_rows(store, args)
            tradeoff = _latest_tradeoff(store)
    baselines = None
    if args.baseline_dir:
        root = baseline_root(args.baseline_dir)
        baselines = {hw: baseline_store(root, hw).load() for hw in sorted({r.hardware_id for r in rows})}
    if args.html:
        _write(Path(args.html), render_html(rows, baselines, tradeoff=tradeoff, session=session))
        print(f"Wrote the HTML report to {args.html}.")
    if session is not None:
        markdown = markdown_summary(session, report_url=args.report_url)
    else:
        markdown = render_markdown(rows, report_url=args.report_url)
    if args.markdown and args.markdown != "-":
        _write(Path(args.markdown), markdown)
        print(f"Wrote the markdown summary to {args.markdown}.")
    elif args.markdown == "-" or not args.html:
        print(markdown)
    return 0


def _read_results(path: Path) -> SessionResults:
    """A session's ``--results-json`` file; a missing or foreign file is one sentence."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"Cannot read the results file {path} ({exc.strerror or exc}): run `pytest --benchmark "
                       f"--results-json {path}` first, or point --results at the file a session wrote.") from None
    try:
        return SessionResults.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CliError(f"{path} is not a results file written by `pytest --benchmark --results-json` "
                       f"({type(exc).__name__}: {exc}): point --results at the file a session wrote.") from None


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    except OSError as exc:
        raise CliError(f"Cannot write {path} ({exc.strerror or exc}): choose a writable path.") from None


def _cmd_compare(args: argparse.Namespace) -> int:
    refs: list[str] = args.runs
    if len(refs) > 2 or (len(refs) == 2) == bool(args.baseline_dir):
        raise CliError(
            "Compare takes two runs, or one run with --baseline-dir: e.g. `modelperf compare previous latest`."
        )
    with open_store(args) as store:
        runs = require_runs(store, args.hardware)
        # Older run first, whatever the order asked: a change is always the newer run's against the older.
        chosen = sorted((resolve_run(store, runs, ref) for ref in refs), key=lambda r: (r.started_at, r.run_id))
        measured = [{m.key: m for m in store.measurements(run.run_id)} for run in chosen]
    if len(chosen) == 1:
        run = chosen[0]
        stored = baseline_store(baseline_root(args.baseline_dir), run.hardware_id).load()
        if not stored:
            raise CliError(
                f"There are no baselines for hardware {run.hardware_id!r} under {args.baseline_dir}: {SAVE}."
            )
        measured.insert(0, {key: record.measurement for key, record in stored.items()})
        names = ["baseline", f"run {run.run_id[:SHORT_ID]}"]
        reference = f"Change: run {run.run_id[:SHORT_ID]} against the baselines under {args.baseline_dir}."
    else:
        names = [f"run {run.run_id[:SHORT_ID]}" for run in chosen]
        old, new = chosen
        reference = (f"Change: the newer run {new.run_id[:SHORT_ID]} ({format_time(new.started_at)}) against the "
                     f"reference, the older run {old.run_id[:SHORT_ID]} ({format_time(old.started_at)}).")
    print(_comparison_table(names, measured[0], measured[1]))
    print(reference)
    return 0


def _comparison_table(names: Sequence[str], left: dict[str, Measurement], right: dict[str, Measurement]) -> str:
    rows = []
    for key in sorted(left.keys() | right.keys()):
        a, b = left.get(key), right.get(key)
        some = a or b
        assert some is not None  # the key came from one of the two
        ratio = f"{b.value / a.value:.3f}x" if a and b and a.value else "-"
        rows.append(
            [
                some.test_id,
                some.metric,
                format_value(a.value, a.unit) if a else "-",
                format_value(b.value, b.unit) if b else "-",
                ratio,
                format_change(a.value if a else None, b.value) if b else "-",
            ]
        )
    return text(["test", "metric", *names, "ratio", "change"], rows, "llrrrr")


if __name__ == "__main__":
    sys.exit(main())
