"""Elastic weight consolidation (Kirkpatrick et al. 2017).

After a task, :meth:`EWC.consolidate` estimates the diagonal Fisher information
F_i = E[g_i^2] (squared gradients of the task loss, averaged over batches) and remembers
the parameters theta*.  While training the next task, :meth:`EWC.apply` adds

    penalty = lam/2 sum_tasks sum_i F_i (theta_i - theta*_i)^2,   d/dtheta = lam F (theta - theta*)

to the module's gradients.
"""
import numpy as np

from .._progress import progress as progress_iter
from .._validate import finite_number
from ..errors import InvalidConfig, InvalidInput


class EWC:
    def __init__(self, module, lam):
        self.module = module
        self.lam = finite_number(lam, "lam")
        if self.lam < 0:
            raise InvalidConfig(f"lam must be >= 0 and finite, got {lam!r}")
        self.tasks = []            # [(fisher dict, anchor dict)]

    def consolidate(self, batches, grad_fn, *, progress=True):
        """Estimate the Fisher on ``batches``: for each, the module's gradients are zeroed
        and ``grad_fn(batch)`` must fill them (forward + loss + backward).  Returns the
        Fisher dict; the current parameters become theta* for this task."""
        fisher = {n: np.zeros_like(p, dtype=np.float64)
                  for n, p in self.module.parameters().items()}
        count = 0
        for batch in progress_iter(batches, desc="fisher", enabled=progress):
            self.module.zero_grad()
            grad_fn(batch)
            for name, g in self.module.grads.items():
                fisher[name] += np.square(g, dtype=np.float64)
            count += 1
        if not count:
            raise InvalidInput("consolidate needs at least one batch")
        self.module.zero_grad()
        fisher = {n: f / count for n, f in fisher.items()}
        anchor = {n: p.astype(np.float64) for n, p in self.module.parameters().items()}
        self.tasks.append((fisher, anchor))
        return fisher

    def penalty(self):
        """lam/2 sum F (theta - theta*)^2 over the consolidated tasks."""
        params = self.module.parameters()
        return float(sum(0.5 * self.lam * np.sum(f[n] * (params[n] - a[n]) ** 2)
                         for f, a in self.tasks for n in params))

    def apply(self):
        """Add the penalty's gradient to the module's grads; returns the penalty."""
        params, grads = self.module.parameters(), self.module.grads
        for fisher, anchor in self.tasks:
            for name, p in params.items():
                grads[name] += (self.lam * fisher[name] * (p - anchor[name])).astype(p.dtype)
        return self.penalty()
