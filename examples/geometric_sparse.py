"""Hyperbolic attention over a small tree embedded in the Poincaré ball, and sparse
(windowed / strided / top-k) attention checked against dense masked attention, with one
training step through the hyperbolic layer's backward.

    python examples/geometric_sparse.py
"""
import numpy as np

from ruvector import scaled_dot_product_attention
from ruvector.attention.geometric import HyperbolicAttention
from ruvector.attention.manifolds import PoincareBall
from ruvector.attention.sparse import SparseAttention, WindowedMask


def tree_points(depth=4, branching=2, dim=2, c=1.0):
    """A complete tree: children are pushed outwards by Möbius addition (leaves near the
    boundary, where hyperbolic space has room for exponentially many of them)."""
    ball = PoincareBall(c)
    points, frontier = [np.zeros(dim)], [np.zeros(dim)]
    for level in range(1, depth + 1):
        nxt = []
        for p_idx, parent in enumerate(frontier):
            for b in range(branching):
                angle = 2 * np.pi * (p_idx * branching + b) / branching ** level
                step = 0.45 * np.array([np.cos(angle), np.sin(angle)])
                nxt.append(ball.mobius_add(parent, step))
        points += nxt
        frontier = nxt
    return np.array(points)


def run(out=print):
    ball = PoincareBall(1.0)
    X = tree_points()
    att = HyperbolicAttention(2, c=1.0, temperature=0.3)
    leaf = X[-1]
    mixed = att.forward(leaf, X, X)
    w = att.get_attention_weights()[0]
    out(f"{len(X)} tree nodes; a leaf attends most to nodes {np.argsort(-w)[:3].tolist()} "
        f"(itself: {len(X) - 1}); output norm {np.linalg.norm(mixed):.3f} < 1")
    # one gradient step that pulls the output toward the root
    _, _, dv = att.backward(2 * mixed)                 # d|out|^2 / d out
    moved = att.forward(leaf, X, X - 0.1 * dv)
    out(f"distance of the output to the root: {ball.dist(mixed, np.zeros(2)):.3f} -> "
        f"{ball.dist(moved, np.zeros(2)):.3f} after one step on the values")

    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 512, 32)).astype(np.float32) for _ in range(3))
    sa = SparseAttention()
    windowed = sa.forward_windowed(q, k, v, 16)
    dense = scaled_dot_product_attention(q, k, v, mask=WindowedMask(16).to_dense(512, 512))
    strided = sa.forward_strided(q, k, v, 8, 32)
    topk = sa.forward_topk(q, k, v, 8)
    out(f"windowed vs dense masked: max |diff| {np.abs(windowed - dense).max():.2e}; "
        f"strided {strided.shape}, top-8 {topk.shape}")
    return {"weights": w, "dist_before": float(ball.dist(mixed, np.zeros(2))),
            "dist_after": float(ball.dist(moved, np.zeros(2))),
            "windowed_error": float(np.abs(windowed - dense).max())}


if __name__ == "__main__":
    run()
