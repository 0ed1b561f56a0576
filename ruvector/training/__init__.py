"""Training utilities: optimizers, schedulers, gradient clipping, losses with gradients,
elastic weight consolidation and checkpoints."""
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .ewc import EWC
from .losses import cross_entropy, info_nce, mse_loss, triplet_margin_loss
from .optim import SGD, Adam, AdamW, Optimizer, clip_grad_norm
from .schedulers import CosineLR, LinearWarmup, StepLR

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm", "StepLR", "CosineLR",
           "LinearWarmup", "mse_loss", "cross_entropy", "info_nce", "triplet_margin_loss",
           "EWC", "save_checkpoint", "load_checkpoint", "Checkpoint"]
