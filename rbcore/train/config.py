"""`TrainConfig`: the hyperparameters of one training run, each with its source."""

from __future__ import annotations

import dataclasses

from rbcore.vat import DEFAULT_EPS, DEFAULT_N_POWER, DEFAULT_XI


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
    optimizer: str = "adam"  # "adam" (Miyato, our default) or "adadelta" (the paper's "Simple")
    learning_rate: float | None = None  # None: 1e-3 for Adam (Kingma & Ba 2015, Miyato),
    # 1.0 for Adadelta (Keras default, the paper's Keras code)
    alpha: float = 0.0  # weight of the LDS (lambda_vat); 0 = supervised. Miyato: alpha = 1
    lambda_ce: float = 1.0  # weight of the cross-entropy; the paper's code: 1
    lambda_auc: float = 0.0  # weight of the pairwise AUC loss; off by default (our choice)
    auc_margin: float = 0.25  # margin of the exponential-hinge AUC loss; the paper's code
    eps: float = DEFAULT_EPS  # L2 norm of r_adv on [0, 1] inputs; the paper's code: 0.1
    xi: float = DEFAULT_XI  # power-iteration radius; our choice, see rbcore.vat.DEFAULT_XI
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
        if self.optimizer not in ("adam", "adadelta"):
            raise ValueError(
                f"TrainConfig.optimizer must be 'adam' or 'adadelta', got {self.optimizer!r}"
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
    def lr(self) -> float:
        """The learning rate in effect (optimizer-specific default when None)."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return 1e-3 if self.optimizer == "adam" else 1.0

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
