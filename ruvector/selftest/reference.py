"""Slow float64 NumPy references (formulas written out, no kernels) and central finite
differences: what ``ruvector selftest`` and the test suite compare the kernels with."""
import numpy as np


def reference_attention(q, k, v, mask=None, causal=False, scale=None):
    """softmax(scale Q K^T, masked) V and the weights; a row with no allowed key gives
    zeros."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = scale * (q @ np.swapaxes(k, -1, -2))
    allow = np.ones(s.shape, dtype=bool)
    if mask is not None:
        allow &= np.broadcast_to(mask, s.shape)
    if causal:
        Lq, Lk = s.shape[-2:]
        allow &= np.arange(Lk)[None, :] <= np.arange(Lq)[:, None]
    s = np.where(allow, s, -np.inf)
    top = s.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    p = np.where(allow, np.exp(s - top), 0.0)
    z = p.sum(axis=-1, keepdims=True)
    p = np.where(z > 0, p / np.where(z > 0, z, 1.0), 0.0)
    return p @ v, p


def dense_reference_grads(q, k, v, mask, g, causal=False):
    """Gradients (dQ, dK, dV) of sum(out * g) for dense masked attention, by the closed form
    in float64: dV = P^T g, dS = P (g V^T - rowsum(g V^T P)), dQ = scale dS K,
    dK = scale dS^T Q."""
    q, k, v, g = (np.asarray(a, dtype=np.float64) for a in (q, k, v, g))
    out, p = reference_attention(q, k, v, mask=mask, causal=causal)
    scale = 1 / np.sqrt(q.shape[-1])
    dv = np.swapaxes(p, -1, -2) @ g
    dp = g @ np.swapaxes(v, -1, -2)
    ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
    return scale * ds @ k, scale * np.swapaxes(ds, -1, -2) @ q, dv


def reference_mha(mha, q, k, v, mask=None):
    """Multi-head attention with the layer's parameters: (output, mean weights, per-head
    weights) for (B, L, D) inputs."""
    p = {n: a.astype(np.float64) for n, a in mha.parameters().items()}
    H, dh = mha.num_heads, mha.head_dim

    def heads(x, name):
        y = x @ p["w_" + name] + p.get("b_" + name, 0.0)
        return y.reshape(x.shape[0], x.shape[1], H, dh).transpose(0, 2, 1, 3)

    m = None if mask is None else \
        np.broadcast_to(mask, (q.shape[0], q.shape[1], k.shape[1]))[:, None]
    out, w = reference_attention(heads(q, "q"), heads(k, "k"), heads(v, "v"), m, mha.causal)
    merged = out.transpose(0, 2, 1, 3).reshape(q.shape[0], q.shape[1], -1)
    return merged @ p["w_o"] + p.get("b_o", 0.0), w.mean(axis=1), w


def gat_reference(layer, x, ei, edge_attr=None):
    """Edge-list GAT (PyG GATConv semantics: existing self-loops dropped, one per node
    added, its edge feature the mean of the node's incoming ones): (output, alpha)."""
    p = {k: v.astype(np.float64) for k, v in layer.parameters().items()}
    x = x.astype(np.float64)
    N, H, C = x.shape[0], layer.heads, layer.out_dim
    src, dst = ei
    attr = None if edge_attr is None else edge_attr.astype(np.float64)
    if layer.add_self_loops:
        keep = src != dst
        src, dst = src[keep], dst[keep]
        if attr is not None:
            attr = attr[keep]
            loop = np.zeros((N, attr.shape[1]))
            for i in range(N):
                if np.any(dst == i):
                    loop[i] = attr[dst == i].mean(0)
            attr = np.concatenate([attr, loop])
        src = np.concatenate([src, np.arange(N)])
        dst = np.concatenate([dst, np.arange(N)])
    h = (x @ p["weight"]).reshape(N, H, C)
    s = (h[src] * p["att_src"]).sum(-1) + (h[dst] * p["att_dst"]).sum(-1)
    if attr is not None:
        he = (attr @ p["weight_edge"]).reshape(-1, H, C)
        s = s + (he * p["att_edge"]).sum(-1)
    z = np.where(s > 0, s, layer.negative_slope * s)
    alpha = np.zeros_like(z)
    out = np.zeros((N, H, C))
    for i in range(N):
        m = dst == i
        if m.any():
            w = np.exp(z[m] - z[m].max(0))
            alpha[m] = w / w.sum(0)
            out[i] = (alpha[m][:, :, None] * h[src[m]]).sum(0)
    y = out.reshape(N, H * C) if layer.concat else out.mean(1)
    return y + p.get("bias", 0), alpha


def gin_reference(layer, x, ei):
    """MLP((1 + eps) x_i + sum over edges j -> i of x_j), ReLU between the two linears."""
    p = {k: v.astype(np.float64) for k, v in layer.parameters().items()}
    x = np.asarray(x, dtype=np.float64)
    z = (1.0 + layer.eps_value) * x
    np.add.at(z, ei[1], x[ei[0]])
    return np.maximum(z @ p["w1"] + p["b1"], 0.0) @ p["w2"] + p["b2"]


def sage_reference(layer, x, ei):
    """W_root x_i + W_neigh aggr_{j -> i} x_j + b (aggr mean / max / sum; no neighbours:
    zero), each row L2-normalised with ``normalize``."""
    p = {k: v.astype(np.float64) for k, v in layer.parameters().items()}
    x = np.asarray(x, dtype=np.float64)
    agg = np.zeros(x.shape)
    for i in range(x.shape[0]):
        nb = x[ei[0][ei[1] == i]]
        if len(nb):
            agg[i] = {"mean": nb.mean(0), "max": nb.max(0), "sum": nb.sum(0)}[layer.aggr]
    out = agg @ p["w_neigh"] + p.get("bias", 0.0)
    if "w_root" in p:
        out = out + x @ p["w_root"]
    if layer.normalize:
        out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def fd_entry(f, x, i, eps=1e-6):
    """Central difference of scalar f with respect to flat entry i of x (restored after)."""
    flat = x.reshape(-1)
    old = flat[i]
    flat[i] = old + eps
    up = f()
    flat[i] = old - eps
    down = f()
    flat[i] = old
    return (up - down) / (2 * eps)


def finite_difference(f, x, eps=1e-6):
    """Central differences of scalar f at every entry of the float64 array x."""
    return np.array([fd_entry(f, x, i, eps) for i in range(x.size)]).reshape(x.shape)


def rel_error(a, b, floor=1e-4):
    """max |a - b| relative to max |b| (floored at ``floor``: an exactly-zero gradient, such
    as that of a key bias under softmax, is compared absolutely)."""
    return float(np.abs(a - b).max() / max(np.abs(b).max(), floor))


def gradient_errors(layer, inputs, forward, wrt_params=True, sample=None, seed=0, eps=1e-6,
                    floor=1e-4):
    """{name: rel_error(backward, central differences of step eps, floor)} for the inputs
    ("input 0", ...) and, with ``wrt_params``, every parameter of ``layer``, for the loss
    sum(forward() * w) with a random w; with ``sample``, at that many random entries of
    each larger array."""
    rng = np.random.default_rng(seed)
    out = forward()
    w = rng.standard_normal(out.shape)

    def loss():
        return float((forward().astype(np.float64) * w).sum())

    def error(g, x):
        if sample is None or x.size <= sample:
            return rel_error(g, finite_difference(loss, x, eps), floor)
        idx = rng.choice(x.size, sample, replace=False)
        fd = np.array([fd_entry(loss, x, i, eps) for i in idx])
        return rel_error(g.reshape(-1)[idx], fd, floor)

    loss()
    layer.zero_grad()
    grads = layer.backward(w)
    grads = grads if isinstance(grads, tuple) else (grads,)
    errors = {f"input {i}": error(g, x) for i, (x, g) in enumerate(zip(inputs, grads))}
    if wrt_params:
        errors.update({name: error(layer.grads[name], p)
                       for name, p in layer.parameters().items()})
    return errors
