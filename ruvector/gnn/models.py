"""Attention GNN blocks, GNN stacks and attention pooling (forward and backward)."""
import numpy as np
from scipy.special import erf

from .._validate import as_array, choice, index_array, positive_int
from .layers import GATLayer, graph_example, graph_onnx_inputs
from ..errors import DimensionMismatch, InvalidConfig, InvalidInput
from ..nn.layers import LayerNorm, Linear
from ..nn.module import Module, make_rng

_SQRT2 = np.sqrt(2.0)


def _activation(name):
    """(f, f') for "relu" or "gelu" (exact, x Phi(x), as torch.nn.GELU())."""
    if name == "relu":
        return (lambda x: np.maximum(x, 0)), (lambda x: (x > 0).astype(x.dtype))
    if name == "gelu":
        def gelu(x):
            return (0.5 * x * (1 + erf(x / _SQRT2))).astype(x.dtype)

        def dgelu(x):
            cdf = 0.5 * (1 + erf(x / _SQRT2))
            pdf = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
            return (cdf + x * pdf).astype(x.dtype)
        return gelu, dgelu
    raise InvalidConfig(f"activation must be 'relu' or 'gelu', got {name!r}")


def _onnx_activation(g, name, x):
    """relu, or the exact gelu 0.5 x (1 + erf(x / sqrt 2)), in ONNX."""
    if name == "relu":
        return g.op("Relu", x)
    cdf = g.op("Add", g.op("Erf", g.op("Div", x, g.const(_SQRT2))), g.const(1.0))
    return g.op("Mul", g.op("Mul", x, cdf), g.const(0.5))


class AttentionGNNLayer(Module):
    """Transformer-style graph block (post-norm):

        h = LayerNorm1(x + GAT(x, graph))
        out = LayerNorm2(h + W2 act(W1 h + b1) + b2)

    GAT has ``heads`` heads of ``dim / heads`` channels, concatenated, with self-loops.
    Parameters are prefixed ``attn.``, ``norm1.``, ``ff1.``, ``ff2.``, ``norm2.``.
    """

    def __init__(self, dim, heads=4, *, ff_dim=None, activation="gelu", dropout=0.0,
                 seed=None, dtype=np.float32):
        super().__init__(dtype)
        self.dim = positive_int(dim, "dim")
        heads = positive_int(heads, "heads")
        if self.dim % heads:
            raise InvalidConfig(f"dim={dim} is not divisible by heads={heads}")
        self.activation = activation
        self.act, self.dact = _activation(activation)
        ff_dim = positive_int(ff_dim if ff_dim is not None else 2 * dim, "ff_dim")
        rng = make_rng(seed)
        self.attn = self._add_child("attn", GATLayer(dim, dim // heads, heads, dropout=dropout,
                                                     seed=rng, dtype=dtype))
        self.norm1 = self._add_child("norm1", LayerNorm(dim, dtype=dtype))
        self.ff1 = self._add_child("ff1", Linear(dim, ff_dim, seed=rng, dtype=dtype))
        self.ff2 = self._add_child("ff2", Linear(ff_dim, dim, seed=rng, dtype=dtype))
        self.norm2 = self._add_child("norm2", LayerNorm(dim, dtype=dtype))
        self._cache = None

    def forward(self, x, graph):
        x = as_array(x, "x", dtype=self.dtype, ndim=2)
        h = self.norm1.forward(x + self.attn.forward(x, graph))
        pre = self.ff1.forward(h)
        out = self.norm2.forward(h + self.ff2.forward(self.act(pre)))
        self._cache = pre
        return out

    __call__ = forward

    def backward(self, grad_out):
        pre = self._require_cache(self._cache)
        g_sum2 = self.norm2.backward(grad_out)             # d(h + ff(h))
        g_h = g_sum2 + self.ff1.backward(self.ff2.backward(g_sum2) * self.dact(pre))
        g_sum1 = self.norm1.backward(g_h)                  # d(x + attn(x))
        return g_sum1 + self.attn.backward(g_sum1)


    def onnx_example(self):
        return graph_example(self.dim)

    def onnx_inputs(self, examples):
        return graph_onnx_inputs(examples, self.dim)

    def emit_onnx(self, g, x, edge_index):
        with g.scope("attn"):
            a = self.attn.emit_onnx(g, x, edge_index)
        with g.scope("norm1"):
            h = self.norm1.emit_onnx(g, g.op("Add", x, a))
        with g.scope("ff1"):
            pre = self.ff1.emit_onnx(g, h)
        with g.scope("ff2"):
            ff = self.ff2.emit_onnx(g, _onnx_activation(g, self.activation, pre))
        with g.scope("norm2"):
            return self.norm2.emit_onnx(g, g.op("Add", h, ff))


