"""Module base: named parameters, gradients, state dicts (shape-checked) and the
constructor config that rebuilds a module (checkpoints)."""
import functools
import inspect
from collections.abc import Mapping

import numpy as np

from .._validate import float_dtype
from ..errors import InvalidConfig, RuvectorError


def _is_default(param, value):
    """Whether ``value`` is the constructor parameter's default (dtypes compared as dtypes)."""
    if param is None or param.default is inspect.Parameter.empty:
        return False
    default = param.default
    try:
        if param.name == "dtype":
            return np.dtype(value) == np.dtype(default)
        return bool(value == default) and type(value) is type(default)
    except (TypeError, ValueError):
        return False


class Module:
    """Base class of every trainable object.

    Subclasses register arrays with :meth:`_register`; ``parameters()`` returns the live
    arrays (an optimizer updates them in place), ``grads`` holds one gradient array per
    parameter under the same name, which ``backward`` calls accumulate into (``+=``) until
    :meth:`zero_grad`.  ``training`` switches dropout on; :meth:`train` / :meth:`eval` set it.
    Parameters live in the module's compute ``dtype`` (float32 by default; float64 is there
    for gradient checks and for users who want it).
    """

    def __init_subclass__(cls, **kwargs):
        """Record the arguments of the outermost constructor call (see :meth:`config`)."""
        super().__init_subclass__(**kwargs)
        _CLASSES[f"{cls.__module__}.{cls.__qualname__}"] = cls
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            if "_init_args" not in self.__dict__:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                self.__dict__["_init_args"] = dict(list(bound.arguments.items())[1:])
            init(self, *args, **kw)
        cls.__init__ = recording_init

    def config(self):
        """JSON-able description that rebuilds this module (class path and constructor
        arguments; sub-modules nested, random generators as None since weights come from the
        state dict).  Raises InvalidConfig for arguments JSON cannot hold."""
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}",
                "args": {k: _config_value(v, k) for k, v in
                         self.__dict__.get("_init_args", {}).items()}}

    def __repr__(self):
        """PyTorch-style: the constructor arguments that differ from their defaults, one
        indented line per sub-module (``GNN(\\n  (0): GATLayer(in_dim=34, ...)\\n)``)."""
        try:
            params = inspect.signature(type(self).__init__).parameters
        except (TypeError, ValueError):
            params = {}
        args, children = [], []
        for name, value in self.__dict__.get("_init_args", {}).items():
            if isinstance(value, Module):
                children.append((name, value))
            elif isinstance(value, (list, tuple)) and value and \
                    all(isinstance(v, Module) for v in value):
                children += [(str(i), v) for i, v in enumerate(value)]
            elif not _is_default(params.get(name), value):
                shown = np.dtype(value).name if name == "dtype" else repr(value)
                args.append(f"{name}={shown}")
        head = f"{type(self).__name__}({', '.join(args)}"
        if not children:
            return head + ")"
        lines = [f"  ({n}): " + repr(m).replace("\n", "\n  ") for n, m in children]
        return head + ("\n" if not args else ",\n") + "\n".join(lines) + "\n)"

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
        if not isinstance(state, Mapping):
            raise InvalidConfig(f"{type(self).__name__}.load_state_dict needs a mapping of "
                                f"parameter names to arrays, got {type(state).__name__}")
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
            if arr.dtype.kind not in "iuf":
                raise InvalidConfig(f"{type(self).__name__}.load_state_dict: {name!r} holds "
                                    f"{arr.dtype} values, not numbers")
            if arr.shape != target.shape:
                raise InvalidConfig(
                    f"{type(self).__name__}.load_state_dict: {name!r} has shape {arr.shape}, "
                    f"expected {target.shape}")
            if not np.all(np.isfinite(arr)):
                raise InvalidConfig(f"{type(self).__name__}.load_state_dict: {name!r} has NaN/Inf")
        for name, value in state.items():
            params[name][...] = value

    # -- ONNX export (``ruvector.nn.onnx_graph``) ---------------------------------------------
    def to_onnx(self, path, example_inputs=None, *, verify=True, rtol=1e-5, atol=1e-5):
        """Export the inference forward as an ONNX model (opset 18) at ``path``.

        ``example_inputs``: a tuple of arrays as ``forward`` takes them (default: a small
        random example); they fix ranks and feature widths, every other axis is dynamic.
        With ``verify`` the file is run in onnxruntime and must reproduce ``forward`` within
        ``rtol`` / ``atol`` (ExportError otherwise).  Needs ``pip install "ruvector[onnx]"``.
        Returns the path.
        """
        from .onnx_graph import export_module
        return export_module(self, path, example_inputs, verify=verify, rtol=rtol, atol=atol)

    def onnx_example(self):
        """A small random example of ``forward``'s inputs (what :meth:`to_onnx` traces with
        when given none)."""
        from .onnx_graph import not_exportable
        not_exportable(self)

    def onnx_inputs(self, examples):
        """([(input name, ONNX dims)], example arrays converted) for :meth:`to_onnx`."""
        from .onnx_graph import not_exportable
        not_exportable(self)

    def emit_onnx(self, graph, *inputs):
        """Add this module's inference forward to ``graph`` (an ``OnnxGraph``) reading the
        tensors named ``inputs``; returns the output tensor's name."""
        from .onnx_graph import not_exportable
        not_exportable(self)

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
    size = shape or (fan_in, fan_out)
    try:
        return rng.uniform(-a, a, size=size)
    except (MemoryError, ValueError):
        raise InvalidConfig(f"a weight of shape {size} does not fit in memory") from None


