"""ONNX export: the graph builder that exportable modules write their inference forward into
(``Module.emit_onnx``), and :func:`export_module`, which builds the model, checks it, writes
it atomically and runs it in onnxruntime against the module.

Opset 18: ``ScatterND`` with ``reduction="max"`` (the per-target softmax of graph attention,
max-subtracted as in the kernels) and ``LayerNormalization`` need it.  The graph computes in
float32 (a float64 module's weights are stored as float32); ``edge_index`` is int64.
Dropout is an identity: the graph is the module in inference mode (``eval()``).
"""
import contextlib

import numpy as np

from .._optional import require
from .._persist import store_path, write_file_atomic
from .._validate import as_array
from ..errors import DimensionMismatch, ExportError, InvalidConfig

OPSET = 18
NEG_LARGE = -3.0e38   # stands for -inf in masked logits: exp(NEG_LARGE - max) == 0 exactly


class OnnxGraph:
    """Inputs, initializers and nodes of one ONNX graph under construction.

    Every method returns the name of the tensor it adds.  ``shape(name)`` gives the
    declared dims of a graph input (ints for fixed axes, strings for dynamic ones), which
    is how a module learns its static widths; :meth:`scope` prefixes initializer names so
    that they read like ``parameters()`` keys (``attn.weight``).
    """

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes, self.initializers, self.inputs = [], [], []
        self._dims, self._taken, self._prefix = {}, set(), ""

    def _fresh(self, base):
        name, i = base, 1
        while name in self._taken:
            name, i = f"{base}_{i}", i + 1
        self._taken.add(name)
        return name

    @contextlib.contextmanager
    def scope(self, prefix):
        """Initializers added inside are named ``prefix.<name>``."""
        saved = self._prefix
        self._prefix = f"{saved}{prefix}."
        try:
            yield self
        finally:
            self._prefix = saved

    def input(self, name, dims, dtype=np.float32):
        """A graph input; ``dims`` holds ints (fixed axes) and strings (dynamic axes)."""
        self._taken.add(name)
        self._dims[name] = list(dims)
        elem = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, elem, list(dims)))
        return name

    def shape(self, name):
        return self._dims[name]

    def const(self, value, dtype=np.float32, name="const"):
        """An initializer holding ``value`` cast to ``dtype``."""
        arr = np.array(value, dtype=dtype, order="C")   # 0-d stays 0-d
        name = self._fresh(self._prefix + name)
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def param(self, name, array):
        """A module parameter as a float32 initializer named like its ``parameters()`` key."""
        return self.const(array, np.float32, name)

    def ints(self, values):
        """An int64 1-D initializer (shapes, axes)."""
        return self.const(np.asarray(values, np.int64).reshape(-1), np.int64, "ints")

    def op(self, op_type, *inputs, **attrs):
        out = self._fresh(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    # -- building blocks shared by the modules ---------------------------------------------
    def linear(self, x, weight, bias=None):
        """x @ W (+ b) with W (in, out)."""
        y = self.op("MatMul", x, weight)
        return y if bias is None else self.op("Add", y, bias)

    def dim(self, x, axis):
        """Size of one axis of ``x`` as an int64 (1,) tensor."""
        if axis == -1:
            return self.op("Shape", x, start=-1)
        return self.op("Shape", x, start=axis, end=axis + 1)

    def scalar(self, x1):
        """A (1,) tensor as a scalar."""
        return self.op("Squeeze", x1, self.ints([0]))

    def unsqueeze(self, x, axes):
        return self.op("Unsqueeze", x, self.ints(axes))

    def squeeze(self, x, axes):
        return self.op("Squeeze", x, self.ints(axes))

    def reshape(self, x, shape):
        """Reshape to ``shape`` (0 copies the input's axis, -1 is inferred)."""
        return self.op("Reshape", x, self.ints(shape))

    def reduce(self, kind, x, axes, keepdims=False):
        """ReduceSum / ReduceMean / ReduceL2 ... over ``axes``."""
        return self.op(f"Reduce{kind}", x, self.ints(axes), keepdims=int(keepdims))

    def arange(self, n1):
        """0, 1, ..., n-1 (int64) for an int64 (1,) size tensor."""
        return self.op("Range", self.const(0, np.int64), self.scalar(n1), self.const(1, np.int64))

    def scatter_rows(self, index, updates, rows, reduction, init=0.0):
        """out[index[e]] <reduction>= updates[e] into ``rows`` rows filled with ``init``
        (the trailing axes are those of ``updates``): a segment sum / max by target."""
        shape = self.op("Concat", rows, self.op("Shape", updates, start=1), axis=0)
        return self.op("ScatterND", self.filled(shape, init), self.unsqueeze(index, [-1]),
                       updates, reduction=reduction)

    def filled(self, shape, value):
        """A float32 tensor of the (runtime) ``shape`` holding ``value`` everywhere."""
        fill = self.onnx.helper.make_tensor("fill", self.onnx.TensorProto.FLOAT, [1],
                                            [float(value)])
        return self.op("ConstantOfShape", shape, value=fill)

    def model(self, output, graph_name):
        """The ModelProto with ``output`` exposed as the graph output ``output``."""
        helper = self.onnx.helper
        self.nodes.append(helper.make_node("Identity", [output], ["output"]))
        graph = helper.make_graph(
            self.nodes, graph_name, self.inputs,
            [helper.make_tensor_value_info("output", self.onnx.TensorProto.FLOAT, None)],
            initializer=self.initializers)
        from .. import __version__
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="ruvector", producer_version=__version__)
        # the output's dims (dynamic names carried through) come from shape inference
        return self.onnx.shape_inference.infer_shapes(model, strict_mode=True)


