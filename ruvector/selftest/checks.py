"""The numerical checks of ``ruvector selftest``, by suite.

Each check measures the error of one kernel against an independent reference (a float64
NumPy formula, central finite differences, brute force) on small inputs and returns
``(error, tolerance)``, the error a number or ``{case: error}``; it passes when the (worst)
error is at most the tolerance.
"""
import networkx as nx
import numpy as np

from ..attention import (BlockSparseMask, HyperbolicAttention, MultiHeadAttention,
                         ScaledDotProductAttention, SparseAttention, SphericalAttention,
                         scaled_dot_product_attention)
from ..errors import InvalidConfig
from ..gnn import GATLayer, GINLayer, SAGELayer
from ..graph import GraphStore
from ..index import VectorStore
from . import SUITE_NAMES
from .reference import (dense_reference_grads, gat_reference, gin_reference, gradient_errors,
                        reference_attention, reference_mha, rel_error, sage_reference)

SUITES = {}
# Everything runs in float32, the dtype a default install computes in (and compiles for).
FORWARD = 2e-5    # float32 kernels against float64 formulas (relative to the largest entry)
CLOSED_FORM = 1e-4  # float32 backward against the float64 closed form
# float32 backward against central differences of the float32 forward, errors relative to
# at least 0.1 (the differences' noise is ~1e-4 absolute for O(1) gradients).  Smooth maps
# take a 1e-2 step (float32 noise shrinks with it); ReLU / max layers 1e-3, so that a step
# rarely crosses a kink.
SMOOTH_STEP, KINKED_STEP, FD_FLOOR, FD = 1e-2, 1e-3, 0.1, 1e-2


def check(suite, name):
    """Register ``fn(rng) -> (error, tolerance)`` as check ``name`` of ``suite``."""
    if suite not in SUITE_NAMES:
        raise InvalidConfig(f"check {name!r}: unknown suite {suite!r} (not in SUITE_NAMES)")

    def register(fn):
        SUITES.setdefault(suite, []).append((name, fn))
        return fn
    return register


def _fd(layer, inputs, forward, step=SMOOTH_STEP, **options):
    """{input or parameter name: error} of the layer's backward against central differences."""
    return gradient_errors(layer, inputs, forward, eps=step, floor=FD_FLOOR, **options)


# -- standard: scaled dot-product attention --------------------------------------------------
# Masks are (B, 1, Lq, Lk), shared by the heads: the one mask layout the multi-head layer and
# unmasked calls use too, so a cold run compiles each kernel once.
@check("standard", "forward: mask, causal, 1-D / 2-D / 4-D inputs")
def _sdpa_forward(rng):
    errors = {}
    q, k, v = rng.standard_normal((2, 3, 17, 8)), rng.standard_normal((2, 3, 23, 8)), \
        rng.standard_normal((2, 3, 23, 5))
    mask = rng.random((2, 1, 17, 23)) > 0.3
    for causal in (False, True):
        out = scaled_dot_product_attention(q, k, v, mask, causal=causal)
        errors[f"4-D masked, causal={causal}"] = rel_error(
            out, reference_attention(q, k, v, mask, causal)[0])
    for q_shape, k_shape in (((9, 16), (40, 16)), ((8,), (5, 8))):
        q, k = rng.standard_normal(q_shape), rng.standard_normal(k_shape)
        out = scaled_dot_product_attention(q, k, k)
        errors[f"{len(q_shape)}-D"] = rel_error(out, reference_attention(q, k, k)[0])
    return errors, FORWARD


@check("standard", "forward: tiled path (2 x 4 x 150 x 64) and weights")
def _sdpa_tiled(rng):
    q, k, v = (rng.standard_normal((2, 4, 150, 64)) for _ in range(3))
    out, w = scaled_dot_product_attention(q, k, v, causal=True, need_weights=True)
    ref_out, ref_w = reference_attention(q, k, v, causal=True)
    return max(rel_error(out, ref_out), rel_error(w, ref_w)), FORWARD


@check("standard", "forward: 4 queries x 1200 keys (keys split)")
def _sdpa_many_keys(rng):
    q, k, v = rng.standard_normal((4, 64)), rng.standard_normal((1200, 64)), \
        rng.standard_normal((1200, 64))
    return rel_error(scaled_dot_product_attention(q, k, v), reference_attention(q, k, v)[0]), \
        FORWARD


