"""Head layout copies for multi-head attention: (B, L, H dh) <-> (B, H, L, dh).

    split_heads:  out[b, h, l, e] = y[b, l, h dh + e] (+ bias[h dh + e])
    merge_heads:  out[b, l, h dh + e] = x[b, h, l, e]

One pass each over memory, parallel over the (b, l) rows; the bias of a projection is
added during the copy instead of in a pass of its own.
"""
from numba import njit, prange


@njit(cache=True, parallel=True)
def split_heads(y, bias, has_bias, out):
    """y (B, L, H dh) -> out (B, H, L, dh), adding ``bias`` (H dh,) when ``has_bias``."""
    B, L, d = y.shape
    H, dh = out.shape[1], out.shape[3]
    for bl in prange(B * L):
        b, l = bl // L, bl % L
        for h in range(H):
            c0 = h * dh
            if has_bias:
                for e in range(dh):
                    out[b, h, l, e] = y[b, l, c0 + e] + bias[c0 + e]
            else:
                for e in range(dh):
                    out[b, h, l, e] = y[b, l, c0 + e]


@njit(cache=True, parallel=True)
def merge_heads(x, out):
    """x (B, H, L, dh) -> out (B, L, H dh)."""
    B, H, L, dh = x.shape
    for bl in prange(B * L):
        b, l = bl // L, bl % L
        for h in range(H):
            c0 = h * dh
            for e in range(dh):
                out[b, l, c0 + e] = x[b, h, l, e]
