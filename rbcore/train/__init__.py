"""Training: the config, the losses and the step, the loop `fit`, and notebook 03's experiment.

`config` (`TrainConfig`), `losses` (cross-entropy, the pairwise AUC loss, entropy), `step`
(`loss_fn`, `train_step`), `loop` (`fit`), `checkpoints` (what a run writes and how it
resumes), `experiment` (the Current/VAT models of notebook 03: sweep, training, summaries).
"""

from rbcore.train.config import TrainConfig, profile_config
from rbcore.train.loop import fit

__all__ = ["TrainConfig", "fit", "profile_config"]
