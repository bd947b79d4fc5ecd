"""Named recipes: the talk's configuration and the paper's, each field with where it comes from.

A recipe is a whole training protocol: the data treatment (`each`: one model per detector,
`mix`: one average detector's worth drawn from all detectors, `all`: pooled;
`rbcore.train.treatments`), the handling of the labels that stage 1 flags (`all` labels kept,
`removed`, `unlabeled` for VAT, `pseudo`: relabelled), optional extra label errors
(`label_noise`, `rbcore.mislabel.noise`), the stage-1 settings (folds and fold models,
`rbcore.mislabel.folds`) and the `TrainConfig` overrides of stage 2. Every value carries its
source: `rb:N` is line N of src/real_bogus.py, `README:N` line N of README.md, both in the
paper's code (github.com/ichiro-takahashi/tomoe-realbogus, commit 0aeb3ee); "ours" marks our
choices, "talk" the talk (Takahashi 2021). `talk_current` is what notebooks 02 and 03 do by
default. `rbcore.recipe_table` renders the table that the README shows (a test keeps them
equal).

Profiles size the recipes (`rbcore.profiles`): under `paper` a recipe runs at the code's
values; under `smoke` and `default` its epochs are capped at the profile's (step "train" for
stage 2, "mislabel" for stage 1), so CI and a laptop finish.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from rbcore.mislabel.folds import PAPER_FOLD_SEED
from rbcore.train.config import TrainConfig

TREATMENTS = ("each", "mix", "all")
LABEL_MODES = ("all", "removed", "unlabeled", "pseudo")
VALIDATIONS = ("detectors", "as_coded")


@dataclass(frozen=True)
class Stage1:
    """Stage 1: the out-of-fold fold models whose disagreements flag the wrong labels."""

    fold_by: str  # `rbcore.mislabel.folds.assign_folds` mode
    fold_seed: int  # the folds' random state
    validation: str  # what early stopping watches (`rbcore.mislabel.folds.cnn_trainer`)
    train: dict = field(default_factory=dict)  # TrainConfig overrides of the fold models
    sources: dict = field(default_factory=dict)  # field -> source


@dataclass(frozen=True)
class Recipe:
    """One training protocol (see the module docstring); `sources` cites every field."""

    name: str
    summary: str
    treatment: str  # "each" | "mix" | "all"
    labels: str  # what happens to the flagged samples: "all" | "removed" | "unlabeled" | "pseudo"
    network: str = "RBCNN"  # TrainConfig.architecture: "RBCNN" (talk) or "PaperResNet"
    validation: str = "detectors"  # `all` treatment: held-out detectors, or the code's split
    split_seed: int = 0  # seed of the 5:1:1 / 75:25 splits (the README's runs: seed=0)
    label_noise: float | None = None  # make_label_error's factor; None = off (the code's -1)
    label_noise_seed: int = 42  # rb:104
    stage1: Stage1 | None = None  # None: no flags needed (labels "all", no label_noise)
    train: dict = field(default_factory=dict)  # TrainConfig overrides of stage 2
    sources: dict = field(default_factory=dict)  # field -> source
    departures: tuple = ()  # what we keep different from the paper's code, and why

    def __post_init__(self):
        if self.treatment not in TREATMENTS:
            raise ValueError(f"{self.name}: treatment must be one of {TREATMENTS}")
        if self.labels not in LABEL_MODES:
            raise ValueError(f"{self.name}: labels must be one of {LABEL_MODES}")
        if self.validation not in VALIDATIONS:
            raise ValueError(f"{self.name}: validation must be one of {VALIDATIONS}")
        if self.stage1 is None and (self.labels != "all" or self.label_noise is not None):
            raise ValueError(f"{self.name}: labels {self.labels!r} / label_noise need a stage 1")
        if self.label_noise is not None and self.label_noise <= 1.0:
            raise ValueError(f"{self.name}: label_noise is a factor > 1 (1 = no extra errors)")
        if self.treatment != "all" and self.labels != "all":
            # The code's each/mix loaders take no flags (rb:995-1000 vs rb:1001-1002).
            raise ValueError(f"{self.name}: treatments each/mix use all labels, as the code")

    @property
    def needs_flags(self) -> bool:
        return self.labels != "all" or self.label_noise is not None


# --------------------------------------------------------------------------- the table

_PAPER_STAGE1 = Stage1(
    fold_by="detector_stratified",
    fold_seed=PAPER_FOLD_SEED,
    validation="all",
    train=dict(
        optimizer="sgd",
        learning_rate=1e-3,
        batch_size=256,
        epochs=1000,
        patience=10,
        early_stopping_metric="loss",
    ),  # fmt: skip
    sources=dict(
        fold_by="rb:439-441, rb:451-452",
        fold_seed="rb:119, rb:749",
        validation="rb:474-477 with rb:510-511",
        optimizer="rb:775",
        learning_rate="rb:80",
        batch_size="rb:61",
        epochs="rb:89",
        patience="rb:106",
        early_stopping_metric="rb:799",
        network="rb:774 (the stage-2 model_cfg)",
        n_folds="rb:112",
        flag_rule="rb:868-871",
    ),  # fmt: skip
)

_SIMPLE = dict(
    optimizer="adadelta", learning_rate=1e-3, batch_size=64, epochs=1_000_000, patience=10,
    early_stopping_metric="loss", alpha=0.0, lambda_ce=1.0, lambda_auc=0.0, dropout_rate=0.3,
)  # fmt: skip
_SIMPLE_SOURCES = dict(
    optimizer="README:94", learning_rate="rb:80", batch_size="README:94",
    epochs="README:96", patience="rb:106", early_stopping_metric="rb:1012 (Keras default)",
    alpha="README:93", lambda_ce="README:93", lambda_auc="README:93", dropout_rate="rb:73",
    network="README:95", labels="README:92 (selection_mode=2)", split_seed="README:92",
)  # fmt: skip

_COMPLEX = dict(
    optimizer="sgd", learning_rate=1e-3, batch_size=256, epochs=1000, patience=10,
    early_stopping_metric="loss", alpha=0.1, lambda_ce=0.1, lambda_auc=1.0,
    loss_weights="as_coded", vat_space="raw", eps=0.1, xi=1.0, flagged_in_batch=True,
    projection_shortcut="as_coded",
)  # fmt: skip
_COMPLEX_SOURCES = dict(
    optimizer="rb:79", learning_rate="rb:80", batch_size="rb:61", epochs="rb:89",
    patience="rb:106", early_stopping_metric="rb:1012 (Keras default)", alpha="rb:91",
    lambda_ce="rb:92", lambda_auc="rb:90", loss_weights="rb:967-980",
    vat_space="model2.py (see TrainConfig.vat_space)", eps="model2.py (TrainConfig.eps)",
    xi="model2.py (TrainConfig.xi)", flagged_in_batch="rb:562-567",
    projection_shortcut="block.py (TrainConfig.projection_shortcut)", network="README:166",
    validation="rb:290-292, rb:311-314 with rb:510-511", split_seed="README:164",
)  # fmt: skip

# Departures of every paper_* recipe from the paper's code, kept on purpose.
COMMON_DEPARTURES = (
    "one logit instead of the code's two: the softmax of two logits is the sigmoid of their "
    "difference, and the flag rule argmax != label (rb:868-871) is logit >= 0 != label",
    "early stopping watches the validation cross-entropy of the labeled samples; Keras' "
    "val_loss (rb:1012) is the whole weighted loss (CE, ECH, VAT) with flagged samples "
    "labelled -1: the same epochs are chosen where CE dominates, not in general",
    "every fold model starts from the training seed; the code reseeds TF with 0x5eed + fold "
    "(rb:753). TF's and JAX's random streams differ anyway, so no run repeats the code's "
    "numbers bit for bit",
)
_MIX_DRAW = (
    "the mix subsets are drawn with numpy's seeded generator (seed = detector id, as rb:198), "
    "not TF's shuffle stream: the same sizes, other samples"
)
_README_LAMBDAS = (
    "the README leaves lambda_ce, lambda_ech and lambda_lds as shell variables (README:165): "
    "the code's defaults here (rb:90-92)"
)

RECIPES: dict[str, Recipe] = {}


def _add(recipe: Recipe) -> None:
    RECIPES[recipe.name] = recipe


_add(
    Recipe(
        name="talk_current",
        summary="the talk: the CNN, flags unlabeled for VAT (notebook 03 also trains Current)",
        treatment="all",
        labels="unlabeled",
        stage1=Stage1(
            fold_by="detector_stratified",
            fold_seed=PAPER_FOLD_SEED,
            validation="split",
            sources=dict(
                fold_by="rb:439-441, rb:451-452",
                fold_seed="rb:119",
                validation="ours",
                network="talk",
                n_folds="rb:112",
                flag_rule="rb:868-871",
            ),  # fmt: skip
        ),
        train=dict(alpha=1.0),
        sources=dict(
            network="talk",
            labels="talk",
            alpha="Miyato (notebook 03 sweeps it)",
            validation="ours (issue 4)",
            split_seed="ours",
        ),  # fmt: skip
        departures=(
            "Adam, the profile's batch and epochs, ours (see TrainConfig) in both stages: the "
            "talk gives no training settings",
            "validation on held-out whole detectors, so that no detector's artifacts are both "
            "trained on and validated on (issue 4)",
        ),
    )
)
for _t, _line in (("each", "README:81-98"), ("mix", "README:100-116"), ("all", "README:118-133")):
    _add(
        Recipe(
            name=f"paper_simple_{_t}",
            summary=f"the README's Simple-{_t}: the simple CNN, all labels, Adadelta",
            treatment=_t,
            labels="all",
            validation="as_coded",
            train=dict(_SIMPLE),
            sources=dict(
                _SIMPLE_SOURCES,
                treatment=_line,
                validation={
                    "each": "rb:143-166, rb:237-266",
                    "mix": "rb:169-234",
                    "all": "rb:290-292, rb:348-351 with rb:510-511",
                }[_t],
            ),  # fmt: skip
            departures=(_MIX_DRAW,) if _t == "mix" else (),
        )
    )
for _labels, _alpha, _line in (
    ("all", 0.1, "README:158 (selection_mode=2)"),
    ("removed", 0.0, "README:157 (selection_mode=0), lambda_vat=0"),
    ("unlabeled", 0.1, "README:157 (selection_mode=0), rb:562-567"),
    ("pseudo", 0.1, "rb:100, rb:315-323, rb:541-547 (label_mode='pseudo')"),
):
    _add(
        Recipe(
            name=f"paper_complex_{_labels}",
            summary=f"the README's Complex run, flagged labels {_labels}",
            treatment="all",
            labels=_labels,
            network="PaperResNet",
            validation="as_coded",
            stage1=None if _labels == "all" else _PAPER_STAGE1,
            train=dict(_COMPLEX, alpha=_alpha),
            sources=dict(
                _COMPLEX_SOURCES,
                labels=_line,
                treatment="rb:1001-1002",
                alpha="rb:91" if _alpha else "README:165 (lambda_lds=0)",
            ),  # fmt: skip
            departures=(_README_LAMBDAS,),
        )
    )
_add(
    dataclasses.replace(
        RECIPES["paper_complex_unlabeled"],
        name="paper_complex_unlabeled_noise2",
        summary="paper_complex_unlabeled with twice the label errors (make_label_error)",
        label_noise=2.0,
        sources=dict(
            RECIPES["paper_complex_unlabeled"].sources,
            label_noise="ours: the code's option (rb:103, rb:368-405) at factor 2",
            label_noise_seed="rb:104",
        ),  # fmt: skip
        departures=RECIPES["paper_complex_unlabeled"].departures
        + (
            "the error fraction per score bin comes from the simulator's truth over each bin "
            "(the code reads an inspected table, rb:57, rb:371)",
            "stage 2 trains on the noisy labels throughout; the code's selection_mode=0 path "
            "reads the original labels of the unflagged samples (rb:300-314), so its extra "
            "errors reach only the flags",
        ),
    )
)


def get(name: str) -> Recipe:
    """The recipe called `name`; a clear error for an unknown one."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; expected one of {sorted(RECIPES)}")
    return RECIPES[name]