def make_rng(seed):
    """A NumPy Generator from a seed, None (fresh entropy) or an existing Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _config_value(value, name):
    if isinstance(value, Module):
        return {"__module__": value.config()}
    if isinstance(value, np.random.Generator):
        return None
    if isinstance(value, (list, tuple)):
        return [_config_value(v, name) for v in value]
    if isinstance(value, dict):
        return {str(k): _config_value(v, name) for k, v in value.items()}
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return {"__dtype__": np.dtype(value).name}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise InvalidConfig(f"constructor argument {name}={value!r} cannot be stored in a config")


# Every Module subclass defined in the process, by class path: from_config builds only these
# and imports nothing a file names (a crafted path could run any module's import code).
_CLASSES = {}
# The packages whose layers checkpoints hold, imported (a fixed list) before a lookup.
_LAYER_PACKAGES = ("ruvector.attention", "ruvector.gnn", "ruvector.index", "ruvector.nn")


def module_class(path):
    """The Module subclass registered under class path ``path`` (InvalidConfig if none)."""
    import importlib

    from .._deprecated import MOVED_MODULES
    for package in _LAYER_PACKAGES:
        importlib.import_module(package)
    module_name, _, qualname = str(path).rpartition(".")
    cls = _CLASSES.get(path) or _CLASSES.get(
        f"{MOVED_MODULES.get(module_name, module_name)}.{qualname}")
    if cls is None:
        raise InvalidConfig(f"refusing to build {path!r}: not a known Module class")
    return cls


def from_config(config):
    """Rebuild a module from :meth:`Module.config` (registered Module classes only)."""
    try:
        path = config["class"]
        args = config["args"]
        if not isinstance(path, str) or not isinstance(args, dict):
            raise TypeError("'class' must be a string and 'args' a mapping")
    except (KeyError, TypeError) as exc:
        raise InvalidConfig(f"bad module config: {exc}") from None
    cls = module_class(path)
    try:
        return cls(**{str(k): _decode(v) for k, v in args.items()})
    except (TypeError, ValueError, OverflowError) as exc:  # typed errors pass through
        if isinstance(exc, RuvectorError):
            raise
        raise InvalidConfig(f"cannot rebuild {path}: {exc}") from None


def _decode(value):
    if isinstance(value, dict) and set(value) == {"__module__"}:
        return from_config(value["__module__"])
    if isinstance(value, dict) and set(value) == {"__dtype__"}:
        return np.dtype(value["__dtype__"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value