@check("standard", "backward vs closed form (2 x 2 x 70 x 32, mask, causal)")
def _sdpa_backward(rng):
    q, k, v, g = (rng.standard_normal((2, 2, 70, 32)) for _ in range(4))
    mask = rng.random((2, 1, 70, 70)) > 0.2
    attn = ScaledDotProductAttention(causal=True)
    attn.forward(q, k, v, mask)
    refs = dense_reference_grads(q, k, v, mask, g, causal=True)
    return max(rel_error(a, b) for a, b in zip(attn.backward(g), refs)), CLOSED_FORM


@check("standard", "backward vs central differences (small, mask)")
def _sdpa_fd(rng):
    q, k, v = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((1, 2, 6, 4)), \
        rng.standard_normal((1, 2, 6, 3))
    mask = rng.random((1, 1, 5, 6)) > 0.3
    attn = ScaledDotProductAttention()
    return _fd(attn, (q, k, v), lambda: attn.forward(q, k, v, mask), wrt_params=False), FD


# -- multihead ---------------------------------------------------------------------------------
def _mha_case(rng, Lq, Lk):
    """A causal cross-attention layer (non-zero biases, so their gradients count) and
    inputs (2, Lq, 12), (2, Lk, 5), (2, Lk, 7) with a random (2, Lq, Lk) mask."""
    mha = MultiHeadAttention(12, 3, kdim=5, vdim=7, causal=True, seed=1)
    for name, p in mha.parameters().items():
        if name.startswith("b_"):
            p[:] = rng.standard_normal(p.shape)
    q, k, v = (rng.standard_normal((2, L, d)) for L, d in ((Lq, 12), (Lk, 5), (Lk, 7)))
    return mha, q, k, v, rng.random((2, Lq, Lk)) > 0.25


@check("multihead", "forward and per-head weights")
def _mha_forward(rng):
    mha, q, k, v, mask = _mha_case(rng, 5, 9)
    out, heads = mha.forward(q, k, v, mask, need_weights=True, average_weights=False)
    ref_out, _, ref_heads = reference_mha(mha, q, k, v, mask)
    return max(rel_error(out, ref_out), rel_error(heads, ref_heads)), FORWARD


@check("multihead", "backward vs central differences (inputs, 8 parameters)")
def _mha_backward(rng):
    mha, q, k, v, mask = _mha_case(rng, 3, 4)
    return _fd(mha, (q, k, v), lambda: mha.forward(q, k, v, mask), sample=24), FD


# -- geometric ---------------------------------------------------------------------------------
def _ball(rng, shape, radius):
    x = rng.standard_normal(shape)
    return x * radius * rng.uniform(0.1, 1, shape[:-1] + (1,)) / \
        np.linalg.norm(x, axis=-1, keepdims=True)


def _poincare_dist(x, y, c):
    """d_c(x, y) = 2/sqrt(c) artanh(sqrt(c) |(-x) (+) y|) with the Mobius sum (+)."""
    xy, x2, y2 = -(x * y).sum(-1), (x * x).sum(-1), (y * y).sum(-1)
    num = (1 + 2 * c * xy + c * y2)[..., None] * -x + (1 - c * x2)[..., None] * y
    norm = np.linalg.norm(num, axis=-1) / (1 + 2 * c * xy + c * c * x2 * y2)
    return 2 / np.sqrt(c) * np.arctanh(np.sqrt(c) * norm)