def axes(example, names, what):
    """ONNX dims of an example input: ``names`` per axis (a string: dynamic, None: the
    example's size, fixed); DimensionMismatch when the example's rank differs."""
    if example.ndim != len(names):
        raise DimensionMismatch(f"{what} {example.shape} must have rank {len(names)} to export")
    return [n if n is not None else int(s) for n, s in zip(names, example.shape)]


def rows_input(example, width, what, prefix="axis"):
    """Dims of an input (..., width): every leading axis dynamic (``axis0``, ``axis1``...;
    inputs whose leading axes may differ in size need different ``prefix`` es)."""
    if example.ndim < 1 or example.shape[-1] != width:
        raise DimensionMismatch(f"{what} {example.shape} must end in width {width}")
    return [f"{prefix}{i}" for i in range(example.ndim - 1)] + [width]


def example_arrays(examples, kinds):
    """Example inputs as arrays: ``kinds`` gives "float", "int" or "bool" per input."""
    dtypes = {"float": np.float32, "int": np.int64, "bool": np.bool_}
    out = []
    for i, (x, kind) in enumerate(zip(examples, kinds)):
        if kind == "float":
            out.append(as_array(x, f"example input {i}", dtype=np.float32))
        else:
            out.append(np.ascontiguousarray(np.asarray(x), dtype=dtypes[kind]))
    return tuple(out)


def export_module(module, path, example_inputs=None, *, verify=True, rtol=1e-5, atol=1e-5):
    """Write ``module``'s inference forward as an ONNX model (opset 18) to ``path``.

    ``example_inputs`` (a tuple of arrays, default: the module's own small random example)
    fix the input ranks and the static widths; every other axis (batch, heads, sequence
    lengths, nodes, edges) is dynamic.  With ``verify`` the file is run in onnxruntime on the
    example inputs and must match ``module.forward`` within ``rtol`` / ``atol`` (ExportError
    otherwise).  Returns the path written.
    """
    onnx = require("onnx", "onnx", "ONNX export")
    path = store_path(path)
    examples = module.onnx_example() if example_inputs is None else tuple(example_inputs)
    specs, examples = module.onnx_inputs(examples)
    g = OnnxGraph(onnx)
    names = [g.input(name, dims, arr.dtype) for (name, dims), arr in zip(specs, examples)]
    out = module.emit_onnx(g, *names)
    try:
        model = g.model(out, type(module).__name__)
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        # a bug of ours, not of the caller
        raise ExportError(f"the ONNX graph of {type(module).__name__} is invalid: {exc}") \
            from None
    data = model.SerializeToString()
    write_file_atomic(path, lambda tmp: open(tmp, "wb").write(data))
    if verify:
        check_against_module(module, path, dict(zip([s[0] for s in specs], examples)),
                             examples, rtol, atol)
    return path


def run_onnx(path, feeds):
    """Outputs of the ONNX model at ``path`` for ``feeds`` {input name: array} (CPU)."""
    ort = require("onnxruntime", "onnx", "Running an exported model")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def check_against_module(module, path, feeds, examples, rtol=1e-5, atol=1e-5):
    """ExportError unless the exported model reproduces ``module.forward(*examples)``."""
    was_training = module.training
    module.eval()
    try:
        expected = np.asarray(module.forward(*examples), np.float32)
    finally:
        module.train(was_training)
    got = run_onnx(path, feeds)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=rtol, atol=atol):
        err = np.abs(got - expected).max() if got.shape == expected.shape else "shape"
        raise ExportError(f"{path}: onnxruntime output {got.shape} differs from "
                          f"{type(module).__name__}.forward {expected.shape} (max error {err})")


def not_exportable(module):
    raise InvalidConfig(f"{type(module).__name__} has no ONNX export; exportable: "
                        "ScaledDotProductAttention, MultiHeadAttention, GATLayer, GINLayer, "
                        "SAGELayer, AttentionGNNLayer, GNN, AttentionDistance, Linear, "
                        "LayerNorm")
