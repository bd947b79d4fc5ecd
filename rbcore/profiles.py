"""Every profile's numbers in one table: how big each step of the study runs.

A profile shrinks or grows the work, as big_vision's `runlocal` does: `smoke` is CI (minutes
for all notebooks on two CPU cores), `default` this 2-core machine (under an hour for all),
`paper` the full scale of Takahashi et al. (2022), meant for a GPU. Each notebook reads its
step's settings with `settings(profile, step, **overrides)`, where an override of `None`
means "the profile's value" (the convention of every notebook's `parameters` cell).

A setting that a profile leaves out takes the default of the step's config dataclass
(`TrainConfig`, `DeployConfig`), where its source is commented.
"""

from __future__ import annotations

PROFILE_NAMES = ("smoke", "default", "paper")
STEPS = (
    "survey", "mislabel", "train", "vat_sweep", "evaluation", "deploy", "real_alerts", "study"
)  # fmt: skip

# Notebook 07 in the default profile, sized so that `make run` stays under 60 min on two cores.
# The default run of 2026-12-01 (one idle machine) took 71 min, 30 of them in notebook 07:
# ablation on 15,000 samples 1,007 s (five VAT models ~160 s each, five supervised ~30 s),
# scoring its 10 models on the 210,300 test candidates 222 s, the sweep 536 s (8,000 samples,
# 6 epochs, 50,000 test bogus: ~107 s per rate, 65 of them the two_stage model). Here: the
# ablation on 10,000 samples, scored on every test real and 100,000 bogus (FPRs of ~1e-3 still
# rest on ~100 bogus), the sweep on 6,000 samples for 4 epochs (the calibration protocol's
# epochs, benchmarks/CALIBRATION.md) against 30,000 bogus: ~17 min idle, where the budget
# left by notebooks 01-06 (~40 min) allows. Fewer samples before fewer seeds or noise rates,
# as issue 13 asks.
DEFAULT_ABLATION_SAMPLES = 10_000
DEFAULT_ABLATION_TEST_BOGUS = 100_000
DEFAULT_SWEEP_N_TRAIN = 6_000

# Notebook 06's ZTF-like survey (issue items 2-3) in the default profile, sized from
# throughput measured on the 2 shared cores (load ~3): simulation ~1,400 candidates/s (35x35
# stamps resampled to 29x29), supervised training ~1,600 samples/s, VADA (128 labeled + 128
# real unlabeled per step) ~230 labeled samples/s. 20,000 candidates (16,000 after the
# validation detectors are held out), 3 epochs per model: ~15 s + ~30 s + ~210 s, about 4
# min under that load (the issue allows ~5 min on 2 idle cores).
DEFAULT_ZTF_N_TRAIN = 20_000
# VADA's LDS on the real alerts (Shu et al. 2018): alpha 1 and eps 0.1 as notebook 03's VAT
# defaults (Miyato et al. 2018; the paper's code), not tuned on alerts; half of the
# developer alerts (by objectId) adapt, the other half judge; seed of that split.
ZTF_ADAPT = dict(ztf_alpha=1.0, ztf_eps=0.1, adapt_fraction=0.5, split_seed=0)
# braai's judgement of the ZTF-like survey (issue 23, notebook 06 section 7): candidates on
# braai's 63x63 grid. 10,000 (~3,300 bogus and ~6,700 reals at the training mix: binomial
# errors < 1 % on the FPR): ~15 s simulated, ~60 s scored on 2 shared cores (measured: 3,000
# in 4 s + 19 s); smoke 600 (CI), paper 200,000.
BRAAI_N_SIM = {"smoke": 600, "default": 10_000, "paper": 200_000}

