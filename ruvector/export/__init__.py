"""Export for other runtimes: ONNX models (:meth:`ruvector.nn.Module.to_onnx`) and a
runtime-neutral weights format (a JSON config + tensor table beside a raw little-endian
tensor file), from a module or a checkpoint directory."""
from .weights import load_weights_json, save_weights_json
from .checkpoint import export_checkpoint

__all__ = ["save_weights_json", "load_weights_json", "export_checkpoint"]
