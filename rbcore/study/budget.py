"""How long the decomposition takes at a size, from measured per-sample costs (issue 22).

`plan_seconds` adds up, for every (row, seed) model of the plan, its training samples over
the measured training throughput of its kind (the talk's CNN; the residual network with CE or
CE + ECH; the residual network with VAT, whose step costs the extra forward/backward passes
of the LDS), the validation and memorization passes after every epoch and the test-set
scoring over the measured inference throughput, plus one compilation per distinct loss, plus
the simulation of the study's test set. Epochs are the maximum (early stopping can only make
a run shorter), so the estimate is an upper bound at the measured throughputs.
`largest_size` picks the largest training size whose estimate fits a budget.
`measure_rates` (used by benchmarks/decomposition.py) measures the throughputs on this
machine.
"""

from __future__ import annotations

import time

import numpy as np

from rbcore.study.decomposition import DECOMP_ROWS

__all__ = ["model_kind", "plan_seconds", "largest_size", "measure_rates"]

KINDS = ("simple", "complex", "complex_vat")


def model_kind(row: str) -> str:
    """The kind of model: "simple", "complex" (CE or CE + ECH) or "complex_vat" (LDS on)."""
    spec = DECOMP_ROWS[row]
    if spec.network == "simple":
        return "simple"
    return "complex_vat" if spec.flagged == "unlabeled" else "complex"


def plan_seconds(plan, *, rates: dict, n_train: int, n_val: int, n_memo: int, n_test: int,
                 epochs: dict, n_detectors: int = 1) -> dict:  # fmt: skip
    """Estimated seconds of a decomposition plan (module docstring).

    Args:
        plan: [(row, seed)] (`rbcore.study.decomp_run.decomposition_plan`).
        rates: {"train_<kind>": training samples/s, "eval_<simple|complex>": scored
            samples/s, "compile_<kind>": s per distinct loss, "simulate": test candidates/s}.
        n_train, n_val, n_memo, n_test: samples per model trained, validated each epoch,
            evaluated for memorization each epoch, and in the test set.
        epochs: {"simple": max epochs, "complex": max epochs}.
        n_detectors: models of an `each` row (their compilation is shared; each costs
            rates["model_overhead"] s besides its samples: building, validating, saving).

    Returns:
        {"total", "simulate", "by_row": {row: s}}.
    """
    by_row, compiled = {}, set()
    for row, _ in plan:
        kind = model_kind(row)
        net = "simple" if kind == "simple" else "complex"
        e = int(epochs[net])
        s = e * n_train / rates[f"train_{kind}"]
        s += (e * (n_val + n_memo) + n_test) / rates[f"eval_{net}"]
        key = (kind, tuple(sorted(DECOMP_ROWS[row].loss.items())))
        if key not in compiled:
            compiled.add(key)
            s += rates[f"compile_{kind}"]
        n_models = n_detectors if DECOMP_ROWS[row].treatment == "each" else 1
        s += n_models * rates.get("model_overhead", 0.0)
        by_row[row] = by_row.get(row, 0.0) + s
    simulate = n_test / rates["simulate"]
    return {"total": float(sum(by_row.values()) + simulate), "simulate": float(simulate),
            "by_row": by_row}  # fmt: skip


def largest_size(budget_s: float, n_max: int, *, step: int = 1000, **kwargs) -> int | None:
    """The largest training size (a multiple of `step`, at most `n_max`) whose
    `plan_seconds(n_train=0.85 n, n_val=0.15 n, ...)` fits `budget_s`; None if none does.

    kwargs: plan_seconds' other arguments (plan, rates, n_memo, n_test, epochs).
    """
    best = None
    for n in range(step, int(n_max) + 1, step):
        est = plan_seconds(n_train=int(n * 6 / 7), n_val=int(n / 7), **kwargs)["total"]
        if est > budget_s:
            break
        best = n
    return best


def _fit_rate(images, labels, config, n: int) -> tuple[float, float]:
    """(samples/s of the second epoch, seconds of the first minus the second) of a short fit."""
    import dataclasses

    from rbcore.train.loop import fit

    labeled = np.ones(n, bool)
    if config.alpha > 0:
        labeled[::20] = False  # ~5 % unlabeled, as flagged samples
    cfg = dataclasses.replace(config, epochs=2, patience=0)
    _, history = fit(images[:n], labels[:n], labeled_mask=labeled, config=cfg, progress=False)
    first, second = history[0]["train_time_s"], history[1]["train_time_s"]
    return float(history[1]["samples_per_s"]), float(max(0.0, first - second))


def measure_rates(images, labels, *, simple, complex_overrides: dict, n: int = 1024,
                  survey=None, log=print) -> dict:  # fmt: skip
    """The throughputs of `plan_seconds`, measured here on `n` of the given images.

    Training: two epochs of a short fit per kind; the second epoch's samples per second, the
    first epoch's extra time as the compilation. Inference: `predict_logits` on 2n images,
    the second of two calls (the first compiles). Simulation: 2,000 test candidates (`simulate_candidates`).
    """
    from rbcore.inference import predict_logits
    from rbcore.model import build_model
    from rbcore.study.decomposition import row_config

    x = np.asarray(images[: 2 * n], np.float32)
    y = np.asarray(labels[: 2 * n])
    rates = {}
    for kind, row in (("simple", "simple_all"), ("complex", "complex_all"),
                      ("complex_vat", "complex_unlabeled_vat")):  # fmt: skip
        config = row_config(row, simple=simple, complex_overrides=complex_overrides, seed=0)
        rates[f"train_{kind}"], rates[f"compile_{kind}"] = _fit_rate(x, y, config, n)
        log(f"{kind}: {rates[f'train_{kind}']:.1f} training samples/s, compile "
            f"~{rates[f'compile_{kind}']:.0f} s")  # fmt: skip
        if kind != "complex_vat":
            model = build_model(config.model_config, seed=0)
            predict_logits(model, x)  # warm-up: compiles the batch shapes of the timed call
            t0 = time.perf_counter()
            predict_logits(model, x)
            rates[f"eval_{kind}"] = x.shape[0] / (time.perf_counter() - t0)
            log(f"{kind}: {rates[f'eval_{kind}']:.0f} scored samples/s")
    import dataclasses
    import tempfile

    from rbcore.train.loop import fit

    # The fixed cost of one more model of a compiled kind (an `each` row's detectors): one
    # step's batch, one epoch, validated and checkpointed.
    config = dataclasses.replace(simple, epochs=1, patience=0, alpha=0.0)
    b = config.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fit(x[:b], y[:b], val_images=x[b : 2 * b], val_labels=y[b : 2 * b], config=config,
            out_dir=tmp, progress=False)  # fmt: skip
        rates["model_overhead"] = time.perf_counter() - t0
    log(f"one more talk-CNN model: {rates['model_overhead']:.1f} s besides its samples")
    from rbcore.simulation.survey import simulate_candidates

    t0 = time.perf_counter()
    simulate_candidates(2000, kind="test", seed=0, config=survey, n_threads=2)
    rates["simulate"] = 2000 / (time.perf_counter() - t0)
    log(f"simulation: {rates['simulate']:.0f} candidates/s")
    return rates
