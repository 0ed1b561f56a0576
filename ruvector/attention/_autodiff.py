"""A small reverse-mode automatic differentiation over NumPy arrays (float64).

The geometric formulas (Poincaré ball, sphere, hyperbolic attention) are written once with
the functions of this module; called on plain arrays they compute values with NumPy, called
on :class:`Tensor` they also record the operations, and :func:`grad` back-propagates.
Backward passes of the geometric layers recompute their forward on Tensors from the saved
inputs.  Broadcasting is supported: gradients are summed back to each operand's shape.
"""
import numpy as np


class Tensor:
    __slots__ = ("value", "parents", "grad")
    __array_priority__ = 100

    def __init__(self, value, parents=()):
        self.value = np.asarray(value, dtype=np.float64)
        self.parents = parents          # ((tensor, vjp: upstream -> contribution), ...)
        self.grad = None

    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: self.value.ndim)

    def __add__(self, o):
        return add(self, o)

    __radd__ = __add__

    def __sub__(self, o):
        return add(self, neg(o))

    def __rsub__(self, o):
        return add(o, neg(self))

    def __mul__(self, o):
        return mul(self, o)

    __rmul__ = __mul__

    def __truediv__(self, o):
        return div(self, o)

    def __rtruediv__(self, o):
        return div(o, self)

    def __neg__(self):
        return neg(self)

    def __getitem__(self, idx):
        return getitem(self, idx)


def value(x):
    return x.value if isinstance(x, Tensor) else x


def _unbroadcast(g, shape):
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def _node(val, *pairs):
    """A Tensor for ``val`` when any input is a Tensor (pairs: (input, vjp))."""
    parents = tuple((p, f) for p, f in pairs if isinstance(p, Tensor))
    return Tensor(val, parents) if parents else val


def add(a, b):
    va, vb = value(a), value(b)
    out = va + vb
    return _node(out, (a, lambda g: _unbroadcast(g, np.shape(va))),
                 (b, lambda g: _unbroadcast(g, np.shape(vb))))


def neg(a):
    return _node(-value(a), (a, lambda g: -g))


def mul(a, b):
    va, vb = value(a), value(b)
    return _node(va * vb, (a, lambda g: _unbroadcast(g * vb, np.shape(va))),
                 (b, lambda g: _unbroadcast(g * va, np.shape(vb))))


def div(a, b):
    va, vb = value(a), value(b)
    out = va / vb
    return _node(out, (a, lambda g: _unbroadcast(g / vb, np.shape(va))),
                 (b, lambda g: _unbroadcast(-g * out / vb, np.shape(vb))))


def _unary(fn, dfn):
    def op(a):
        va = value(a)
        out = fn(va)
        return _node(out, (a, lambda g: g * dfn(va, out)))
    return op


sqrt = _unary(np.sqrt, lambda x, y: 0.5 / y)
tanh = _unary(np.tanh, lambda x, y: 1.0 - y * y)
artanh = _unary(np.arctanh, lambda x, y: 1.0 / (1.0 - x * x))
exp = _unary(np.exp, lambda x, y: y)
log = _unary(np.log, lambda x, y: 1.0 / x)
cos = _unary(np.cos, lambda x, y: -np.sin(x))
sin = _unary(np.sin, lambda x, y: np.cos(x))
arccos = _unary(np.arccos, lambda x, y: -1.0 / np.sqrt(np.maximum(1.0 - x * x, 1e-300)))


def clip(a, lo, hi):
    """Clamp; the gradient passes where the value is inside [lo, hi]."""
    va = value(a)
    inside = (va >= lo) & (va <= hi)
    return _node(np.clip(va, lo, hi), (a, lambda g: g * inside))


def maximum(a, lo):
    """max(a, lo) for a constant lo (gradient where a > lo)."""
    va = value(a)
    return _node(np.maximum(va, lo), (a, lambda g: g * (va > lo)))


def where(cond, a, b):
    va, vb = value(a), value(b)
    return _node(np.where(cond, va, vb),
                 (a, lambda g: _unbroadcast(np.where(cond, g, 0.0), np.shape(va))),
                 (b, lambda g: _unbroadcast(np.where(cond, 0.0, g), np.shape(vb))))


def sum(a, axis=-1, keepdims=True):
    va = value(a)
    out = va.sum(axis=axis, keepdims=keepdims)

    def vjp(g):
        g = g if keepdims else np.expand_dims(g, axis)
        return np.broadcast_to(g, va.shape).copy()
    return _node(out, (a, vjp))


def getitem(a, idx):
    va = value(a)

    def vjp(g):
        out = np.zeros_like(va)
        np.add.at(out, idx, g)
        return out
    return _node(va[idx], (a, vjp))


def concatenate(parts, axis=-1):
    vals = [value(p) for p in parts]
    out = np.concatenate(vals, axis=axis)
    bounds = np.cumsum([0] + [v.shape[axis] for v in vals])
    pairs = []
    for p, lo, hi in zip(parts, bounds[:-1], bounds[1:]):
        def vjp(g, lo=lo, hi=hi):
            return np.take(g, np.arange(lo, hi), axis=axis)
        pairs.append((p, vjp))
    return _node(out, *pairs)


def dot(a, b):
    """sum(a * b, axis=-1, keepdims=True)."""
    return sum(mul(a, b))


def norm(a, eps):
    """sqrt(sum a^2 + 0) clamped below by eps (last axis, keepdims)."""
    return maximum(sqrt(maximum(dot(a, a), eps * eps)), eps)


def softmax(z, axis=-1):
    vz = value(z)
    e = np.exp(vz - vz.max(axis=axis, keepdims=True))
    out = e / e.sum(axis=axis, keepdims=True)
    return _node(out, (z, lambda g: out * (g - (g * out).sum(axis=axis, keepdims=True))))


def matmul(a, b):
    va, vb = value(a), value(b)
    out = va @ vb
    return _node(out, (a, lambda g: _unbroadcast(g @ np.swapaxes(vb, -1, -2), np.shape(va))),
                 (b, lambda g: _unbroadcast(np.swapaxes(va, -1, -2) @ g, np.shape(vb))))


def grad(output, inputs, upstream):
    """Gradients of sum(output * upstream) with respect to ``inputs`` (Tensors)."""
    order, seen = [], set()
    stack = [(output, False)]
    while stack:                       # iterative topological sort (deep graphs are fine)
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for parent, _ in node.parents:
            if id(parent) not in seen:
                stack.append((parent, False))
    for node in order:
        node.grad = None
    output.grad = np.broadcast_to(np.asarray(upstream, np.float64), output.shape).copy()
    for node in reversed(order):
        if node.grad is None:
            continue
        for parent, vjp in node.parents:
            contrib = vjp(node.grad)
            parent.grad = contrib if parent.grad is None else parent.grad + contrib
    return [np.zeros(t.shape) if t.grad is None else t.grad for t in inputs]