class GNN(Module):
    """A stack of graph layers applied in order: ``forward(x, graph)``, ``backward(g)``.

    ``activation`` ("relu", or None) is applied between layers (not after the last).
    """

    def __init__(self, layers, activation=None):
        layers = list(layers)
        if not layers:
            raise InvalidConfig("GNN needs at least one layer")
        super().__init__(layers[0].dtype)
        self.layers = layers
        for i, layer in enumerate(layers):
            self._add_child(str(i), layer)
        self.activation = activation
        if activation is not None:
            self.act, self.dact = _activation(activation)
        self._cache = None

    def forward(self, x, graph):
        pre_acts = []
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, graph)
            if self.activation is not None and i < len(self.layers) - 1:
                pre_acts.append(x)
                x = self.act(x)
        self._cache = pre_acts
        return x

    __call__ = forward

    def backward(self, grad_out):
        pre_acts = self._require_cache(self._cache)
        g = grad_out
        for i in range(len(self.layers) - 1, -1, -1):
            if self.activation is not None and i < len(self.layers) - 1:
                g = g * self.dact(pre_acts[i])
            g = self.layers[i].backward(g)
            if isinstance(g, tuple):  # a layer with edge features: keep the x gradient
                g = g[0]
        return g

    def onnx_example(self):
        return self.layers[0].onnx_example()

    def onnx_inputs(self, examples):
        return self.layers[0].onnx_inputs(examples)

    def emit_onnx(self, g, x, edge_index):
        for i, layer in enumerate(self.layers):
            with g.scope(str(i)):
                x = layer.emit_onnx(g, x, edge_index)
            if self.activation is not None and i < len(self.layers) - 1:
                x = _onnx_activation(g, self.activation, x)
        return x

    def train_step(self, graph, targets, mask=None, *, loss="mse", optimizer, x=None,
                   max_grad_norm=None):
        """One optimisation step on the whole graph; returns the loss.

        ``graph``: a GraphStore (features from its embeddings unless ``x`` is given), an
        edge_index or a CSRGraph (then ``x`` is required).  ``loss``: "mse" (targets (N, out)
        floats) or "cross_entropy" (targets (N,) class ids, outputs are logits); ``mask``
        (N,) bool selects the nodes that count (semi-supervised).  Training mode is on
        during the step (dropout active).
        """
        from ..training import clip_grad_norm, cross_entropy, mse_loss
        losses = {"mse": mse_loss, "cross_entropy": cross_entropy}
        choice(loss, "loss", sorted(losses))
        x = _features_and_graph(graph, x)
        self.train()
        optimizer.zero_grad()
        out = self.forward(x, graph)
        value, grad = losses[loss](out, targets, mask)
        self.backward(grad)
        if max_grad_norm is not None:
            clip_grad_norm(self, max_grad_norm)
        optimizer.step()
        self.eval()
        return value

    def fit(self, graph, targets, mask=None, *, epochs, loss="mse", optimizer, x=None,
            scheduler=None, max_grad_norm=None, progress=True):
        """``epochs`` full-graph :meth:`train_step` calls (stepping ``scheduler`` after each);
        returns the loss history."""
        from .._progress import progress as progress_bar
        history = []
        for _ in progress_bar(range(positive_int(epochs, "epochs")), desc="train",
                              enabled=progress, unit="epoch"):
            history.append(self.train_step(graph, targets, mask, loss=loss, optimizer=optimizer,
                                           x=x, max_grad_norm=max_grad_norm))
            if scheduler is not None:
                scheduler.step()
        return history

    def predict(self, graph, x=None):
        """Outputs in inference mode (dropout off)."""
        self.eval()
        return self.forward(_features_and_graph(graph, x), graph)


