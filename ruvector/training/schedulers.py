"""Learning-rate schedules.  Each scheduler sets ``optimizer.lr`` from its step count:
call :meth:`step` once per optimizer step (or epoch).  ``LinearWarmup(..., then=...)``
composes: warm-up first, then the wrapped schedule counted from the end of the warm-up."""
import math

from .._validate import integer
from ..errors import InvalidConfig


class Scheduler:
    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.t = 0
        self.optimizer.lr = self.lr_at(0)

    def lr_at(self, t):
        raise NotImplementedError

    def step(self):
        self.t += 1
        self.optimizer.lr = self.lr_at(self.t)
        return self.optimizer.lr

    def state_dict(self):
        return {"t": self.t, "base_lr": self.base_lr}

    def load_state_dict(self, state):
        self.t, self.base_lr = int(state["t"]), float(state["base_lr"])
        self.optimizer.lr = self.lr_at(self.t)


class StepLR(Scheduler):
    """lr = base_lr gamma^floor(t / step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size = integer(step_size, "step_size", minimum=1)
        self.gamma = float(gamma)
        if not 0 < self.gamma <= 1:
            raise InvalidConfig(f"gamma must be in (0, 1], got {gamma!r}")
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class CosineLR(Scheduler):
    """lr = eta_min + (base_lr - eta_min) (1 + cos(pi min(t, T) / T)) / 2."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max = integer(T_max, "T_max", minimum=1)
        self.eta_min = float(eta_min)
        if not 0 <= self.eta_min <= optimizer.lr:
            raise InvalidConfig(f"eta_min must be in [0, lr], got {eta_min!r}")
        super().__init__(optimizer)

    def lr_at(self, t):
        frac = min(t, self.T_max) / self.T_max
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * frac)) / 2


class LinearWarmup(Scheduler):
    """lr = base_lr (t + 1) / warmup_steps for t < warmup_steps, then ``then.lr_at(t -
    warmup_steps)`` (or base_lr when ``then`` is None)."""

    def __init__(self, optimizer, warmup_steps, then=None):
        self.warmup_steps = integer(warmup_steps, "warmup_steps", minimum=1)
        if then is not None and then.optimizer is not optimizer:
            raise InvalidConfig("the schedule after the warm-up must drive the same optimizer")
        self.then = then
        super().__init__(optimizer)

    def lr_at(self, t):
        if t < self.warmup_steps:
            return self.base_lr * (t + 1) / self.warmup_steps
        return self.base_lr if self.then is None else self.then.lr_at(t - self.warmup_steps)
