"""Write the README's "Results" section from metrics.json (generated, never typed).

    python -m rbcore.evaluation.readme --metrics build/default/run/metrics.json --readme README.md

rewrites the text between `<!-- results:start -->` and `<!-- results:end -->` in the README
with the talk's table (Takahashi 2021, "Evaluation with actual test dataset") computed by
notebooks/04_evaluation.ipynb, each value with its bootstrap 95 % interval, and the commands
that reproduce it. Everything outside the markers is left as it is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rbcore.evaluation.table import DISPLAY_NAMES, read_metrics
from rbcore.files import write_text_atomic

START = "<!-- results:start -->"
END = "<!-- results:end -->"
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
    figures = ", ".join(f"[{name}](figures/04_{name}.png)" for name in FIGURES)
    lines += [
        "",
        f"Figures: {figures}.",
        "",
        f"Generated from `{metrics_path}` by `{command}`; the run itself is"
        " `python -m rbcore.notebooks --profile default` (notebook `04_evaluation`).",
    ]
    return "\n".join(lines)


def update_readme(readme, metrics_path, *, command: str | None = None) -> str:
    """Replace the block between the results markers of `readme` with the table of `metrics_path`.

    Returns:
        The new README text (also written, atomically).

    Raises:
        FileNotFoundError: README or metrics file missing.
        ValueError: markers missing, duplicated or out of order; metrics.json malformed.
    """
    readme = Path(readme)
    if not readme.exists():
        raise FileNotFoundError(f"{readme}: README not found")
    text = readme.read_text()
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"{readme}: expected one '{START}' followed by one '{END}' marker")
    metrics = read_metrics(metrics_path)
    command = command or (
        f"python -m rbcore.evaluation.readme --metrics {metrics_path} --readme {readme.as_posix()}"
    )
    block = results_markdown(metrics, metrics_path=str(metrics_path), command=command)
    head, rest = text.split(START)
    _, tail = rest.split(END)
    new = f"{head}{START}\n{block}\n{END}{tail}"
    write_text_atomic(readme, new)
    return new


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m rbcore.evaluation.readme --metrics PATH --readme PATH`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default="build/default/run/metrics.json")
    parser.add_argument("--readme", default="README.md")
    args = parser.parse_args(argv)
    update_readme(args.readme, args.metrics)
    print(f"updated the results section of {args.readme} from {args.metrics}")


if __name__ == "__main__":
    main()