# Notebook 07's decomposition (issue 22, rbcore.study.decomposition): decomp_samples training
# samples (None: all of notebook 01's) split 6:1 within each detector; decomp_n_seeds seeds
# for the talk-CNN rows and decomp_complex_seeds for the residual-network rows (a row at one
# seed takes the pooled seed variance, rbcore.study.steps), the A/A row at twice
# decomp_n_seeds; decomp_complex: the residual network's TrainConfig over PAPER_STAGE2;
# decomp_test_real/bogus: the study's own test set (issue 22: >= 3,000 reals, so the TPR 0.9
# threshold rests on ~300 reals); decomp_memo_right: right labels sampled for the
# memorization curves (every wrong one is used); decomp_n_boot: paired bootstrap resamples;
# decomp_rows: the rows trained (None: every row of DECOMP_ROWS); decomp_simple_batch: the
# talk-CNN rows' batch (64: the paper README's Simple runs, README:94; one detector's share
# must hold a batch for `each`); decomp_each_seeds: seeds of the `each` rows (one model per
# detector and seed).
# smoke: wiring only, on 300 samples for 1 epoch and a test set scored in seconds. Each
# distinct residual-network loss costs its own XLA compilation of the training step; measured
# 2026-12-06 on the 2 shared cores (lighter load): the decomposition with the talk-CNN rows
# and the CE residual-network rows 31 s, complex_unlabeled_vat +37 s, complex_all_ech +16 s,
# complex_unlabeled_vat_named +31 s (under a heavier load the compilations took 44-101 s).
# Smoke keeps the paper's method (complex_unlabeled_vat) and leaves out complex_all_ech and
# complex_unlabeled_vat_named, ~70 s in all, near the ~60 s CI allows (their configurations
# are tested in tests/test_study_decomposition.py, their losses in
# tests/test_train_paper_losses.py).
SMOKE_DECOMPOSITION = dict(
    decomp_rows=("talk_current", "simple_all", "simple_oracle", "complex_all",
                 "complex_removed", "complex_unlabeled_vat", "complex_oracle"),
    decomp_simple_batch=16, decomp_each_seeds=1,
    decomp_samples=300, decomp_n_seeds=2, decomp_complex_seeds=1, decomp_epochs_simple=1,
    decomp_complex=dict(epochs=1, batch_size=32, eval_batch_size=256),
    decomp_test_real=40, decomp_test_bogus=400, decomp_memo_right=60, decomp_n_boot=50,
)  # fmt: skip
# default: the talk-CNN rows simple_all and simple_oracle (the step to the oracle, and the A/A
# check) on 10,000 samples with notebook 03's epochs at 3 seeds, and a test set of 3,000 reals
# and 50,000 bogus (an FPR of 1e-3 rests on ~50 bogus). With talk_current too (84 models per
# seed) the decomposition was estimated at ~14 min on 2 idle cores and ~24 min on this
# session's shared cores (rbcore.study.budget.plan_seconds with the throughputs
# benchmarks/decomposition.py measured on 2026-12-06, a talk_current model's fixed cost ~4.5 s
# measured there; the idle figure with the CNN's idle rates of benchmarks/README.md), more than
# `make run` (measured 50 min before it) has left of its 60; talk_current alone is about half
# of that (84 x 4.5 s of fixed cost plus one seed's training), so it runs in
# benchmarks/decomposition.py and the paper profile, and these two rows are estimated at ~7
# min idle. Not run in the default profile yet (2026-12-06). The residual-network rows cost
# ~48x (CE) and ~79x (VAT) the CNN's training per sample here: they run in
# benchmarks/decomposition.py.
DEFAULT_DECOMPOSITION = dict(
    decomp_rows=("simple_all", "simple_oracle"),
    decomp_simple_batch=64, decomp_each_seeds=1,
    decomp_samples=10_000, decomp_n_seeds=3, decomp_complex_seeds=1, decomp_epochs_simple=None,
    decomp_complex=dict(epochs=2, patience=10),
    decomp_test_real=3_000, decomp_test_bogus=50_000, decomp_memo_right=2_000,
    decomp_n_boot=500,
)  # fmt: skip
# paper: every row at full size and 5 seeds, the code's 1000 epochs and patience 10
# (real_bogus.py:89, :106), a test set of 10,000 reals and the talk's 1,050,000 bogus.
PAPER_DECOMPOSITION = dict(
    decomp_rows=None,
    decomp_simple_batch=64, decomp_each_seeds=5,
    decomp_samples=None, decomp_n_seeds=5, decomp_complex_seeds=5, decomp_epochs_simple=None,
    decomp_complex=dict(epochs=1000, patience=10),
    decomp_test_real=10_000, decomp_test_bogus=1_050_000, decomp_memo_right=20_000,
    decomp_n_boot=1000,
)  # fmt: skip

