"""Heat maps of attention weights, and the weights each mechanism gives for drawing."""
import math

import numpy as np

from .._validate import as_array, as_bool_mask, choice, integer
from ..attention import (HyperbolicAttention, MultiHeadAttention, StridedMask, WindowedMask,
                         scaled_dot_product_attention)
from ..errors import DimensionMismatch, InvalidInput
from .figure import colour_map, new_figure

KINDS = ("standard", "multihead", "hyperbolic", "sparse")
MAX_HEADS = 16
MAX_TICK_LABELS = 40


def attention_heatmap(weights, *, mask=None, title="attention weights", query_labels=None,
                      key_labels=None, cmap="viridis"):
    """A heat map per head of ``weights`` (Lq, Lk) or (H, Lq, Lk) (a (1, H, Lq, Lk) batch
    too): rows are queries, columns keys, one shared colour bar; cells where ``mask``
    (True = may attend, broadcastable to the weights) is False are left blank."""
    w = as_array(weights, "weights", dtype=np.float64, ndim=(2, 3, 4))
    if w.ndim == 4:
        if w.shape[0] != 1:
            raise DimensionMismatch(f"weights {w.shape} hold {w.shape[0]} batches: draw one "
                                    "(weights[b])")
        w = w[0]
    w = w[None] if w.ndim == 2 else w
    H, Lq, Lk = w.shape
    if H > MAX_HEADS:
        raise InvalidInput(f"weights hold {H} heads; at most {MAX_HEADS} are drawn, "
                           "pass a slice")
    if mask is not None:
        m = as_bool_mask(mask)
        try:
            m = np.broadcast_to(m.reshape(m.shape[-3:]) if m.ndim == 4 else m, w.shape)
        except ValueError:
            raise DimensionMismatch(f"mask {np.shape(mask)} does not broadcast to the "
                                    f"weights {w.shape}") from None
        w = np.where(m, w, np.nan)
    shown = w[np.isfinite(w)]
    vmax = float(shown.max()) if shown.size and shown.max() > 0 else 1.0
    cols = min(H, 4)
    rows = math.ceil(H / cols)
    fig = new_figure(1.0 + 3.2 * cols, 0.6 + 3.0 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    colours = colour_map(cmap)
    for h, ax in enumerate(axes.flat):
        if h >= H:
            ax.set_axis_off()
            continue
        image = ax.imshow(w[h], cmap=colours, vmin=0.0, vmax=vmax, aspect="auto",
                          interpolation="nearest")
        if H > 1:
            ax.set_title(f"head {h}")
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        _ticks(ax.set_xticks, key_labels, Lk, "key_labels")
        _ticks(ax.set_yticks, query_labels, Lq, "query_labels")
    fig.colorbar(image, ax=axes, label="weight", shrink=0.9)
    fig.suptitle(title)
    return fig


def _ticks(set_ticks, labels, n, name):
    if labels is None:
        return
    labels = [str(x) for x in labels]
    if len(labels) != n:
        raise DimensionMismatch(f"{name} has {len(labels)} entries for {n} rows/columns")
    if n <= MAX_TICK_LABELS:
        set_ticks(range(n), labels)


def attention_weights(kind, query, key, *, mask=None, heads=None, module=None, causal=False,
                      curvature=1.0, temperature=1.0, window=None, stride=None, top_k=None):
    """(weights, mask) as ``kind`` of attention gives them for ``query`` against ``key``.

    - ``standard``: softmax(q k^T / sqrt(D)) (q, k (.., L, D); a 3-D input gives heads);
    - ``multihead``: per-head weights of ``module`` (a MultiHeadAttention), or, without one,
      of ``heads`` heads with identity projections (q, k split into heads along D);
    - ``hyperbolic``: softmax(-d_c(q, k) / temperature) on the Poincare ball of
      ``curvature``;
    - ``sparse``: the dense weights of the pattern (``window`` [+ ``stride``] or
      ``top_k``), whose mask is returned so that the cells outside it are drawn blank.
    """
    choice(kind, "kind", KINDS)
    q = as_array(query, "query", dtype=np.float64, ndim=(2, 3))
    k = as_array(key, "key", dtype=np.float64, ndim=(2, 3))
    if kind == "hyperbolic":
        att = HyperbolicAttention(q.shape[-1], c=curvature, temperature=temperature)
        return att.compute_manifold_weights(q, k), mask
    if kind == "multihead":
        if module is not None:
            if not isinstance(module, MultiHeadAttention):
                raise InvalidInput(f"multihead weights need a MultiHeadAttention module, got "
                                   f"{type(module).__name__}")
            _, w = module.forward(q, k, k, mask, need_weights=True, average_weights=False)
            return w, None
        heads = integer(heads if heads is not None else 1, "heads", minimum=1,
                        error=InvalidInput)
        if q.ndim != 2 or q.shape[-1] % heads or k.shape[-1] != q.shape[-1]:
            raise DimensionMismatch(f"query {q.shape} and key {k.shape} must be (L, D) with "
                                    f"D divisible by heads={heads}")
        q, k = (a.reshape(a.shape[0], heads, -1).transpose(1, 0, 2) for a in (q, k))
    if kind == "sparse":
        mask = _pattern_mask(q, k, window, stride, top_k, causal)
    _, w = scaled_dot_product_attention(q, k, k, mask, causal=causal, need_weights=True,
                                        dtype=np.float64)
    if causal:
        lq, lk = w.shape[-2:]
        tri = np.tril(np.ones((lq, lk), bool))
        mask = tri if mask is None else np.logical_and(mask, tri)
    return w, mask


def _pattern_mask(q, k, window, stride, top_k, causal):
    """The (.., Lq, Lk) boolean mask of one sparse pattern."""
    if (window is None) == (top_k is None):
        raise InvalidInput("sparse weights need a pattern: window (optionally with stride) "
                           "or top_k")
    Lq, Lk = q.shape[-2], k.shape[-2]
    if top_k is not None:
        top_k = integer(top_k, "top_k", minimum=1, maximum=Lk, error=InvalidInput)
        logits = q @ np.swapaxes(k, -1, -2)
        if causal:
            logits = np.where(np.tril(np.ones((Lq, Lk), bool)), logits, -np.inf)
        keep = np.argsort(-logits, axis=-1, kind="stable")[..., :top_k]
        mask = np.zeros(logits.shape, bool)
        np.put_along_axis(mask, keep, True, axis=-1)
        return mask
    pattern = WindowedMask(window) if stride is None else StridedMask(window, stride)
    return pattern.to_dense(Lq, Lk, causal)
