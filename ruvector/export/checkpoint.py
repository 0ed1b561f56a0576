"""``export_checkpoint``: a training checkpoint as an ONNX model or JSON weights."""
from .._validate import choice
from ..training.checkpoint import load_checkpoint
from .weights import save_weights_json


def export_checkpoint(checkpoint, out, format="onnx", example_inputs=None, verify=True):
    """Export the module of the checkpoint directory ``checkpoint`` to ``out``.

    ``format="onnx"``: :meth:`Module.to_onnx` (checked in onnxruntime unless ``verify`` is
    False); ``"json"``: :func:`save_weights_json`.  Returns the path written.
    """
    choice(format, "format", ("onnx", "json"))
    module = load_checkpoint(checkpoint).module
    module.eval()
    if format == "json":
        return save_weights_json(module, out)
    return module.to_onnx(out, example_inputs, verify=verify)
