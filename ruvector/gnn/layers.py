"""Graph layers over ``edge_index`` (2, E), row 0 = source j, row 1 = target i, messages
j -> i, normalised over the incoming edges of each target: GATLayer, GINLayer, SAGELayer.

Every layer is a Module with ``forward(x, graph, ...)`` and ``backward(grad_out)``; ``graph``
is an edge_index array or a :class:`ruvector.nn.CSRGraph`.  Kernels: CSR by target for
the forward and target-side gradients, CSR by source for scatters (deterministic).
"""
import numpy as np

from .._deprecated import renamed
from .._validate import (as_array, check_overflow, choice, finite_number, integer, positive_int,
                         probability)
from ..errors import DimensionMismatch, InvalidConfig, InvalidInput
from ..nn.csr import as_csr, k_hop_nodes
from ..nn.matmul import matmul, matmul_tn
from ..nn.module import Module, glorot_uniform, make_rng
from ..nn.onnx_graph import NEG_LARGE, example_arrays
from .._threads import num_workers
from ..kernels import gnn_dense as KD
from ..kernels import gnn as K


def _features(x, width, dtype, name="x", allow_empty=False):
    x = as_array(x, name, dtype=dtype, ndim=2, allow_empty=allow_empty)
    if x.shape[1] != width:
        raise DimensionMismatch(f"{name} {x.shape} must have {width} features per row")
    return x


