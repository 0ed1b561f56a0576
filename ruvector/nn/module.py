"""Module base: named parameters, gradients and state dicts (shape-checked)."""
import numpy as np

from .._validate import float_dtype
from ..errors import InvalidConfig


class Module:
    """Base class of every trainable object.

    Subclasses register arrays with :meth:`_register`; ``parameters()`` returns the live
    arrays (an optimizer updates them in place), ``grads`` holds one gradient array per
    parameter under the same name, which ``backward`` calls accumulate into (``+=``) until
    :meth:`zero_grad`.  ``training`` switches dropout on; :meth:`train` / :meth:`eval` set it.
    Parameters live in the module's compute ``dtype`` (float32 by default; float64 is there
    for gradient checks and for users who want it).
    """

    def __init__(self, dtype=np.float32):
        self.dtype = float_dtype(dtype)
        self._params = {}
        self._grads = {}
        self._children = {}
        self.training = False

    def _register(self, name, value):
        arr = np.array(value, dtype=self.dtype, order="C")  # keeps 0-d parameters 0-d
        self._params[name] = arr
        self._grads[name] = np.zeros_like(arr)
        return arr

    def _add_child(self, name, module):
        """Register a sub-module: its parameters appear as ``name.param``."""
        self._children[name] = module
        return module

    def _walk(self, attr):
        out = dict(getattr(self, attr))
        for cname, child in self._children.items():
            out.update({f"{cname}.{k}": v for k, v in child._walk(attr).items()})
        return out

    def parameters(self):
        """Live parameter arrays by name (updating them in place updates the module);
        sub-modules' parameters are prefixed with their name and a dot."""
        return self._walk("_params")

    @property
    def grads(self):
        """Live gradient arrays, same names as :meth:`parameters`."""
        return self._walk("_grads")

    def zero_grad(self):
        """Set every gradient to zero."""
        for g in self.grads.values():
            g[...] = 0

    def train(self, mode=True):
        """Switch training mode (dropout on) and return self (sub-modules too)."""
        self.training = bool(mode)
        for child in self._children.values():
            child.train(mode)
        return self

    def eval(self):
        """Switch to inference mode (dropout off) and return self."""
        return self.train(False)

    def state_dict(self):
        """Copies of the parameters by name."""
        return {name: p.copy() for name, p in self.parameters().items()}

    def load_state_dict(self, state):
        """Copy ``state`` into the parameters; every name must match with the same shape.

        Raises InvalidConfig for missing or unknown names, shape mismatches and NaN/Inf.
        """
        params = self.parameters()
        expected, given = set(params), set(state)
        if expected != given:
            missing, unknown = sorted(expected - given), sorted(given - expected)
            raise InvalidConfig(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                f"unknown keys {unknown}")
        for name, value in state.items():
            arr = np.asarray(value)
            target = params[name]
            if arr.shape != target.shape:
                raise InvalidConfig(
                    f"{type(self).__name__}.load_state_dict: {name!r} has shape {arr.shape}, "
                    f"expected {target.shape}")
            if not np.all(np.isfinite(arr)):
                raise InvalidConfig(f"{type(self).__name__}.load_state_dict: {name!r} has NaN/Inf")
        for name, value in state.items():
            params[name][...] = value

    def __getattr__(self, name):
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def _require_cache(self, cache):
        if cache is None:
            raise InvalidConfig(f"{type(self).__name__}.backward called before forward")
        return cache


def glorot_uniform(rng, fan_in, fan_out, shape=None):
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape or (fan_in, fan_out))


def make_rng(seed):
    """A NumPy Generator from a seed, None (fresh entropy) or an existing Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
