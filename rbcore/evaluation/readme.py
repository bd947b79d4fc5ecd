"""Write the README's "Results" section from metrics.json (generated, never typed).

    python -m rbcore.evaluation.readme --metrics build/default/run/metrics.json --readme README.md

rewrites the text between `<!-- results:start -->` and `<!-- results:end -->` in the README
with the talk's table (Takahashi 2021, "Evaluation with actual test dataset") computed by
notebooks/04_evaluation.ipynb, each value with its bootstrap 95 % interval, and the commands
that reproduce it. Everything outside the markers is left as it is.

    python -m rbcore.evaluation.readme --study build/default/run/noise_study.json --readme README.md

rewrites the block between `<!-- study:start -->` and `<!-- study:end -->` with the label-noise
study of notebooks/07_label_noise_study.ipynb (`rbcore.study.report.study_markdown`): the
ablation, which differences exceed both the bootstrap interval and the seed spread, the sweep.

    python -m rbcore.evaluation.readme --week build/default/run/deployment_summary.json --readme README.md

rewrites the block between `<!-- week:start -->` and `<!-- week:end -->` with the simulated
week of notebooks/05_deployment_week.ipynb beside the talk's (`rbcore.deploy.report.week_markdown`).

    python -m rbcore.evaluation.readme --real-alerts build/default/run/real_alerts.json --readme README.md

rewrites the block between `<!-- real-alerts:start -->` and `<!-- real-alerts:end -->` with
notebook 06's comparison on held-out ZTF alerts (`rbcore.ztf.compare.real_alerts_markdown`).

    python -m rbcore.evaluation.readme --decomposition benchmarks/decomposition.json --readme README.md

rewrites the block between `<!-- decomposition:start -->` and `<!-- decomposition:end -->`
with the long CPU run of `benchmarks/decomposition.py` (issue 22): its rows, steps,
memorization and the paper's claims (`rbcore.study.decomp_report`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rbcore.evaluation.table import DISPLAY_NAMES, read_metrics
from rbcore.files import write_text_atomic

START = "<!-- results:start -->"
END = "<!-- results:end -->"
STUDY_START = "<!-- study:start -->"
STUDY_END = "<!-- study:end -->"
WEEK_START = "<!-- week:start -->"
WEEK_END = "<!-- week:end -->"
REAL_START = "<!-- real-alerts:start -->"
REAL_END = "<!-- real-alerts:end -->"
DECOMP_START = "<!-- decomposition:start -->"
DECOMP_END = "<!-- decomposition:end -->"
#: Row names as in the talk's table.
ROW_NAMES = DISPLAY_NAMES  # the talk's rows, and the clean-label oracle where it was trained
COLUMNS = (
    ("accuracy", "accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
    ("auc", "AUC (ROC)"),
    ("fpr_at_tpr90", "FPR @ TPR = 0.9"),
)

#: Figures of notebook 04 linked from the block (figures/04_<name>.png).
FIGURES = ("roc", "confusion_matrices", "output_distributions", "pr", "fpr_by_category")


def _fmt(v: float) -> str:
    """4 decimals, or 2 significant digits in scientific notation below 0.01 (FPRs ~1e-4)."""
    if v != 0 and abs(v) < 0.01:
        return f"{v:.2e}"
    return f"{v:.4f}"


def results_markdown(metrics: dict, *, metrics_path: str, command: str) -> str:
    """The Results block: a markdown table of both models plus counts and the reproducing command.

    Args:
        metrics: the contents of metrics.json (validated schema, see rbcore.evaluation).
        metrics_path: where it was read, quoted in the text.
        command: the command line that regenerates the block.

    Returns:
        Markdown text (no markers).
    """
    counts = metrics["test_counts"]
    threshold = metrics["current"].get("threshold", metrics.get("threshold", 0.5))
    header = "| model | " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [
        f"Test set: {counts['n_real']:,} real and {counts['n_bogus']:,} bogus candidates"
        f" (profile `{metrics.get('profile', '?')}`). Accuracy, precision, recall and F1 at"
        f" probability {threshold}; in brackets the stratified bootstrap 95 % interval"
        f" ({metrics.get('n_boot', '?')} resamples).",
        "",
        header,
        "|" + "---|" * (len(COLUMNS) + 1),
    ]
    rows = {m: name for m, name in ROW_NAMES.items() if m in metrics}
    for model, row_name in rows.items():
        cells = []
        for key, _ in COLUMNS:
            e = metrics[model][key]
            lo, hi = e["ci95"]
            cells.append(f"{_fmt(e['value'])} [{_fmt(lo)}, {_fmt(hi)}]")
        lines.append(f"| {row_name} | " + " | ".join(cells) + " |")
    notes = []
    for model, row_name in rows.items():
        t = metrics[model].get("tpr90")
        if t:
            notes.append(f"{t['n_bogus_above']} bogus for {row_name}")
    if notes:
        lines += [
            "",
            "The FPR at TPR = 0.9 rests on the bogus scored above that threshold: "
            + ", ".join(notes)
            + f" (of {counts['n_bogus']:,}).",
        ]
    lines += _flags_and_false_positives(metrics, rows)
    figures = ", ".join(f"[{name}](figures/04_{name}.png)" for name in FIGURES)
    lines += [
        "",
        f"Figures: {figures}.",
        "",
        f"Generated from `{metrics_path}` by `{command}`; the run itself is"
        " `python -m rbcore.notebooks --profile default` (notebook `04_evaluation`).",
    ]
    return "\n".join(lines)


def _flags_and_false_positives(metrics: dict, rows: dict) -> list[str]:
    """Lines of the table: bogus categories flagged in training vs false positives at TPR 0.9.

    Empty unless metrics.json holds `flagged_by_category` and `fpr_by_category` (simulated
    data with notebook 02's ledger).
    """
    flagged = metrics.get("flagged_by_category")
    fpr = metrics.get("fpr_by_category")
    if not flagged or not fpr:
        return []
    keys = {name: f"{name}, TPR = 0.9" for name in rows.values()}
    keys = {name: k for name, k in keys.items() if k in fpr}
    cats = sorted(set(flagged) | {c for k in keys.values() for c in fpr[k]})
    header = "| bogus category | training (labelled bogus) | flagged in training | test bogus |"
    lines = [
        "",
        "Where the false positives at TPR = 0.9 come from: for each bogus category, the share of"
        " its training samples that the mislabel step flagged (the two-stage method unlabels"
        " them), and the test bogus each model scores above its own TPR = 0.9 threshold:",
        "",
        header + "".join(f" FP {name} |" for name in keys),
        "|" + "---|" * (4 + len(keys)),
    ]
    for c in cats:
        f = flagged.get(c)
        train = "–" if f is None else f"{f['n']:,}"
        share = "–" if f is None else f"{f['share']:.1%} ({f['n_flagged']:,})"
        n_test = next((fpr[k][c]["n"] for k in keys.values() if c in fpr[k]), None)
        fps = [fpr[k][c]["n_fp"] if c in fpr[k] else "–" for k in keys.values()]
        lines.append(
            f"| {c} | {train} | {share} | {'–' if n_test is None else f'{n_test:,}'} | "
            + " | ".join(str(v) for v in fps)
            + " |"
        )
    return lines


def _replace_block(readme: Path, start: str, end: str, block: str) -> str:
    """`readme`'s text with the lines between `start` and `end` replaced by `block` (written)."""
    text = readme.read_text()
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{readme}: expected one '{start}' followed by one '{end}' marker")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    new = f"{head}{start}\n{block}\n{end}{tail}"
    write_text_atomic(readme, new)
    return new


def _update(readme, path, *, flag: str, markers, load, render, command, expected: str) -> str:
    """Replace one generated block of `readme`: read `path` with `load`, render, write.

    Raises:
        FileNotFoundError: README or input missing.
        ValueError: markers missing, duplicated or out of order; the input lacks what
            `render` reads (`expected` says what it should have been).
    """
    readme = Path(readme)
    if not readme.exists():
        raise FileNotFoundError(f"{readme}: README not found")
    doc = load(path)
    command = command or (
        f"python -m rbcore.evaluation.readme --{flag} {path} --readme {readme.as_posix()}"
    )
    try:
        block = render(doc, str(path), command)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: {expected} ({e!r})") from e
    return _replace_block(readme, *markers, block)


def update_readme(readme, metrics_path, *, command: str | None = None) -> str:
    """Replace the results block of `readme` with the table of `metrics_path` (metrics.json).

    Returns:
        The new README text (also written, atomically).

    Raises:
        FileNotFoundError: README or metrics file missing.
        ValueError: markers missing, duplicated or out of order; metrics.json malformed.
    """
    return _update(
        readme, metrics_path, flag="metrics", markers=(START, END), load=read_metrics,
        render=lambda d, p, c: results_markdown(d, metrics_path=p, command=c),
        command=command, expected="malformed metrics.json (notebook 04 writes it)",
    )  # fmt: skip


def update_readme_study(readme, study_path, *, command: str | None = None) -> str:
    """Replace the study block of `readme` with noise_study.json's tables (notebook 07)."""
    from rbcore.study.report import read_study, study_markdown

    return _update(
        readme, study_path, flag="study", markers=(STUDY_START, STUDY_END), load=read_study,
        render=lambda d, p, c: study_markdown(d, study_path=p, command=c),
        command=command, expected="malformed noise_study.json (notebook 07 writes it)",
    )  # fmt: skip


def update_readme_week(readme, summary_path, *, command: str | None = None) -> str:
    """Replace the week block of `readme` with deployment_summary.json's (notebook 05)."""
    from rbcore.deploy.report import week_markdown
    from rbcore.files import read_json

    return _update(
        readme, summary_path, flag="week", markers=(WEEK_START, WEEK_END),
        load=lambda p: read_json(p, missing="run notebooks/05_deployment_week.ipynb first"),
        render=lambda d, p, c: week_markdown(d, summary_path=p, command=c),
        command=command, expected="missing key, expected notebook 05's summary",
    )  # fmt: skip


def update_readme_real_alerts(readme, report_path, *, command: str | None = None) -> str:
    """Replace the real-alert block of `readme` with real_alerts.json's (notebook 06)."""
    from rbcore.files import read_json
    from rbcore.ztf.compare import real_alerts_markdown

    return _update(
        readme, report_path, flag="real-alerts", markers=(REAL_START, REAL_END),
        load=lambda p: read_json(p, missing="run notebooks/06_real_alerts.ipynb first"),
        render=lambda d, p, c: real_alerts_markdown(d, report_path=p, command=c),
        command=command, expected="no held-out comparison, expected notebook 06's 'models'",
    )  # fmt: skip


def decomposition_block(doc: dict, *, path: str, command: str) -> str:
    """The long decomposition run's README block: how it was run, its tables, the claims."""
    from rbcore.study.decomp_report import decomposition_report, validate_decomposition

    validate_decomposition(doc, path)
    size = doc["sizing"]
    return "\n".join([
        f"`{doc['command']}` on {size['machine']['cpu_count']} CPU cores "
        f"({size['machine']['platform']}): {doc['seconds'] / 3600:.2f} h (estimated "
        f"{size['estimate_s']['total'] / 3600:.2f} h for a budget of {size['budget_h']} h); "
        f"training size {size['n_samples']:,} of {size['n_max']:,}; the residual network "
        f"for {doc['settings']['decomp_complex']['epochs']} epoch(s) with "
        f"{doc['settings']['decomp_complex'].get('optimizer', 'the paper code’s SGD')}, the talk's CNN for "
        f"{size['epochs_max']['simple']}.",
        "",
        decomposition_report(doc),
        "",
        f"Generated from `{path}` by `{command}`.",
    ])  # fmt: skip


def update_readme_decomposition(readme, path, *, command: str | None = None) -> str:
    """Replace the decomposition block of `readme` with the long run's JSON (benchmarks/)."""
    from rbcore.files import read_json

    return _update(
        readme, path, flag="decomposition", markers=(DECOMP_START, DECOMP_END),
        load=lambda p: read_json(p, missing="run benchmarks/decomposition.py first"),
        render=lambda d, p, c: decomposition_block(d, path=p, command=c),
        command=command, expected="expected benchmarks/decomposition.py's JSON",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m rbcore.evaluation.readme [--metrics|--study|--week|--real-alerts|--decomposition P]... --readme P`.

    Every block given is rewritten; with none of the others, the
    results block is rewritten from --metrics (default build/default/run/metrics.json).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", help="metrics.json (default build/default/run/metrics.json)")
    parser.add_argument("--study", help="noise_study.json: rewrite the study block")
    parser.add_argument("--week", help="deployment_summary.json: rewrite the week block")
    parser.add_argument("--real-alerts", help="real_alerts.json: rewrite the real-alert block")
    parser.add_argument(
        "--decomposition", help="benchmarks/decomposition.py's JSON: rewrite its block"
    )
    parser.add_argument("--readme", default="README.md")
    args = parser.parse_args(argv)
    blocks = (args.study, args.week, args.real_alerts, args.decomposition)
    if args.metrics is None and not any(blocks):
        args.metrics = "build/default/run/metrics.json"
    for path, update, what in (
        (args.metrics, update_readme, "results"),
        (args.study, update_readme_study, "study"),
        (args.week, update_readme_week, "week"),
        (args.real_alerts, update_readme_real_alerts, "real-alert"),
        (args.decomposition, update_readme_decomposition, "decomposition"),
    ):
        if path:
            update(args.readme, path)
            print(f"updated the {what} section of {args.readme} from {path}")


if __name__ == "__main__":
    main()
