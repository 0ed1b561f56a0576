"""Optimizers over a Module's ``parameters()`` / ``grads`` (in-place updates), and gradient
clipping by global norm.  Update rules follow PyTorch's (``torch.optim``)."""
import numpy as np

from .._validate import choice, probability
from ..errors import InvalidConfig


def _positive(value, name, allow_zero=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidConfig(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InvalidConfig(f"{name} must be {'>= 0' if allow_zero else '> 0'} and finite, "
                            f"got {value!r}")
    return v


class Optimizer:
    """Base: holds the module, the learning rate ``lr`` (>= 0, as in PyTorch: schedulers
    change it, and a cosine schedule ends at 0), a step counter and per-parameter state
    arrays."""

    hyper = ()            # names of the hyper-parameters saved in state_dict

    def __init__(self, module, lr):
        if not (hasattr(module, "parameters") and hasattr(module, "grads")):
            raise InvalidConfig("an optimizer needs a Module (parameters() and grads)")
        self.module = module
        self.lr = _positive(lr, "lr", allow_zero=True)
        self.steps = 0
        self.state = {}

    def zero_grad(self):
        self.module.zero_grad()

    def step(self):
        """One update of every parameter from its gradient."""
        params, grads = self.module.parameters(), self.module.grads
        self.steps += 1
        for name, p in params.items():
            g = grads[name]
            if not np.all(np.isfinite(g)):
                raise InvalidConfig(f"gradient of {name!r} has NaN/Inf; not stepping")
            self._update(name, p, g.astype(p.dtype, copy=False))

    def _update(self, name, p, g):
        raise NotImplementedError

    def _slot(self, name, key, like):
        slots = self.state.setdefault(name, {})
        if key not in slots:
            slots[key] = np.zeros_like(like)
        return slots[key]

    def config(self):
        return {"type": type(self).__name__, "lr": self.lr,
                **{k: getattr(self, k) for k in self.hyper}}

    def state_dict(self):
        """Hyper-parameters, step count and copies of the state arrays."""
        return {**self.config(), "steps": self.steps,
                "state": {n: {k: v.copy() for k, v in s.items()} for n, s in self.state.items()}}

    def load_state_dict(self, state):
        if state.get("type") != type(self).__name__:
            raise InvalidConfig(f"state is for {state.get('type')!r}, not {type(self).__name__}")
        params = self.module.parameters()
        for name, slots in state["state"].items():
            if name not in params:
                raise InvalidConfig(f"optimizer state for unknown parameter {name!r}")
            for key, arr in slots.items():
                if np.shape(arr) != params[name].shape:
                    raise InvalidConfig(f"optimizer state {name}.{key} has shape "
                                        f"{np.shape(arr)}, expected {params[name].shape}")
        self.lr = _positive(state["lr"], "lr", allow_zero=True)
        for k in self.hyper:
            setattr(self, k, state[k])
        self.steps = int(state["steps"])
        self.state = {n: {k: np.array(v, dtype=params[n].dtype) for k, v in s.items()}
                      for n, s in state["state"].items()}


class SGD(Optimizer):
    """g = grad + weight_decay p;  b = momentum b + g (b = g on the first step);
    g = g + momentum b (nesterov) or b;  p -= lr g."""

    hyper = ("momentum", "nesterov", "weight_decay")

    def __init__(self, module, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(module, lr)
        self.momentum = _positive(momentum, "momentum", allow_zero=True)
        self.nesterov = bool(nesterov)
        self.weight_decay = _positive(weight_decay, "weight_decay", allow_zero=True)
        if self.nesterov and self.momentum == 0:
            raise InvalidConfig("nesterov=True needs momentum > 0")

    def _update(self, name, p, g):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            first = name not in self.state
            buf = self._slot(name, "momentum", p)
            if first:
                buf[...] = g
            else:
                buf *= self.momentum
                buf += g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class Adam(Optimizer):
    """Kingma & Ba 2015 with L2 weight decay (g += weight_decay p):
    m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,
    p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)."""

    hyper = ("betas", "eps", "weight_decay")
    decoupled = False

    def __init__(self, module, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(module, lr)
        try:
            b1, b2 = (float(b) for b in betas)
        except (TypeError, ValueError):
            raise InvalidConfig(f"betas must be two numbers, got {betas!r}") from None
        self.betas = [probability(b1, "betas[0]"),
                      probability(b2, "betas[1]")]
        self.eps = _positive(eps, "eps")
        self.weight_decay = _positive(weight_decay, "weight_decay", allow_zero=True)

    def _update(self, name, p, g):
        b1, b2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                p *= 1.0 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m, v = self._slot(name, "m", p), self._slot(name, "v", p)
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        m_hat = m / (1 - b1 ** self.steps)
        v_hat = v / (1 - b2 ** self.steps)
        p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019):
    p *= 1 - lr weight_decay before the Adam step (default weight_decay 0.01)."""

    decoupled = True

    def __init__(self, module, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(module, lr, betas, eps, weight_decay)


OPTIMIZERS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}


def build_optimizer(module, config):
    """An optimizer from :meth:`Optimizer.config` (used by checkpoints)."""
    kind = config.get("type")
    choice(kind, "optimizer type", OPTIMIZERS)
    args = {k: v for k, v in config.items() if k not in ("type", "steps", "state")}
    return OPTIMIZERS[kind](module, **args)


def clip_grad_norm(module, max_norm):
    """Scale every gradient by min(1, max_norm / ||g||) with ||g|| the global L2 norm over
    all parameters; returns ||g|| before clipping."""
    max_norm = _positive(max_norm, "max_norm")
    grads = module.grads.values()
    total = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)))
    if total > max_norm:
        scale = max_norm / (total + 1e-12)
        for g in module.grads.values():
            g *= scale
    return total
