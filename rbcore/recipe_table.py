"""The recipe table of the README, rendered from `rbcore.recipes.RECIPES`.

`markdown_table` writes one column per recipe, each value with its source in brackets, then
the departures kept on purpose; `python -m rbcore.recipe_table --readme README.md` rewrites
the README's block between `<!-- recipes:begin -->` and `<!-- recipes:end -->`, and
tests/test_recipes.py checks that the README holds exactly this table.
"""

from __future__ import annotations

from rbcore.recipes import COMMON_DEPARTURES, RECIPES, Recipe

_ROWS = (
    ("treatment", "treatment"),
    ("network", "network"),
    ("labels of flagged samples", "labels"),
    ("extra label errors", "label_noise"),
    ("stage 1 folds", "fold_by"),
    ("stage 1 early stopping on", "stage1_validation"),
    ("stage 1 optimizer, lr, batch", "stage1_opt"),
    ("stage 1 epochs (patience)", "stage1_epochs"),
    ("optimizer", "optimizer"),
    ("learning rate", "learning_rate"),
    ("batch", "batch_size"),
    ("epochs (patience)", "epochs"),
    ("λ_ce, λ_auc, α (λ_vat)", "alpha"),
    ("loss weights", "loss_weights"),
    ("VAT space, ε, ξ", "vat_space"),
    ("flagged in the batch", "flagged_in_batch"),
    ("validation", "validation"),
)


def _cell(recipe: Recipe, key: str) -> str:
    t, s1 = recipe.train, recipe.stage1
    src = recipe.sources
    prof = "profile"
    if key in ("fold_by", "stage1_validation", "stage1_opt", "stage1_epochs"):
        if s1 is None:
            return "—"
        ss = s1.sources
        tr = s1.train
        if key == "fold_by":
            return f"{s1.fold_by}, seed {s1.fold_seed:#x} [{ss.get('fold_by', '')}]"
        if key == "stage1_validation":
            what = {"split": "10 % of the training folds", "all": "every sample"}[s1.validation]
            return f"{what} [{ss.get('validation', '')}]"
        if key == "stage1_opt":
            if "optimizer" not in tr:
                return prof
            return (f"{tr['optimizer']}, {tr['learning_rate']:g}, {tr['batch_size']} "
                    f"[{ss['optimizer']}; {ss['learning_rate']}; {ss['batch_size']}]")  # fmt: skip
        return (f"{tr['epochs']:,} ({tr['patience']}) [{ss['epochs']}; {ss['patience']}]"
                if "epochs" in tr else prof)  # fmt: skip
    if key == "label_noise":
        if recipe.label_noise is None:
            return "off"
        return f"×{recipe.label_noise:g}, seed {recipe.label_noise_seed} [{src['label_noise']}]"
    if key == "epochs":
        if "epochs" not in t:
            return prof
        return f"{t['epochs']:,} ({t['patience']}) [{src['epochs']}; {src['patience']}]"
    if key == "alpha":
        vals = [t.get(k) for k in ("lambda_ce", "lambda_auc", "alpha")]
        if None in vals:
            return f"profile, profile, {t['alpha']:g} [{src['alpha']}]"
        refs = "; ".join(dict.fromkeys(src[k] for k in ("lambda_ce", "lambda_auc", "alpha")))
        return f"{vals[0]:g}, {vals[1]:g}, {vals[2]:g} [{refs}]"
    if key == "vat_space":
        if "vat_space" not in t:
            return "normalized, profile"
        return f"{t['vat_space']}, {t['eps']:g}, {t['xi']:g} [{src['vat_space']}]"
    if key == "validation":
        if recipe.treatment == "all" and recipe.validation == "detectors":
            return f"held-out detectors [{src['validation']}]"
        what = {"each": "5:1:1 per detector", "mix": "5:1:1 per detector",
                "all": "75:25 split, early stopping on every sample"}[recipe.treatment]  # fmt: skip
        return f"{what} [{src['validation']}]"
    value = getattr(recipe, key, None) if key in ("treatment", "network", "labels") else t.get(key)
    if value is None:
        return prof if key in ("optimizer", "learning_rate", "batch_size") else "—"
    if isinstance(value, float):
        value = f"{value:g}"
    ref = src.get(key, "")
    return f"{value} [{ref}]" if ref else str(value)


def markdown_table() -> str:
    """The recipe table of the README: one column per recipe, then the departures."""
    names = list(RECIPES)
    lines = ["| | " + " | ".join(f"`{n}`" for n in names) + " |"]
    lines.append("|---" * (len(names) + 1) + "|")
    for title, key in _ROWS:
        lines.append(f"| {title} | " + " | ".join(_cell(RECIPES[n], key) for n in names) + " |")
    lines.append("")
    lines.append("Departures from the paper's code kept on purpose:")
    lines.append("")
    by_text = {d: ["every `paper_*` recipe"] for d in COMMON_DEPARTURES}
    for n in names:
        for d in RECIPES[n].departures:
            by_text.setdefault(d, []).append(f"`{n}`")
    lines += [f"- {', '.join(who)}: {d}." for d, who in by_text.items()]
    return "\n".join(lines) + "\n"


README_BEGIN, README_END = "<!-- recipes:begin -->\n", "<!-- recipes:end -->"


def write_readme(path) -> bool:
    """Rewrite the recipes block of the README at `path` from `markdown_table`.

    Returns:
        Whether the file changed. Raises ValueError when the block's markers are missing.
    """
    import re
    from pathlib import Path

    from rbcore.files import write_text_atomic

    path = Path(path)
    text = path.read_text()
    pattern = re.compile(re.escape(README_BEGIN) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{path}: no '{README_BEGIN.strip()}' ... '{README_END}' block")
    new = pattern.sub(lambda _: README_BEGIN + markdown_table() + README_END, text)
    if new != text:
        write_text_atomic(path, new)
    return new != text


def main(argv=None) -> None:
    """`python -m rbcore.recipes --readme README.md`: rewrite the README's recipe table."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--readme", default="README.md", help="the README to rewrite")
    args = parser.parse_args(argv)
    changed = write_readme(args.readme)
    print(f"{args.readme}: recipe table {'rewritten' if changed else 'already current'}")


__all__ = ["markdown_table", "write_readme"]


if __name__ == "__main__":
    main()