PROFILES = {
    "smoke": {
        # Notebook 01: CI data in seconds (4 detectors, 30 real + 6,000 bogus test candidates).
        "survey": dict(n_train=3_000, n_detectors=4, n_test_real=30, n_test_bogus=6_000),
        # Notebook 02: 2 folds so that CI takes ~1 minute (the paper code: 5).
        "mislabel": dict(n_folds=2, epochs=1),
        # Notebook 03: two models on 3,000 samples in about a minute on two CPU cores.
        "train": dict(epochs=4, batch_size=64, unlabeled_batch_size=64, patience=2),
        "vat_sweep": dict(
            sweep_eps=(0.1, 1.0), sweep_alpha=(1.0,), sweep_samples=1_000, sweep_epochs=1
        ),  # fmt: skip
        # Notebook 04: bootstrap resamples of the talk's table (enough to exercise the code).
        "evaluation": dict(n_boot=200),
        # Notebook 05: a few thousand candidates, < 1 min with compilation.
        "deploy": dict(candidates_per_night=700, chunk_size=512, batch_size=256, boost=1000.0),
        # Notebook 06: bootstrap resamples of the AUC interval, triplets per gallery.
        # ZTF-like survey (issue items 2-3): 3,000 simulated candidates, one epoch per model,
        # ~30 s on 2 cores with compilation (sim ~1,400 candidates/s, measured 2 shared cores).
        "real_alerts": dict(
            n_boot=100, n_gallery=4, ztf_n_train=3_000, ztf_epochs=1, **ZTF_ADAPT
        ),  # fmt: skip
        # Notebook 07 (issue 13): every row and two training seeds on 800 samples for 2 epochs,
        # two noise rates on 600 samples, so that CI runs every step in about a minute (the
        # reuse of notebook 03's models, which needs its full split and epochs, is unit-tested).
        "study": dict(
            n_seeds=2,
            ablation_samples=800,
            ablation_test_bogus=None,
            epochs=2,
            sweep_per_row=False,
            sweep_multipliers=(0.0, 4.0),
            sweep_n_train=600,
            sweep_n_detectors=4,
            sweep_n_folds=2,
            sweep_epochs=1,
            sweep_test_bogus=3_000,
            n_boot=200,
            sweep_n_boot=100,
            **SMOKE_DECOMPOSITION,
        ),  # fmt: skip
    },
    "default": {
        # One machine in ~30 min: 120,000 training samples on Tomo-e's 84 detectors.
        "survey": dict(n_train=120_000, n_detectors=84, n_test_real=300, n_test_bogus=210_000),
        # n_folds 5 is the paper's code. One epoch per fold model, so the 6 models on 120k
        # samples fit ~10 minutes on 2 CPU cores (measured 9.4 min, CPU shared); two epochs
        # took 18 min and flagged with the same precision (0.063 vs 0.062 against the truth)
        # at a lower recall (0.59 vs 0.66), measured on the default simulated set, seed 0.
        "mislabel": dict(n_folds=5, epochs=1),
        # 6 epochs: the training under which the survey was calibrated
        # (benchmarks/CALIBRATION.md), so the "Current" baseline is the calibrated one.
        "train": dict(epochs=6, batch_size=128, unlabeled_batch_size=128, patience=2),
        # eps around the paper code's 0.1; alpha around Miyato's 1; one epoch on 15,000
        # samples per point of the grid.
        "vat_sweep": dict(
            sweep_eps=(0.03, 0.1, 0.3), sweep_alpha=(0.3, 1.0), sweep_samples=15_000, sweep_epochs=1
        ),  # fmt: skip
        # 1000 resamples give percentile intervals stable to ~1e-3 of their width.
        "evaluation": dict(n_boot=1000),
        # ~1 M candidates in a few minutes on 2 cores; supernovae and variables boosted 300x.
        "deploy": dict(candidates_per_night=150_000, boost=300.0),
        "real_alerts": dict(
            n_boot=1000, n_gallery=8, ztf_n_train=DEFAULT_ZTF_N_TRAIN, ztf_epochs=3, **ZTF_ADAPT
        ),  # fmt: skip
        # Notebook 07 (issue 13) in ~17 min on 2 idle cores (DEFAULT_* above); two training
        # seeds (the minimum for default), three folds for the sweep's flags.
        "study": dict(
            n_seeds=2,
            ablation_samples=DEFAULT_ABLATION_SAMPLES,
            ablation_test_bogus=DEFAULT_ABLATION_TEST_BOGUS,
            epochs=None,
            sweep_per_row=False,
            sweep_multipliers=(0.0, 0.5, 1.0, 2.0, 4.0),
            sweep_n_train=DEFAULT_SWEEP_N_TRAIN,
            sweep_n_detectors=84,
            sweep_n_folds=3,
            sweep_epochs=4,
            sweep_test_bogus=30_000,
            n_boot=1000,
            sweep_n_boot=200,
            **DEFAULT_DECOMPOSITION,
        ),  # fmt: skip
    },
    "paper": {
        # The scale of Takahashi et al. 2022: millions of training samples, a large test set.
        "survey": dict(
            n_train=2_000_000, n_detectors=84, n_test_real=1_500, n_test_bogus=1_050_000
        ),  # fmt: skip
        # The paper's code: up to 1000 epochs with early stopping, patience 10
        # (src/real_bogus.py:89, :106, :799-800), each fold model trained to convergence.
        "mislabel": dict(n_folds=5, epochs=1000, patience=10),
        # Millions of samples on a GPU, stopped early on the validation AUC.
        "train": dict(epochs=30, batch_size=128, unlabeled_batch_size=128, patience=5),
        "vat_sweep": dict(
            sweep_eps=(0.03, 0.1, 0.3, 1.0),
            sweep_alpha=(0.3, 1.0, 3.0),
            sweep_samples=None,
            sweep_epochs=3,
        ),  # fmt: skip
        "evaluation": dict(n_boot=1000),
        # The talk's full week (57.4 M, DeployConfig's default) at natural rates.
        "deploy": dict(boost=1.0),
        # The ZTF-like survey at the survey's full training size, trained as notebook 03's.
        "real_alerts": dict(
            n_boot=2000, n_gallery=12, ztf_n_train=2_000_000, ztf_epochs=30, **ZTF_ADAPT
        ),  # fmt: skip
        # The full study of issue 13: every row at full size with its own eps/alpha sweep,
        # 5 training seeds, the five noise rates at the full training size.
        "study": dict(
            n_seeds=5,
            ablation_samples=None,
            ablation_test_bogus=None,
            epochs=None,
            sweep_per_row=True,
            sweep_multipliers=(0.0, 0.5, 1.0, 2.0, 4.0),
            sweep_n_train=None,
            sweep_n_detectors=None,
            sweep_n_folds=None,
            sweep_epochs=None,
            sweep_test_bogus=None,
            n_boot=1000,
            sweep_n_boot=1000,
            **PAPER_DECOMPOSITION,
        ),  # fmt: skip
    },
}
for _name, _n in BRAAI_N_SIM.items():  # added to each profile's "real_alerts" step (issue 23)
    PROFILES[_name]["real_alerts"]["braai_n_sim"] = _n


def settings(profile: str, step: str, **overrides) -> dict:
    """The settings of one step of the study under `profile`, with overrides.

    Args:
        profile: "smoke", "default" or "paper".
        step: one of `STEPS`.
        **overrides: values that replace the profile's; `None` keeps the profile's value.

    Returns:
        A new dict: the profile's settings of `step` updated with the non-None overrides.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILE_NAMES}")
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; expected one of {STEPS}")
    return {**PROFILES[profile][step], **{k: v for k, v in overrides.items() if v is not None}}