def _workers(n_rows):
    """Workers for a row-blocked kernel: no more than there are blocks of rows."""
    return max(1, min(num_workers(), -(-n_rows // KD.RB)))


def _transposed(w):
    """A C-contiguous copy of w^T (the B operand of a product with w^T)."""
    return np.ascontiguousarray(w.T)


def _worker_partials(module, W, names):
    """Zeroed per-worker partial sums (W, *shape) for the gradients of ``names`` (in order),
    for kernels that deal row blocks to W workers."""
    return {name: np.zeros((W,) + getattr(module, name).shape, module.dtype) for name in names}


def _add_partials(module, parts):
    """Add the workers' partial sums into the module's gradients."""
    grads = module.grads
    for name, part in parts.items():
        grads[name] += part.sum(axis=0)


def _grad(grad, shape, dtype):
    g = as_array(grad, "grad_out", dtype=dtype, allow_empty=True)
    if g.shape != shape:
        raise DimensionMismatch(f"grad_out {g.shape} does not match the output {shape}")
    return g


def graph_example(in_dim, edge_dim=None):
    """A small random (x, edge_index[, edge_attr]) with a self-loop, a parallel edge and a
    node without incoming edges: the default example of the graph layers' ONNX export."""
    rng = np.random.default_rng(0)
    edge_index = np.array([[0, 1, 2, 3, 3, 4, 1, 2], [1, 2, 0, 0, 0, 4, 4, 3]])
    example = (rng.standard_normal((6, in_dim)), edge_index)
    if edge_dim is not None:
        example += (rng.standard_normal((edge_index.shape[1], edge_dim)),)
    return example


def graph_onnx_inputs(examples, in_dim, edge_dim=None):
    """ONNX inputs of a graph layer: x ("num_nodes", in_dim), edge_index (2, "num_edges")
    int64, and with ``edge_dim`` edge_attr ("num_edges", edge_dim)."""
    want = 2 if edge_dim is None else 3
    if len(examples) != want:
        raise InvalidInput("example inputs are (x, edge_index" +
                           (", edge_attr)" if edge_dim is not None else ")"))
    arrays = example_arrays(examples, ["float", "int", "float"])
    x = _features(arrays[0], in_dim, np.float32)
    as_csr(arrays[1], x.shape[0])   # the indices are checked
    specs = [("x", ["num_nodes", in_dim]), ("edge_index", [2, "num_edges"])]
    if edge_dim is not None:
        attr = _features(arrays[2], edge_dim, np.float32, "edge_attr")
        if attr.shape[0] != arrays[1].shape[1]:
            raise DimensionMismatch(f"edge_attr has {attr.shape[0]} rows for "
                                    f"{arrays[1].shape[1]} edges")
        specs.append(("edge_attr", ["num_edges", edge_dim]))
    return specs, arrays


def _onnx_edges(g, edge_index):
    """(source, target) int64 (E,) tensors of an edge_index tensor."""
    return (g.op("Gather", edge_index, g.const(0, np.int64), axis=0),
            g.op("Gather", edge_index, g.const(1, np.int64), axis=0))


def _onnx_in_degree(g, dst, n):
    """Incoming edges per node, float32 (N,)."""
    return g.scatter_rows(dst, g.filled(g.op("Shape", dst), 1.0), n, "add")


def _onnx_sum_into(g, values, src, dst, n):
    """sum over the edges j -> i of values_j, per target i: (N, ...)."""
    return g.scatter_rows(dst, g.op("Gather", values, src, axis=0), n, "add")


class GATLayer(Module):
    """Graph attention layer (Velickovic et al. 2018), PyTorch Geometric ``GATConv`` semantics.

        h_j = x_j W  (H heads of C = out_dim channels)
        e_ij = LeakyReLU(a_src . h_j + a_dst . h_i [+ a_edge . (e_ji W_e)])
        alpha_ij = softmax over the incoming edges of i,   out_i = sum_j alpha_ij h_j (+ bias)

    Heads are concatenated (N, H C) or averaged (N, C).  With ``add_self_loops`` existing
    self-loops are removed and one per node is added (its edge feature = mean of the node's
    incoming edge features, zeros for none); without, a node with no incoming edge gets the
    bias only.  Dropout on alpha in training mode.  Parameters: ``weight (in, H C)``,
    ``att_src``, ``att_dst (H, C)``, ``bias (H C,)`` or ``(C,)``, and with ``edge_dim``
    ``weight_edge (edge_dim, H C)``, ``att_edge (H, C)``.
    """

    def __init__(self, in_dim, out_dim, heads=1, *, concat=True, negative_slope=0.2,
                 dropout=0.0, add_self_loops=True, bias=True, edge_dim=None, seed=None,
                 dtype=np.float32):
        super().__init__(dtype)
        self.in_dim = positive_int(in_dim, "in_dim")
        self.out_dim = positive_int(out_dim, "out_dim")
        self.heads = positive_int(heads, "heads")
        self.concat = bool(concat)
        self.negative_slope = finite_number(negative_slope, "negative_slope")
        self.dropout = probability(dropout, "dropout")
        self.add_self_loops = bool(add_self_loops)
        self.edge_dim = None if edge_dim is None else positive_int(edge_dim, "edge_dim")
        rng = make_rng(seed)
        H, C = self.heads, self.out_dim
        self._register("weight", glorot_uniform(rng, self.in_dim, H * C))
        self._register("att_src", glorot_uniform(rng, H, C))
        self._register("att_dst", glorot_uniform(rng, H, C))
        if self.edge_dim is not None:
            self._register("weight_edge", glorot_uniform(rng, self.edge_dim, H * C))
            self._register("att_edge", glorot_uniform(rng, H, C))
        if bias:
            self._register("bias", np.zeros(H * C if self.concat else C))
        self._dropout_rng = np.random.default_rng(rng.integers(2**62))
        self._cache = None

    def _prepare(self, x, graph, edge_attr):
        x = _features(x, self.in_dim, self.dtype)
        g = as_csr(graph, x.shape[0])
        attr = None
        if (edge_attr is None) != (self.edge_dim is None):
            raise InvalidConfig("edge_attr must be given exactly when the layer has edge_dim")
        if edge_attr is not None:
            attr = _features(edge_attr, self.edge_dim, self.dtype, "edge_attr")
            if attr.shape[0] != g.num_edges:
                raise DimensionMismatch(f"edge_attr has {attr.shape[0]} rows for "
                                        f"{g.num_edges} edges")
        kept = None
        if self.add_self_loops:
            g, kept = g.self_looped
            if attr is not None:
                attr = self._loop_attr(attr, kept, g)
        return x, g, attr, kept

    @staticmethod
    def _loop_attr(attr, kept, g):
        """Kept edges' features, then per node the mean over its incoming kept edges."""
        kept_attr = attr[kept]
        n = g.num_nodes
        sums = np.zeros((n, attr.shape[1]), attr.dtype)
        np.add.at(sums, g.dst[:len(kept)], kept_attr)
        deg = np.bincount(g.dst[:len(kept)], minlength=n).astype(attr.dtype)
        loops = sums / np.maximum(deg, 1)[:, None]
        return np.ascontiguousarray(np.concatenate([kept_attr, loops]))

    @renamed(return_attention="need_weights")
    def forward(self, x, graph, edge_attr=None, need_weights=False):
        """Output (N, H out_dim) or (N, out_dim); with ``need_weights`` also
        ``(edge_index_with_self_loops (2, E'), alpha (E', H))``."""
        x, g, attr, kept = self._prepare(x, graph, edge_attr)
        N, H, C = x.shape[0], self.heads, self.out_dim
        h = np.empty((N, H, C), self.dtype)
        s_src = np.empty((N, H), self.dtype)
        s_dst = np.empty((N, H), self.dtype)
        K.gat_project(x, self.weight, self.att_src, self.att_dst, h, s_src, s_dst, _workers(N))
        he = None
        s_edge = np.zeros((1, H), self.dtype)
        if attr is not None:
            he = matmul(attr, self.weight_edge).reshape(-1, H, C)
            s_edge = np.ascontiguousarray(np.einsum("ehc,hc->eh", he, self.att_edge))
        drop = self.dropout if self.training else 0.0
        seed = int(self._dropout_rng.integers(2**62)) if drop > 0 else 0
        alpha = np.empty((g.num_edges, H), self.dtype)
        out = np.empty((N, H, C), self.dtype)
        K.gat_forward(h, s_src, s_dst, s_edge, attr is not None, g.nbr_t, g.perm_t, g.indptr_t,
                      self.negative_slope, drop, seed, alpha, out)
        self._cache = (x, g, attr, kept, h, he, s_src, s_dst, s_edge, alpha, drop, seed,
                       None if edge_attr is None else np.shape(edge_attr))
        y = out.reshape(N, H * C) if self.concat else out.mean(axis=1)
        if "bias" in self._params:
            y = y + self.bias
        check_overflow(y, "GATLayer output")
        if need_weights:
            return y, (g.edge_index, alpha[g.pos_t])  # rows back in edge order
        return y

    __call__ = forward

    def backward(self, grad_out):
        """Gradient for x (and edge_attr when the layer has edge_dim); fills ``grads``."""
        x, g, attr, kept, h, he, s_src, s_dst, s_edge, alpha, drop, seed, attr_shape = \
            self._require_cache(self._cache)
        N, H, C = x.shape[0], self.heads, self.out_dim
        gy = _grad(grad_out, (N, H * C if self.concat else C), self.dtype)
        if "bias" in self._params:
            self._grads["bias"] += gy.sum(axis=0)
        gh = gy.reshape(N, H, C) if self.concat else \
            np.repeat(gy[:, None, :] / H, H, axis=1)
        gh = np.ascontiguousarray(gh, dtype=self.dtype)
        E = g.num_edges
        ds = np.empty((E, H), self.dtype)
        dh = np.empty((N, H, C), self.dtype)
        K.gat_backward_messages(gh, h, alpha, g.nbr_s, g.tslot_s, g.perm_s, g.indptr_s, drop,
                                seed, ds, dh)
        d_dst = np.empty((N, H), self.dtype)
        K.gat_backward_scores(alpha, s_src, s_dst, s_edge, attr is not None, g.nbr_t, g.perm_t,
                              g.indptr_t, self.negative_slope, ds, d_dst)
        dx = np.empty_like(x)
        parts = _worker_partials(self, _workers(N), ("att_src", "att_dst", "weight"))
        K.gat_backward_finish(ds, g.tslot_s, g.indptr_s, d_dst, self.att_src, self.att_dst, h,
                              x, _transposed(self.weight), dh, dx, *parts.values())
        _add_partials(self, parts)
        if attr is None:
            return dx
        ds = ds[g.pos_t]  # edge order, like he
        self._grads["att_edge"] += np.einsum("eh,ehc->hc", ds, he)
        dhe = (ds[:, :, None] * self.att_edge).reshape(E, H * C)
        self._grads["weight_edge"] += matmul_tn(attr, dhe)
        d_attr = matmul(dhe, _transposed(self.weight_edge))
        return dx, self._edge_attr_grad(d_attr, kept, g, attr_shape)

    @renamed(keys="key", values="value")
    def forward_with_edges(self, query, key, value, edge_index, edge_attr=None):
        """Graph attention of one query node over the key nodes linked to it (no self-loop).

        ``edge_index`` lists the query's incoming edges: a (2, E) array whose row 0 holds key
        indices and row 1 zeros (the query), or just the (E,) key indices; parallel edges
        count separately, and ``edge_attr`` (E, edge_dim) gives their features.  Per head:

            alpha_e = softmax_e LeakyReLU(a_dst . q W + a_src . k_j W [+ a_edge . f_e W_e])
            out = sum_e alpha_e v_j W (+ bias),  heads concatenated or averaged

        i.e. the layer's output at a node with features ``query`` whose in-neighbours have
        key features ``key`` (for scores) and value features ``value`` (for messages).
        With no edge the output is the bias (zeros without one).
        """
        q = _features(np.reshape(query, (1, -1)), self.in_dim, self.dtype, "query")
        k = _features(key, self.in_dim, self.dtype, "key")
        v = _features(value, self.in_dim, self.dtype, "value")
        if v.shape[0] != k.shape[0]:
            raise DimensionMismatch(f"key {k.shape} and value {v.shape} differ in length")
        ei = np.asarray(edge_index)
        if ei.ndim == 2:
            if ei.shape[0] != 2 or (ei.size and np.any(ei[1] != 0)):
                raise InvalidInput("edge_index must be (2, E) with row 1 all 0 (the query)")
            ei = ei[0]
        src = as_csr(np.stack([ei, np.zeros_like(ei)]).reshape(2, -1), k.shape[0]).src
        H, C = self.heads, self.out_dim
        s = np.einsum("hc,hc->h", (q @ self.weight).reshape(H, C), self.att_dst) + \
            np.einsum("ehc,hc->eh", (k[src] @ self.weight).reshape(-1, H, C), self.att_src)
        if (edge_attr is None) != (self.edge_dim is None):
            raise InvalidConfig("edge_attr must be given exactly when the layer has edge_dim")
        if edge_attr is not None:
            f = _features(edge_attr, self.edge_dim, self.dtype, "edge_attr", allow_empty=True)
            if f.shape[0] != len(src):
                raise DimensionMismatch(f"edge_attr has {f.shape[0]} rows for {len(src)} edges")
            s = s + np.einsum("ehc,hc->eh", (f @ self.weight_edge).reshape(-1, H, C),
                              self.att_edge)
        out = np.zeros((H, C), self.dtype)
        if len(src):
            z = np.where(s > 0, s, self.negative_slope * s)
            a = np.exp(z - z.max(axis=0))
            a /= a.sum(axis=0)
            out = np.einsum("eh,ehc->hc", a, (v[src] @ self.weight).reshape(-1, H, C))
        y = out.reshape(H * C) if self.concat else out.mean(axis=0)
        return (y + self.bias if "bias" in self._params else y).astype(self.dtype, copy=False)

    def forward_neighborhood(self, node_idx, node_features, edge_index, edge_attr=None):
        """The layer's output for one node, computed from its incoming edges only (O(degree));
        equals ``forward(node_features, edge_index)[node_idx]``."""
        return self.forward_k_hop(node_idx, node_features, edge_index, 1, edge_attr)

    def forward_k_hop(self, node_idx, node_features, edge_index, k, edge_attr=None):
        """Row ``node_idx`` of the layer applied ``k`` times (same weights), computed on the
        k-hop in-neighbourhood only; exact, since nothing farther reaches the node."""
        x = _features(node_features, self.in_dim, self.dtype)
        k = integer(k, "k", minimum=1)
        out_width = self.heads * self.out_dim if self.concat else self.out_dim
        if int(k) > 1 and out_width != self.in_dim:
            raise InvalidConfig(f"forward_k_hop with k > 1 needs output width {out_width} "
                                f"== in_dim {self.in_dim}")
        g = as_csr(edge_index, x.shape[0])
        node = integer(node_idx, "node_idx", maximum=x.shape[0] - 1, error=InvalidInput)
        # walk edges backwards: who can reach the node in k hops
        ball = [node] + k_hop_nodes(node, k, g.sources_into)
        nodes = np.array(sorted(ball), dtype=np.int64)
        local = np.full(x.shape[0], -1, np.int64)
        local[nodes] = np.arange(len(nodes))
        keep = (local[g.src] >= 0) & (local[g.dst] >= 0)
        sub_ei = np.stack([local[g.src[keep]], local[g.dst[keep]]])
        attr = None if edge_attr is None else np.asarray(edge_attr)[keep]
        h = x[nodes]
        for _ in range(int(k)):
            h = self.forward(h, sub_ei, attr)
        return h[local[node]]

    # -- ONNX export ------------------------------------------------------------------------
    def onnx_example(self):
        return graph_example(self.in_dim, self.edge_dim)

    def onnx_inputs(self, examples):
        return graph_onnx_inputs(examples, self.in_dim, self.edge_dim)

    def emit_onnx(self, g, x, edge_index, edge_attr=None):
        """The inference forward: self-loops as in :meth:`_prepare`, the per-target softmax
        max-subtracted (a scatter max), messages summed by a scatter add."""
        H, C = self.heads, self.out_dim
        n = g.dim(x, 0)
        src, dst = _onnx_edges(g, edge_index)
        if self.add_self_loops:
            keep = g.op("Not", g.op("Equal", src, dst))
            src, dst = (g.op("Compress", t, keep, axis=0) for t in (src, dst))
            if edge_attr is not None:
                edge_attr = g.op("Compress", edge_attr, keep, axis=0)
                loops = g.op("Div", g.scatter_rows(dst, edge_attr, n, "add"), g.op(
                    "Max", g.unsqueeze(_onnx_in_degree(g, dst, n), [1]), g.const(1.0)))
                edge_attr = g.op("Concat", edge_attr, loops, axis=0)
            nodes = g.arange(n)
            src, dst = (g.op("Concat", t, nodes, axis=0) for t in (src, dst))
        h = g.reshape(g.linear(x, g.param("weight", self.weight)), [0, H, C])

        def score(t, att):   # (rows, H, C) . att (H, C) -> (rows, H)
            return g.reduce("Sum", g.op("Mul", t, g.param(att, getattr(self, att))), [-1])

        e = g.op("Add", g.op("Gather", score(h, "att_src"), src, axis=0),
                 g.op("Gather", score(h, "att_dst"), dst, axis=0))
        if edge_attr is not None:
            he = g.reshape(g.linear(edge_attr, g.param("weight_edge", self.weight_edge)),
                           [0, H, C])
            e = g.op("Add", e, score(he, "att_edge"))
        e = g.op("LeakyRelu", e, alpha=float(self.negative_slope))
        top = g.scatter_rows(dst, e, n, "max", init=NEG_LARGE)
        p = g.op("Exp", g.op("Sub", e, g.op("Gather", top, dst, axis=0)))
        alpha = g.op("Div", p, g.op("Gather", g.scatter_rows(dst, p, n, "add"), dst, axis=0))
        msg = g.op("Mul", g.op("Gather", h, src, axis=0), g.unsqueeze(alpha, [-1]))
        out = g.scatter_rows(dst, msg, n, "add")
        y = g.reshape(out, [0, H * C]) if self.concat else g.reduce("Mean", out, [1])
        return g.op("Add", y, g.param("bias", self.bias)) if "bias" in self._params else y

    @staticmethod
    def _edge_attr_grad(d_attr, kept, g, attr_shape):
        """Map gradients of the (kept + loop) edge features back to the input edges."""
        if kept is None:
            return d_attr
        out = np.zeros(attr_shape, d_attr.dtype)
        nk = len(kept)
        out[kept] = d_attr[:nk]
        deg = np.bincount(g.dst[:nk], minlength=g.num_nodes).astype(d_attr.dtype)
        loop_grad = d_attr[nk:] / np.maximum(deg, 1)[:, None]   # each loop feature is a mean
        out[kept] += loop_grad[g.dst[:nk]]
        return out


class GINLayer(Module):
    """Graph isomorphism layer (Xu et al. 2019), ``GINConv`` semantics:

        out_i = MLP((1 + eps) x_i + sum_{j -> i} x_j),  MLP(z) = ReLU(z W1 + b1) W2 + b2

    Parameters ``w1 (in, hidden)``, ``b1``, ``w2 (hidden, out)``, ``b2`` and, with
    ``train_eps``, ``eps ()``.
    """

    def __init__(self, in_dim, hidden_dim, out_dim, *, eps=0.0, train_eps=False, seed=None,
                 dtype=np.float32):
        super().__init__(dtype)
        self.in_dim = positive_int(in_dim, "in_dim")
        self.hidden_dim = positive_int(hidden_dim, "hidden_dim")
        self.out_dim = positive_int(out_dim, "out_dim")
        self.train_eps = bool(train_eps)
        rng = make_rng(seed)
        self._register("w1", glorot_uniform(rng, self.in_dim, self.hidden_dim))
        self._register("b1", np.zeros(self.hidden_dim))
        self._register("w2", glorot_uniform(rng, self.hidden_dim, self.out_dim))
        self._register("b2", np.zeros(self.out_dim))
        eps = finite_number(eps, "eps")
        if self.train_eps:
            self._register("eps", np.array(eps))
        else:
            self._eps = eps
        self._cache = None

    @property
    def eps_value(self):
        return float(self._params["eps"]) if self.train_eps else self._eps

    def _hid_scratch(self, n_rows):
        """Per-worker block of hidden activations: ReLU(pre) is never stored whole."""
        return np.empty((_workers(n_rows), KD.RB, self.hidden_dim), self.dtype)

    def forward(self, x, graph):
        x = _features(x, self.in_dim, self.dtype)
        g = as_csr(graph, x.shape[0])
        N, dt = x.shape[0], self.dtype
        z = np.empty_like(x)
        pre = np.empty((N, self.hidden_dim), dt)
        out = np.empty((N, self.out_dim), dt)
        KD.gin_forward(x, g.nbr_t, g.indptr_t, dt.type(1.0 + self.eps_value), self.w1, self.b1,
                       self.w2, self.b2, z, pre, out, self._hid_scratch(N))
        self._cache = (x, g, z, pre)
        return check_overflow(out, "GINLayer output")

    __call__ = forward

    def backward(self, grad_out):
        x, g, z, pre = self._require_cache(self._cache)
        gy = _grad(grad_out, (x.shape[0], self.out_dim), self.dtype)
        W = _workers(x.shape[0])
        dpre, dz = np.empty_like(pre), np.empty_like(x)
        parts = _worker_partials(self, W, ("w1", "b1", "w2", "b2"))
        KD.gin_backward(gy, z, pre, _transposed(self.w1), _transposed(self.w2), dpre, dz,
                        self._hid_scratch(x.shape[0]), *parts.values())
        _add_partials(self, parts)
        if self.train_eps:
            self._grads["eps"] += np.float64((dz * x).sum())
        dx = np.empty_like(dz)
        KD.scatter(dz, g.nbr_s, g.indptr_s, self.dtype.type(1.0 + self.eps_value), dz, True, dx)
        return dx


    def onnx_example(self):
        return graph_example(self.in_dim)

    def onnx_inputs(self, examples):
        return graph_onnx_inputs(examples, self.in_dim)

    def emit_onnx(self, g, x, edge_index):
        src, dst = _onnx_edges(g, edge_index)
        z = g.op("Add", g.op("Mul", x, g.const(1.0 + self.eps_value)),
                 _onnx_sum_into(g, x, src, dst, g.dim(x, 0)))
        hidden = g.op("Relu", g.linear(z, g.param("w1", self.w1), g.param("b1", self.b1)))
        return g.linear(hidden, g.param("w2", self.w2), g.param("b2", self.b2))


class SAGELayer(Module):
    """GraphSAGE layer (Hamilton et al. 2017), ``SAGEConv`` semantics:

        out_i = W_root x_i + W_neigh aggr_{j -> i} x_j + b,  aggr in {mean, max, sum}

    optionally L2-normalised (``normalize``, eps 1e-12).  A node without incoming edges gets
    zero neighbour contribution.  Parameters ``w_neigh (in, out)``, ``w_root (in, out)``
    (with ``root_weight``), ``bias (out,)`` (with ``bias``).
    """

    def __init__(self, in_dim, out_dim, *, aggr="mean", normalize=False, root_weight=True,
                 bias=True, seed=None, dtype=np.float32):
        super().__init__(dtype)
        choice(aggr, "aggr", ("mean", "max", "sum"))
        self.in_dim = positive_int(in_dim, "in_dim")
        self.out_dim = positive_int(out_dim, "out_dim")
        self.aggr, self.normalize, self.root_weight = aggr, bool(normalize), bool(root_weight)
        rng = make_rng(seed)
        self._register("w_neigh", glorot_uniform(rng, self.in_dim, self.out_dim))
        if self.root_weight:
            self._register("w_root", glorot_uniform(rng, self.in_dim, self.out_dim))
        if bias:
            self._register("bias", np.zeros(self.out_dim))
        self._cache = None

    def _row_scale(self, g):
        """Per-node factor of the neighbour sum: 1 / max(in-degree, 1) for mean, else 1."""
        if self.aggr == "mean":
            return (1.0 / np.maximum(g.in_degree, 1)).astype(self.dtype)
        return np.ones(g.num_nodes, self.dtype)

    def forward(self, x, graph):
        x = _features(x, self.in_dim, self.dtype)
        g = as_csr(graph, x.shape[0])
        agg = np.empty_like(x)
        out = np.empty((x.shape[0], self.out_dim), self.dtype)
        arg = None
        w_root = self._params.get("w_root", self.w_neigh)
        bias = self._params.get("bias", self.w_neigh[0])
        if self.aggr == "max":
            arg = np.empty(x.shape, np.int64)
            K.segment_max(x, g.src, g.indptr_t, g.perm_t, agg, arg)
            out[:] = matmul(agg, self.w_neigh)
            if self.root_weight:
                out += matmul(x, w_root)
            if "bias" in self._params:
                out += bias
        else:
            W = _workers(x.shape[0])
            if self.root_weight:  # one product over [agg | x] with [W_neigh; W_root]
                weight = np.concatenate([self.w_neigh, w_root])
                scratch = np.empty((W, KD.RB, 2 * self.in_dim), self.dtype)
            else:
                weight, scratch = self.w_neigh, np.empty((W, 0, 0), self.dtype)
            KD.sage_forward(x, g.nbr_t, g.indptr_t, self._row_scale(g), weight,
                            self.root_weight, bias, "bias" in self._params, agg, out, scratch)
        norm = None
        if self.normalize:
            norm = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12).astype(self.dtype)
            out = out / norm
        self._cache = (x, g, agg, arg, out, norm)
        return check_overflow(out, "SAGELayer output")

    __call__ = forward

    def backward(self, grad_out):
        x, g, agg, arg, out, norm = self._require_cache(self._cache)
        gy = _grad(grad_out, out.shape, self.dtype)
        if self.normalize:  # y = u / |u|: du = (g - y (g . y)) / |u|
            gy = np.ascontiguousarray((gy - out * (gy * out).sum(axis=1, keepdims=True)) / norm)
        dx = np.empty_like(x)
        if self.aggr == "max":
            return self._backward_max(x, g, agg, arg, gy, dx)
        W = _workers(x.shape[0])
        shape = (W,) + self.w_neigh.shape
        gwn, gb = np.zeros(shape, self.dtype), np.zeros((W, self.out_dim), self.dtype)
        gwr = np.zeros(shape, self.dtype) if self.root_weight else gwn
        wn_t = _transposed(self.w_neigh)
        wr_t = _transposed(self.w_root) if self.root_weight else wn_t
        dagg = np.empty_like(x)
        dxr = np.empty_like(x) if self.root_weight else dagg
        KD.sage_backward(gy, x, agg, self._row_scale(g), wn_t, wr_t, self.root_weight, dagg,
                         dxr, gwn, gwr, gb)
        self._grads["w_neigh"] += gwn.sum(axis=0)
        if self.root_weight:
            self._grads["w_root"] += gwr.sum(axis=0)
        if "bias" in self._params:
            self._grads["bias"] += gb.sum(axis=0)
        KD.scatter(dagg, g.nbr_s, g.indptr_s, self.dtype.type(1), dxr, self.root_weight, dx)
        return dx

    def onnx_example(self):
        return graph_example(self.in_dim)

    def onnx_inputs(self, examples):
        return graph_onnx_inputs(examples, self.in_dim)

    def emit_onnx(self, g, x, edge_index):
        n = g.dim(x, 0)
        src, dst = _onnx_edges(g, edge_index)
        if self.aggr == "max":   # a node without incoming edges aggregates zeros
            top = g.scatter_rows(dst, g.op("Gather", x, src, axis=0), n, "max", init=NEG_LARGE)
            has_in = g.unsqueeze(g.op("Greater", _onnx_in_degree(g, dst, n), g.const(0.0)), [1])
            agg = g.op("Where", has_in, top, g.const(0.0))
        else:
            agg = _onnx_sum_into(g, x, src, dst, n)
            if self.aggr == "mean":
                deg = g.unsqueeze(_onnx_in_degree(g, dst, n), [1])
                agg = g.op("Div", agg, g.op("Max", deg, g.const(1.0)))
        out = g.linear(agg, g.param("w_neigh", self.w_neigh))
        if self.root_weight:
            out = g.op("Add", out, g.linear(x, g.param("w_root", self.w_root)))
        if "bias" in self._params:
            out = g.op("Add", out, g.param("bias", self.bias))
        if self.normalize:
            norm = g.reduce("L2", out, [-1], keepdims=True)
            out = g.op("Div", out, g.op("Max", norm, g.const(1e-12)))
        return out

    def _backward_max(self, x, g, agg, arg, gy, dx):
        """Backward of max aggregation: each feature's gradient goes to the edge that won."""
        if "bias" in self._params:
            self._grads["bias"] += gy.sum(axis=0)
        self._grads["w_neigh"] += matmul_tn(agg, gy)
        dagg = np.ascontiguousarray(matmul(gy, _transposed(self.w_neigh)))
        K.scatter_max_grad(dagg, arg, g.dst, g.indptr_s, g.perm_s, dx)
        if self.root_weight:
            self._grads["w_root"] += matmul_tn(x, gy)
            dx += matmul(gy, _transposed(self.w_root))
        return dx