@check("geometric", "hyperbolic weights vs the Poincare distance formula")
def _hyperbolic_weights(rng):
    c, t = 0.7, 0.5
    q, k = _ball(rng, (6, 8), 0.8 / np.sqrt(c)), _ball(rng, (11, 8), 0.8 / np.sqrt(c))
    logits = -_poincare_dist(q[:, None], k[None], c) / t
    ref = np.exp(logits - logits.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    w = HyperbolicAttention(8, c=c, temperature=t).compute_manifold_weights(
        q.astype(np.float32), k.astype(np.float32))
    return rel_error(w, ref), 1e-4


@check("geometric", "hyperbolic / spherical kernels vs the formulas in NumPy")
def _geometric_forward(rng):
    errors = {}
    q, k, v = (_ball(rng, (5 if i == 0 else 9, 6), 0.7).astype(np.float32) for i in range(3))
    for agg in ("tangent", "einstein"):
        att = HyperbolicAttention(6, c=1.0, aggregation=agg)
        errors[f"hyperbolic {agg}"] = rel_error(att.forward(q, k, v), att.reference(q, k, v)[0])
    sphere = [a / np.linalg.norm(a, axis=-1, keepdims=True) for a in (q, k, v)]
    att = SphericalAttention(6)
    errors["spherical"] = rel_error(att.forward(*sphere), att.reference(*sphere)[0])
    return errors, FORWARD


@check("geometric", "hyperbolic backward (float64) vs central differences")
def _hyperbolic_backward(rng):
    q, k, v = _ball(rng, (3, 4), 0.6), _ball(rng, (5, 4), 0.6), _ball(rng, (5, 4), 0.6)
    errors = {}
    for agg in ("tangent", "einstein"):
        att = HyperbolicAttention(4, c=1.0, aggregation=agg)
        for name, e in gradient_errors(att, (q, k, v), lambda: att.forward(q, k, v),
                                       wrt_params=False).items():
            errors[f"{agg} {name}"] = e
    return errors, 1e-4


# -- sparse ------------------------------------------------------------------------------------
def _sparse_cases(L):
    """(name, run(sa, q, k, v), dense mask written out here; None for top-k, whose mask
    depends on the scores) of every pattern."""
    i, j = np.arange(L)[:, None], np.arange(L)[None, :]
    blocks = [(0, 0), (1, 0), (1, 1), (2, 0), (3, 2)]
    block = np.zeros((L, L), bool)
    for bq, bk in blocks:
        block[bq * 4:(bq + 1) * 4, bk * 4:(bk + 1) * 4] = True
    return [("windowed", lambda sa, q, k, v: sa.forward_windowed(q, k, v, 3),
             np.abs(i - j) <= 3),
            ("strided", lambda sa, q, k, v: sa.forward_strided(q, k, v, 2, 5),
             (np.abs(i - j) <= 2) | ((i - j) % 5 == 0)),
            ("block", lambda sa, q, k, v: sa.forward_block_sparse(
                q, k, v, BlockSparseMask(4, blocks)), block),
            ("top-k", lambda sa, q, k, v: sa.forward_topk(q, k, v, 4), None)]


def _topk_mask(q, k, n):
    s = q @ np.swapaxes(k, -1, -2)
    mask = np.zeros(s.shape, bool)
    np.put_along_axis(mask, np.argsort(-s, axis=-1)[..., :n], True, axis=-1)
    return mask


@check("sparse", "windowed / strided / block / top-k vs dense masked attention")
def _sparse_forward(rng):
    L = 16
    q, k, v = (rng.standard_normal((2, L, 8)) for _ in range(3))
    errors = {}
    for name, run, mask in _sparse_cases(L):
        mask = _topk_mask(q, k, 4) if mask is None else mask
        errors[name] = rel_error(run(SparseAttention(), q, k, v),
                                 reference_attention(q, k, v, mask)[0])
    return errors, FORWARD


@check("sparse", "backward vs the dense closed form (4 patterns)")
def _sparse_backward(rng):
    L = 16
    q, k, v, g = (rng.standard_normal((2, L, 8)) for _ in range(4))
    errors = {}
    for name, run, mask in _sparse_cases(L):
        mask = _topk_mask(q, k, 4) if mask is None else mask
        sa = SparseAttention()
        run(sa, q, k, v)
        for wrt, a, b in zip("qkv", sa.backward(g), dense_reference_grads(q, k, v, mask, g)):
            errors[f"{name} d{wrt}"] = rel_error(a, b)
    return errors, CLOSED_FORM


# -- graph layers ------------------------------------------------------------------------------
def _graph(rng, n, e):
    return np.stack([rng.integers(0, n, e), rng.integers(0, n, e)])


def _layers():
    return {"GAT": GATLayer(5, 3, heads=2, seed=1), "GIN": GINLayer(5, 6, 3, eps=0.3, seed=2),
            "SAGE mean": SAGELayer(5, 3, seed=3),
            "SAGE max": SAGELayer(5, 3, aggr="max", seed=4)}


def _graph_reference(layer, x, ei):
    if isinstance(layer, GATLayer):
        return gat_reference(layer, x, ei)[0]
    return (gin_reference if isinstance(layer, GINLayer) else sage_reference)(layer, x, ei)


@check("graph", "GAT / GIN / SAGE (mean, max) forward vs edge-list NumPy")
def _graph_forward(rng):
    x, ei = rng.standard_normal((40, 5)), _graph(rng, 40, 160)
    return {name: rel_error(layer.forward(x, ei), _graph_reference(layer, x, ei))
            for name, layer in _layers().items()}, FORWARD


@check("graph", "GAT / GIN / SAGE backward vs central differences")
def _graph_backward(rng):
    x, ei = rng.standard_normal((7, 5)), _graph(rng, 7, 18)
    return {f"{name} {wrt}": e for name, layer in _layers().items()
            for wrt, e in _fd(layer, (x,), lambda: layer.forward(x, ei), KINKED_STEP,
                              sample=20).items()}, FD


# -- index -------------------------------------------------------------------------------------
@check("index", "HNSW recall@10 vs brute force (2,000 x 24, l2 and cosine)")
def _recall(rng):
    data, queries = rng.standard_normal((2000, 24)), rng.standard_normal((50, 24))
    missed = {}
    for metric in ("l2", "cosine"):
        store = VectorStore(24, metric)
        store.add(data)
        found = store.search(queries, 10).ids
        if metric == "cosine":
            unit = data / np.linalg.norm(data, axis=1, keepdims=True)
            score = -(queries @ unit.T)
        else:
            score = ((queries[:, None] - data[None]) ** 2).sum(-1)
        truth = np.argsort(score, axis=1)[:, :10]
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
        missed[metric] = 1.0 - recall   # the share of true neighbours missed
    return missed, 0.05


@check("index", "filtered and exact re-ranked search vs brute force")
def _filtered(rng):
    data, queries = rng.standard_normal((500, 16)), rng.standard_normal((10, 16))
    store = VectorStore(16, "l2")
    store.add(data, metadata=[{"g": i % 7} for i in range(500)])
    allowed = np.arange(500)[np.arange(500) % 7 == 3]
    d = ((queries[:, None] - data[None]) ** 2).sum(-1)
    truth = allowed[np.argsort(d[:, allowed], axis=1)[:, :5]]
    missed = [5 - len(set(a) & set(b)) for a, b in
              zip(store.search(queries, 5, filter={"g": 3}).ids, truth)]
    exact = store.search(queries, 5, rerank="exact", candidates=200)
    top = np.argsort(d, axis=1)[:, :5]
    missed += [5 - len(set(a) & set(b)) for a, b in zip(exact.ids, top)]
    return float(max(missed)), 0.0


# -- query -------------------------------------------------------------------------------------
def _random_store(rng, n=40, p=0.1, dim=6):
    G = nx.gnp_random_graph(n, p, seed=int(rng.integers(1 << 30)), directed=True)
    for node in G:
        G.nodes[node].update(age=int(rng.integers(0, 60)), embedding=rng.standard_normal(dim))
    return G, GraphStore.from_networkx(G)


@check("query", "MATCH two hops with WHERE vs brute-force walks")
def _two_hops(rng):
    G, store = _random_store(rng)
    res = store.query("MATCH (a)-->(b)-->(c) WHERE c.age > 30 RETURN a.key, b.key, c.key")
    found = sorted(map(tuple, res.rows))
    truth = sorted((a, b, c) for a, b in G.edges for c in G.successors(b)
                   if G.nodes[c]["age"] > 30)
    return float(found != truth), 0.0


@check("query", "variable-length *1..3 and count vs brute force")
def _var_length(rng):
    G, store = _random_store(rng, n=25, p=0.12)
    res = store.query("MATCH (a {key: 0})-[*1..3]->(b) RETURN b.key AS b, count(*) AS n")
    counts = {}
    stack = [(0, 0, frozenset())]
    while stack:   # every walk of 1..3 edges, no edge twice
        node, hops, used = stack.pop()
        for nxt in G.successors(node):
            if (node, nxt) not in used and hops < 3:
                counts[nxt] = counts.get(nxt, 0) + 1
                stack.append((nxt, hops + 1, used | {(node, nxt)}))
    return float(dict(res.rows) != counts), 0.0


@check("query", "ATTEND BY top-k and score() vs NumPy softmax over candidates")
def _attend(rng):
    G, store = _random_store(rng, n=60, p=0.2)
    q = rng.standard_normal(6)
    start = max(G, key=G.out_degree)
    res = store.query("MATCH (s {key: $s})-->(b) ATTEND BY $q TOP 3 TEMPERATURE 0.5 "
                      "RETURN b.key, score(b)", {"s": start, "q": q})
    nbrs = list(G.successors(start))
    x = np.array([G.nodes[n]["embedding"] for n in nbrs], dtype=np.float32)
    logits = x.astype(np.float64) @ q / (np.sqrt(6) * 0.5)
    w = np.exp(logits - logits.max())
    w /= w.sum()
    top = np.argsort(-w, kind="stable")[:3]
    keys_wrong = float([r[0] for r in res.rows] != [nbrs[i] for i in top])
    return max(keys_wrong, rel_error(np.array([r[1] for r in res.rows]), w[top])), 1e-5
