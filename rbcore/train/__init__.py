"""Training: the config, the losses and step, the loop `fit`, and notebook 03's experiment."""

from rbcore.train.loop import (  # noqa: F401
    INFERENCE_CHUNK,
    PROFILES,
    TrainConfig,
    binary_entropy,
    detector_validation_split,
    fit,
    pairwise_auc_loss,
    predict_logits,
    profile_config,
    step_keys,
)
