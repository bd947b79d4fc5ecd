"""`TrainConfig`: the hyperparameters of one training run, each with its source."""

from __future__ import annotations

import dataclasses

from rbcore.vat import DEFAULT_EPS, DEFAULT_N_POWER, DEFAULT_XI, PAPER_EPS_RAW, PAPER_XI_RAW

# Adadelta's learning rate in the paper's code: its lr 1e-3 (real_bogus.py:80) is passed to
# tf.keras.optimizers.Adadelta(learning_rate=train_cfg['lr']) in train_classifier (the
# README's "Simple" runs change the optimizer and batch size 64, not the lr).
PAPER_ADADELTA_LR = 1e-3

# The paper's stage-2 loss, VAT and optimizer defaults as TrainConfig overrides (the model,
# stopping and data protocol are rbcore.recipes') (src/real_bogus.py my_config and
# train_classifier, src/models/real_bogus/model2.py MyModel; README "Complex"):
PAPER_STAGE2 = {
    "optimizer": "sgd",  # real_bogus.py:79, tf.keras SGD: no momentum, no clipping (:82)
    "learning_rate": 1e-3,  # real_bogus.py:80
    "batch_size": 256,  # real_bogus.py:61
    "lambda_ce": 0.1,  # real_bogus.py:92
    "lambda_auc": 1.0,  # real_bogus.py:90
    "alpha": 0.1,  # lambda_vat, real_bogus.py:91
    "auc_margin": 0.25,  # real_bogus.py:86
    "loss_weights": "as_coded",  # loss_weights['auc'] = lambda_vat, no 'vat' weight
    "vat_space": "raw",  # MyModel perturbs the input of net, whose first layer normalizes
    "eps": PAPER_EPS_RAW,  # MyModel epsilon=0.1
    "xi": PAPER_XI_RAW,  # MyModel xi=1.0
    "n_power": 1,  # MyModel ip=1
    "flagged_in_batch": True,  # map_record_semi_supervised: flagged samples get label -1
}
# Departures from the paper's code that remain with PAPER_STAGE2 (losses, VAT, optimizer):
# - one logit z with a sigmoid for the paper's two (z0, z1) with a softmax: z plays z1 - z0
#   exactly (softmax(z0, z1)_1 = sigmoid(z1 - z0), the ECH's score model2.py:25), but the two
#   dense columns of the paper move z1 - z0 at twice SGD's step and start with the variance
#   of a difference of two initial columns (the function class and every loss are the same);
# - the LDS is KL(p || p_adv); the paper's Keras CategoricalCrossentropy(p, p_adv) is that
#   plus the entropy of the constant target p: the same gradient, a different logged value;
# - r_adv is normalized exactly (rbcore.vat.l2_normalize); the paper divides by
#   max(|g|, 1e-6), so a gradient under 1e-6 gives |r_adv| < eps there;
# - the CE's class weights (TrainConfig.class_weight) have no counterpart (the code: none);
# - lambda_auc = 0 with lambda_vat != 0 in "as_coded": the code would pass a weight for an
#   'auc' output it never built (Keras' behaviour there is untested); we drop the ECH and
#   weigh the LDS 1.


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run (every default with its source).

    Notes:
        The paper's code: Takahashi et al. (2022); Miyato: Miyato et al. (2018) and their
        reference code github.com/takerum/vat_tf.
    """

    epochs: int = 20  # maximum epochs; our choice (early stopping usually ends sooner)
    batch_size: int = 128  # labeled samples per step; our choice: 32-128 run fastest on CPU
    unlabeled_batch_size: int = 128  # extra samples per step for the LDS; Miyato et al. use
    # 32 labeled + 128 unlabeled on CIFAR-10; equal halves here (the benchmark's 128 + 128)
    unlabeled_pool: str = "all"  # where that extra batch is drawn from: "all" training samples
    # (Miyato's convention: the unlabeled set includes the labeled images) or only the
    # "unlabeled" (flagged) ones, which with ~1 % flagged repeats each ~100 times per epoch
    optimizer: str = "adam"  # "adam" (Miyato, our default), "adadelta" (the paper's README
    # "Simple" runs) or "sgd" (plain SGD, no momentum: the paper's default and "Complex" runs,
    # real_bogus.py:79 and the tf.keras.optimizers.SGD call in train_classifier)
    learning_rate: float | None = None  # None: 1e-3 for Adam (Kingma & Ba 2015, Miyato) and
    # SGD (the paper's lr, real_bogus.py:80); 1.0 for Adadelta (standalone Keras 2's default,
    # used by the Keras mnist_cnn example the talk's CNN follows). The paper's code passes its
    # lr 1e-3 to Adadelta too (PAPER_ADADELTA_LR); set learning_rate=1e-3 for the paper's runs
    alpha: float = 0.0  # the LDS weight (lambda_vat); 0 = supervised. Miyato: alpha = 1; the
    # paper's code: lambda_vat = 0.1 (real_bogus.py:91), applied as `loss_weights` says
    lambda_ce: float = 1.0  # weight of the cross-entropy; the paper's README "Simple" runs: 1,
    # its code's default 0.1 (real_bogus.py:92, PAPER_STAGE2)
    lambda_auc: float = 0.0  # weight of the ECH (`rbcore.train.losses.exp_hinge_loss`); off
    # by default (our choice, today's behaviour); the paper's default 1.0 (real_bogus.py:90)
    auc_margin: float = 0.25  # ECH margin on the logit difference; real_bogus.py:86
    loss_weights: str = "as_named"  # "as_named": lambda_ce CE + lambda_auc ECH + alpha LDS
    # (what the names say; today's); "as_coded": what the paper's code trains, lambda_ce CE +
    # alpha ECH + 1 LDS when alpha > 0 (real_bogus.py train_classifier sets
    # loss_weights['auc'] = lambda_vat and gives 'vat' no weight, i.e. Keras' 1)
    vat_space: str = "normalized"  # where r_adv lives: "normalized" (the [0, 1] min-max
    # normalized inputs; Miyato's convention for inputs of a known scale; today's) or "raw"
    # (raw pixels before the normalization layer, as the paper's code: MyModel perturbs the
    # input of a network whose first layer is NormalizeSimple; eps 0.1, xi 1.0 there) or
    # "sky" (normalized inputs in units of each cutout's and channel's sky sigma,
    # rbcore.vat.sky_sigma_jax: our diagnosis of issue 21 item 7, benchmarks/README.md)
    flagged_in_batch: bool = False  # True: unlabeled (flagged) samples travel in the labeled
    # batch with label -1, skipped by CE and ECH, seen by the LDS only, and the LDS covers
    # just that batch (the paper's code: map_record_semi_supervised, Crossentropy,
    # ExpHingeLoss); False: today's separate extra batch of `unlabeled_batch_size`
    eps: float = DEFAULT_EPS  # L2 norm of r_adv per sample, in the units of `vat_space`;
    # the paper's code: 0.1 on raw pixels (model2.py MyModel epsilon=0.1)
    xi: float = DEFAULT_XI  # power-iteration radius; our choice, see rbcore.vat.DEFAULT_XI
    # (the paper's code: 1.0 on raw pixels, MyModel xi=1.0)
    n_power: int = DEFAULT_N_POWER  # power iterations; the paper's code and Miyato: 1
    entmin: bool = False  # add the entropy of p(y|x) (VAT+EntMin, Miyato et al. 2018 Sec. 3.4)
    class_weight: tuple[float, float] = (1.0, 1.0)  # CE weights of (bogus, real); our default
    # is unweighted, as the paper's code
    patience: int = 3  # epochs without validation improvement before stopping; our choice
    early_stopping_metric: str = "auc"  # "auc" (maximize) or "loss" (minimize); our choice
    seed: int = 0  # initialization, batch order, dropout and VAT noise
    dropout_rate: float = 0.25  # see rbcore.model.DEFAULT_DROPOUT_RATE (Keras mnist_cnn)
    prefetch: int = 4  # batches gathered ahead by the background thread; our choice
    eval_batch_size: int = 1024  # batch of validation/inference passes; our choice
    log_every: int = 20  # steps between progress-bar updates (each one syncs the device)
    architecture: str = "RBCNN"  # "RBCNN" (the talk's CNN, rbcore.model) or "PaperResNet"
    # (the paper's code's model_type='complex', rbcore.resnet); dropout_rate is RBCNN's only
    projection_shortcut: str = "as_coded"  # PaperResNet only: "as_coded" (a 1x1 projection in
    # every block, block.py:77) or "as_intended" (only where channels or stride change)

    def __post_init__(self):
        if self.optimizer not in ("adam", "adadelta", "sgd"):
            raise ValueError(
                f"TrainConfig.optimizer must be 'adam', 'adadelta' or 'sgd', got {self.optimizer!r}"
            )
        if self.loss_weights not in ("as_named", "as_coded"):
            raise ValueError(
                "TrainConfig.loss_weights must be 'as_named' or 'as_coded', "
                f"got {self.loss_weights!r}"
            )
        if self.vat_space not in ("normalized", "raw", "sky"):
            raise ValueError(
                "TrainConfig.vat_space must be 'normalized', 'raw' or 'sky', "
                f"got {self.vat_space!r}"
            )
        if not isinstance(self.flagged_in_batch, bool):
            raise ValueError(
                f"TrainConfig.flagged_in_batch must be True or False, got {self.flagged_in_batch!r}"
            )
        if self.unlabeled_pool not in ("all", "unlabeled"):
            raise ValueError(
                f"TrainConfig.unlabeled_pool must be 'all' or 'unlabeled', got {self.unlabeled_pool!r}"
            )
        if self.early_stopping_metric not in ("auc", "loss"):
            raise ValueError(
                "TrainConfig.early_stopping_metric must be 'auc' or 'loss', "
                f"got {self.early_stopping_metric!r}"
            )
        for name in ("epochs", "batch_size", "unlabeled_batch_size", "eval_batch_size", "prefetch"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("alpha", "lambda_ce", "lambda_auc", "eps", "xi", "patience", "n_power"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.architecture not in ("RBCNN", "PaperResNet"):
            raise ValueError(
                "TrainConfig.architecture must be 'RBCNN' or 'PaperResNet', "
                f"got {self.architecture!r}"
            )
        if self.projection_shortcut not in ("as_coded", "as_intended"):
            raise ValueError(
                "TrainConfig.projection_shortcut must be 'as_coded' or 'as_intended', "
                f"got {self.projection_shortcut!r}"
            )
        # A setting the chosen model has no use for is an error, not silently dropped.
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        unused = {"PaperResNet": "dropout_rate", "RBCNN": "projection_shortcut"}[self.architecture]
        if getattr(self, unused) != defaults[unused]:
            raise ValueError(
                f"TrainConfig.{unused}={getattr(self, unused)!r} has no effect on the "
                f"{self.architecture} (the paper's ResNet has no dropout, model2.py:581-585; "
                "the talk's CNN has no shortcut); leave it at its default "
                f"{defaults[unused]!r}"
            )
        if len(self.class_weight) != 2 or min(self.class_weight) < 0:
            raise ValueError(
                f"TrainConfig.class_weight must be two weights >= 0, got {self.class_weight}"
            )

    @property
    def uses_unlabeled(self) -> bool:
        """Whether the loss has a term that needs no labels (LDS or entropy)."""
        return self.alpha > 0 or self.entmin

    @property
    def model_config(self) -> dict:
        """The config of the model this run trains (`rbcore.model.build_model`)."""
        if self.architecture == "PaperResNet":
            return {"architecture": "PaperResNet", "projection_shortcut": self.projection_shortcut}
        return {"architecture": "RBCNN", "dropout_rate": self.dropout_rate}

    @property
    def extra_batch(self) -> bool:
        """Whether each step draws a separate unlabeled batch (not `flagged_in_batch`)."""
        return self.uses_unlabeled and not self.flagged_in_batch

    @property
    def lr(self) -> float:
        """The learning rate in effect (optimizer-specific default when None)."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return 1.0 if self.optimizer == "adadelta" else 1e-3

    def to_dict(self) -> dict:
        """JSON-ready dict (stored with checkpoints and the history)."""
        d = dataclasses.asdict(self)
        d["class_weight"] = list(d["class_weight"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of `to_dict`; unknown fields are an error."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        d = dict(d)
        if "class_weight" in d:
            d["class_weight"] = tuple(d["class_weight"])
        return cls(**d)


def profile_config(profile: str, **overrides) -> TrainConfig:
    """The `TrainConfig` of a profile (`rbcore.profiles`, step "train"); None keeps its value."""
    from rbcore.profiles import settings

    return TrainConfig(**settings(profile, "train", **overrides))
