"""Optional dependencies: import one by name, or raise MissingDependency naming the extra
that installs it."""
import importlib

from .errors import MissingDependency


def require(module, extra, feature):
    """The imported ``module`` (e.g. "onnx"); MissingDependency when it is not installed,
    telling how to get it: ``pip install "ruvector[<extra>]"``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"{feature} needs the {module.split('.')[0]!r} package ({exc}); install it with "
            f'pip install "ruvector[{extra}]"') from None