def _features_and_graph(graph, x):
    if x is None:
        x = getattr(graph, "features", None)
        if x is None:
            raise InvalidInput("pass x= (node features) when the graph is not a GraphStore")
    return x


class AttentionalPooling(Module):
    """Gated attention pooling (Li et al. 2016; PyG ``AttentionalAggregation``):

        s_i = x_i . w + b,  a = softmax_i(s),  out = sum_i a_i x_i

    Parameters ``weight (D,)``, ``bias ()``.  ``forward(x (n, D)) -> (out (D,), a (n,))``.
    """

    def __init__(self, dim, *, seed=None, dtype=np.float32):
        super().__init__(dtype)
        self.dim = positive_int(dim, "dim")
        rng = make_rng(seed)
        self._register("weight", rng.uniform(-1, 1, self.dim) / np.sqrt(self.dim))
        self._register("bias", np.array(0.0))
        self._cache = None

    def forward(self, x):
        x = as_array(x, "x", dtype=self.dtype, ndim=2)
        if x.shape[1] != self.dim:
            raise DimensionMismatch(f"x {x.shape} must have {self.dim} features")
        s = x @ self.weight + self.bias
        a = np.exp(s - s.max())
        a /= a.sum()
        self._cache = (x, a)
        return a @ x, a

    def backward(self, grad_out):
        """Gradient for x given d loss / d out (D,); accumulates ``grads``."""
        x, a = self._require_cache(self._cache)
        g = as_array(grad_out, "grad_out", dtype=self.dtype, ndim=1)
        da = x @ g
        ds = a * (da - (a * da).sum())
        self._grads["weight"] += x.T @ ds
        self._grads["bias"] += ds.sum()
        return a[:, None] * g[None, :] + ds[:, None] * self.weight[None, :]


def subgraph_embedding(graph, nodes, method="attention", query=None, pooling=None, *, by=None):
    """Embedding of a node subset and its pooling weights: ``(embedding (D,), weights (n,))``.

    ``graph``: an (N, D) feature array (``nodes`` are row indices) or a GraphStore (``nodes``
    are node keys as queries return them; see :meth:`GraphStore.indices_of` for ``by``).
    method "mean": the mean (uniform weights); "attention": weights
    ``softmax_i(q . x_i / sqrt(D))`` with ``q`` = ``query`` or the subgraph mean; "gated": a
    trained :class:`AttentionalPooling` (``pooling=``, a fresh one when None).
    """
    feats = as_array(getattr(graph, "features", graph), "features", ndim=2)
    if hasattr(graph, "indices_of"):
        idx = graph.indices_of(nodes, by)
    elif by not in (None, "index"):
        raise InvalidInput(f"by={by!r} needs a GraphStore; a feature array takes row indices")
    else:
        idx = index_array(nodes, "nodes", size=feats.shape[0])
    if idx.size == 0:
        raise InvalidInput("nodes is empty")
    x = feats[idx]
    if method == "mean":
        return x.mean(axis=0), np.full(len(idx), 1.0 / len(idx), np.float32)
    if method == "attention":
        q = x.mean(axis=0) if query is None else as_array(query, "query", ndim=1)
        if q.shape[0] != x.shape[1]:
            raise DimensionMismatch(f"query {q.shape} must have {x.shape[1]} features")
        s = (x @ q) / np.sqrt(x.shape[1])
        w = np.exp(s - s.max())
        w /= w.sum()
        return w @ x, w.astype(np.float32)
    if method == "gated":
        pool = pooling if pooling is not None else AttentionalPooling(x.shape[1], seed=0)
        return pool.forward(x)
    raise InvalidConfig(f"method must be 'attention', 'mean' or 'gated', got {method!r}")
