"""Old names kept for one release: module paths that moved (an import finder that hands out
the new module with a DeprecationWarning) and renamed keyword arguments."""
import functools
import importlib
import importlib.abc
import importlib.util
import sys
import warnings

from .errors import InvalidConfig

MOVED_MODULES = {
    "ruvector.attention.graph": "ruvector.gnn.layers",
    "ruvector.attention.training": "ruvector.training",
    "ruvector.attention.training.checkpoint": "ruvector.training.checkpoint",
    "ruvector.attention.training.ewc": "ruvector.training.ewc",
    "ruvector.attention.training.losses": "ruvector.training.losses",
    "ruvector.attention.training.optim": "ruvector.training.optim",
    "ruvector.attention.training.schedulers": "ruvector.training.schedulers",
    "ruvector.graph.gnn": "ruvector.gnn.models",
    "ruvector.graph.csr": "ruvector.nn.csr",
    "ruvector.graph.cli": "ruvector.cli.graph",
    "ruvector.index.io": "ruvector._arrow",
    "ruvector.demo": "ruvector.cli.demo",
}


class _MovedLoader(importlib.abc.Loader):
    def __init__(self, new):
        self.new = new

    def create_module(self, spec):
        warnings.warn(f"{spec.name} moved to {self.new}; the old path goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(self.new)

    def exec_module(self, module):
        pass


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        new = MOVED_MODULES.get(name)
        if new is None:
            return None
        return importlib.util.spec_from_loader(name, _MovedLoader(new))


def install():
    """Make the old module paths importable (once per interpreter).  First in the path:
    otherwise ``old.package.child`` is found again under the new package's directory and
    loaded a second time under the old name."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())


def renamed(**old_to_new):
    """Decorator: keyword arguments under their old names still work, with a
    DeprecationWarning; passing both names is an InvalidConfig."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for old, new in old_to_new.items():
                if old in kwargs:
                    where = _called_name(fn, args)
                    if new in kwargs:
                        raise InvalidConfig(f"{where}: pass {new}= only ({old}= is "
                                            "its deprecated name)")
                    warnings.warn(f"{where}: {old}= is deprecated, use {new}=",
                                  DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)
        return wrapper
    return decorate


def _called_name(fn, args):
    """``Class.method`` of the object called on (a subclass, not the base that defines it)."""
    if args and getattr(type(args[0]), fn.__name__, None) is not None:
        return f"{type(args[0]).__name__}.{fn.__name__}"
    return fn.__qualname__
