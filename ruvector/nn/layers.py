"""Linear and LayerNorm modules with forward and backward (NumPy / BLAS)."""
import numpy as np

from .._validate import as_array, finite_number, positive_int
from ..errors import DimensionMismatch
from .matmul import matmul, matmul_tn
from .module import Module, glorot_uniform, make_rng
from .onnx_graph import example_arrays, rows_input


def _sum_leading(g):
    """Sum over every axis but the last: the gradient of a broadcast bias."""
    return g.reshape(-1, g.shape[-1]).sum(axis=0)


def _check_grad(grad, expected_shape, dtype, name="grad_output"):
    g = as_array(grad, name, dtype=dtype, allow_empty=True)
    if g.shape != expected_shape:
        raise DimensionMismatch(f"{name} {g.shape} does not match the output shape {expected_shape}")
    return g


class Linear(Module):
    """y = x W + b with W (in_features, out_features), b (out_features,).

    ``forward`` accepts (..., in_features); ``backward(dy)`` returns dx = dy W^T and
    accumulates dW = x^T dy, db = sum dy over the leading axes.  Glorot-uniform weights,
    zero bias.
    """

    def __init__(self, in_features, out_features, *, bias=True, seed=None, dtype=np.float32):
        super().__init__(dtype)
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        rng = make_rng(seed)
        self._register("weight", glorot_uniform(rng, self.in_features, self.out_features))
        if bias:
            self._register("bias", np.zeros(self.out_features))
        self._cache = None

    def forward(self, x):
        x = as_array(x, "x", dtype=self.dtype, allow_empty=True)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise DimensionMismatch(
                f"x {x.shape} must end in in_features={self.in_features}")
        y = matmul(x, self.weight)
        if "bias" in self._params:
            y += self.bias
        self._cache = x
        return y

    __call__ = forward

    def backward(self, grad_output):
        x = self._require_cache(self._cache)
        g = _check_grad(grad_output, x.shape[:-1] + (self.out_features,), self.dtype)
        self._grads["weight"] += matmul_tn(x, g)
        if "bias" in self._params:
            self._grads["bias"] += _sum_leading(g)
        return matmul(g, self.weight.T)

    def onnx_example(self):
        return (np.random.default_rng(0).standard_normal((4, self.in_features)),)

    def onnx_inputs(self, examples):
        (x,) = example_arrays(examples, ["float"])
        return [("x", rows_input(x, self.in_features, "x"))], (x,)

    def emit_onnx(self, g, x):
        return g.linear(x, g.param("weight", self.weight),
                        g.param("bias", self.bias) if "bias" in self._params else None)


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (Ba et al. 2016).

    Parameters ``weight (D,)`` (ones) and ``bias (D,)`` (zeros); biased variance as in
    PyTorch.  Backward, with xhat the normalised input and g = dy * weight:
    dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps).
    """

    def __init__(self, dim, *, eps=1e-5, dtype=np.float32):
        super().__init__(dtype)
        self.dim = positive_int(dim, "dim")
        self.eps = finite_number(eps, "eps", positive=True)
        self._register("weight", np.ones(self.dim))
        self._register("bias", np.zeros(self.dim))
        self._cache = None

    def forward(self, x):
        x = as_array(x, "x", dtype=self.dtype, allow_empty=True)
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise DimensionMismatch(f"x {x.shape} must end in dim={self.dim}")
        mean = x.mean(axis=-1, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axis=-1, keepdims=True)
        inv_std = 1.0 / np.sqrt(var + self.dtype.type(self.eps))
        xhat = centered * inv_std
        self._cache = (xhat, inv_std)
        return xhat * self.weight + self.bias

    __call__ = forward

    def backward(self, grad_output):
        xhat, inv_std = self._require_cache(self._cache)
        g_out = _check_grad(grad_output, xhat.shape, self.dtype)
        self._grads["weight"] += _sum_leading(g_out * xhat)
        self._grads["bias"] += _sum_leading(g_out)
        g = g_out * self.weight
        return (g - g.mean(axis=-1, keepdims=True)
                - xhat * (g * xhat).mean(axis=-1, keepdims=True)) * inv_std

    def onnx_example(self):
        return (np.random.default_rng(0).standard_normal((4, self.dim)),)

    def onnx_inputs(self, examples):
        (x,) = example_arrays(examples, ["float"])
        return [("x", rows_input(x, self.dim, "x"))], (x,)

    def emit_onnx(self, g, x):
        return g.op("LayerNormalization", x, g.param("weight", self.weight),
                    g.param("bias", self.bias), axis=-1, epsilon=float(self.eps))