# --------------------------------------------------------------------------- configs


def _capped(values: dict, cap) -> dict:
    """`values` with epochs capped at `cap` (None: no cap), patience kept."""
    out = dict(values)
    if cap is not None and "epochs" in out:
        out["epochs"] = min(int(out["epochs"]), int(cap))
    return out


def _config(overrides: dict, network: str, recipe: str) -> TrainConfig:
    """A TrainConfig from overrides, with a clear error for fields this checkout lacks."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = dict(overrides)
    if network != "RBCNN" or "architecture" in fields:
        values.setdefault("architecture", network)  # an override (a test's) wins
    missing = sorted(set(values) - fields)
    if missing:
        raise ValueError(
            f"recipe {recipe!r} needs TrainConfig fields {missing}, which this checkout "
            "lacks (issue 21: the residual network and the paper's losses)"
        )
    return TrainConfig(**values)


def stage2_config(name: str, profile: str, *, seed: int = 0, **overrides) -> TrainConfig:
    """The stage-2 `TrainConfig` of a recipe under a profile.

    The profile's step "train" gives the base (batch, epochs, patience); the recipe's
    overrides replace it, with epochs capped at the profile's except under `paper`; the
    keyword `overrides` (None ignored) replace both (e.g. a test's tiny batch).
    """
    from rbcore.profiles import settings

    recipe = get(name)
    base = settings(profile, "train")
    cap = None if profile == "paper" else base["epochs"]
    values = {**base, **_capped(recipe.train, cap), "seed": int(seed)}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _config(values, recipe.network, name)


def stage1_settings(
    name: str, profile: str, *, n_folds=None, epochs=None, seed: int = 0, **overrides
) -> dict:
    """The stage-1 settings of a recipe under a profile.

    Returns:
        dict n_folds, fold_by, fold_seed, validation and config: the fold models' supervised
        TrainConfig, built from the profile's notebook-02 settings
        (`rbcore.mislabel.profile_settings`), then the recipe's stage-1 values with epochs
        capped at the profile's "mislabel" epochs (not under `paper`, not when `epochs` is
        given), then the network fields of stage 2 (the code builds the fold models from the
        same model_cfg, rb:774), then `overrides` (None ignored).
    """
    from rbcore.mislabel.folds import profile_settings

    recipe = get(name)
    stage = recipe.stage1 or RECIPES["talk_current"].stage1
    k, base = profile_settings(profile, n_folds=n_folds, epochs=epochs, seed=seed)
    cap = None if profile == "paper" and epochs is None else base.epochs
    values = {**base.to_dict(), **_capped(stage.train, cap), **recipe_model_fields(recipe)}
    values.pop("architecture", None)  # the recipe's network, unless overridden
    values.update({key: v for key, v in overrides.items() if v is not None})
    values["class_weight"] = tuple(values["class_weight"])
    config = _config(values, recipe.network, name)
    return dict(
        n_folds=int(k),
        fold_by=stage.fold_by,
        fold_seed=int(stage.fold_seed),
        validation=stage.validation,
        config=dataclasses.replace(config, alpha=0.0),
    )


def recipe_model_fields(recipe: Recipe) -> dict:
    """The stage-2 overrides that describe the network (kept by the fold models, rb:774)."""
    return {k: v for k, v in recipe.train.items() if k in ("dropout_rate", "projection_shortcut")}


__all__ = [
    "COMMON_DEPARTURES",
    "LABEL_MODES",
    "RECIPES",
    "Recipe",
    "Stage1",
    "TREATMENTS",
    "get",
    "stage1_settings",
    "stage2_config",
]
