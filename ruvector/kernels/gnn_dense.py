"""Fused GIN / GraphSAGE kernels: neighbour sums and the layer's dense products in one pass.

Nodes are processed in blocks of RB rows: the aggregated block is written once and, while
it is still in cache, multiplied by the (small) weight matrices with the register-tiled
micro-kernel of :mod:`._simd`.  Blocks are dealt round-robin to W workers (no atomics, the
same result on every run); weight gradients go to one partial sum per worker, which the
caller adds.  ``nbr`` lists the neighbour of every CSR slot (``src[perm_t]`` for incoming,
``dst[perm_s]`` for outgoing edges), so a row sum reads one index per edge.

    GIN forward:    z_i = (1 + eps) x_i + sum_{j -> i} x_j,   pre = z W1 + b1,
                    hid = ReLU(pre),   out = hid W2 + b2
    GIN backward:   dpre = (gy W2^T) * [pre > 0],   dz = dpre W1^T   (hid recomputed from pre),
                    gW2 += hid^T gy,  gW1 += z^T dpre,  gb2 += sum_i gy_i,  gb1 += sum_i dpre_i
    SAGE forward:   agg_i = s_i sum_{j -> i} x_j  (s_i = 1 / max(deg_i, 1) for mean, 1 for sum),
                    out = agg W_neigh + x W_root + b = [agg | x] [W_neigh; W_root] + b
    SAGE backward:  dagg = s * (gy W_neigh^T),  dxr = gy W_root^T,
                    gW_neigh += agg^T gy,  gW_root += x^T gy,  gb += sum_i gy_i
    scatter:        out_j = a r_j + sum over CSR slots p of j of g[nbr[p]]
"""
from numba import njit, prange

from ._math import FASTMATH
from ._simd import ACCUMULATE, MR, gemm_block, tile_multiple

RB = tile_multiple(MR, 48)  # rows per block: whole micro-tile rows, ~48 (24 / 96: slower)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _row_sum(x, nbr, start, stop, o):
    """o[:] = sum of the rows x[nbr[p]] for p in start:stop (four rows per pass, so that
    their cache-missing loads overlap)."""
    D = o.shape[0]
    for d in range(D):
        o[d] = 0
    p = start
    while p + 4 <= stop:
        r0 = x[nbr[p]]
        r1 = x[nbr[p + 1]]
        r2 = x[nbr[p + 2]]
        r3 = x[nbr[p + 3]]
        for d in range(D):
            o[d] += (r0[d] + r1[d]) + (r2[d] + r3[d])
        p += 4
    while p < stop:
        r0 = x[nbr[p]]
        for d in range(D):
            o[d] += r0[d]
        p += 1


@njit(cache=True, inline="always")
def num_blocks(N):
    """Blocks of RB rows covering N rows."""
    return (N + RB - 1) // RB


@njit(cache=True, inline="always")
def row_block(blk, N):
    """Rows i0:i1 of block ``blk`` of N rows."""
    i0 = blk * RB
    return i0, min(i0 + RB, N)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _scale_rows(y, i0, i1, row_scale):
    """y[i] *= row_scale[i] for i in i0:i1 (rows with factor 1 untouched)."""
    for i in range(i0, i1):
        s = row_scale[i]
        if s != 1:
            for d in range(y.shape[1]):
                y[i, d] *= s


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _add_bias(y, i0, i1, bias):
    for i in range(i0, i1):
        for c in range(y.shape[1]):
            y[i, c] += bias[c]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def block_product(C, i0, i1, A, a0, Bm, mode):
    """C[i0:i1] (+)= A[a0:a0 + i1 - i0] @ Bm for row-major 2-D arrays (Bm small, in cache;
    a0 = i0 for a full-size A, 0 for a block-sized scratch)."""
    K, N = Bm.shape
    gemm_block(C.reshape(-1), i0 * N, N, A.reshape(-1), a0 * K, K, 1, Bm.reshape(-1), 0, N,
               i1 - i0, N, K, mode, C[0], 0)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def block_product_tn(G, A, a0, Y, i0, i1):
    """G += A[a0:a0 + i1 - i0]^T @ Y[i0:i1]: a weight-gradient contribution of one block
    (a0 as in :func:`block_product`)."""
    K, N = A.shape[1], Y.shape[1]
    gemm_block(G.reshape(-1), 0, N, A.reshape(-1), a0 * K, 1, K, Y.reshape(-1), i0 * N, N,
               K, N, i1 - i0, ACCUMULATE, G[0], 0)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _relu_rows(pre, i0, i1, hid):
    """hid[:i1 - i0] = max(pre[i0:i1], 0) (a block of hidden activations in scratch)."""
    for i in range(i0, i1):
        for c in range(pre.shape[1]):
            hid[i - i0, c] = max(pre[i, c], 0)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _column_sums(g, Y, i0, i1):
    for i in range(i0, i1):
        for c in range(Y.shape[1]):
            g[c] += Y[i, c]


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def gin_forward(x, nbr, indptr, self_scale, w1, b1, w2, b2, z, pre, out, hid_scratch):
    """GIN forward (module docstring) into z, pre (saved for the backward) and out; hid lives
    only in the per-worker block scratch ``hid_scratch`` (W, RB, hidden)."""
    N = x.shape[0]
    W = hid_scratch.shape[0]
    for w in prange(W):
        hid = hid_scratch[w]
        for blk in range(w, num_blocks(N), W):
            i0, i1 = row_block(blk, N)
            for i in range(i0, i1):
                _row_sum(x, nbr, indptr[i], indptr[i + 1], z[i])
                for d in range(x.shape[1]):
                    z[i, d] += self_scale * x[i, d]
            block_product(pre, i0, i1, z, i0, w1, 0)
            _add_bias(pre, i0, i1, b1)
            _relu_rows(pre, i0, i1, hid)
            block_product(out, i0, i1, hid, 0, w2, 0)
            _add_bias(out, i0, i1, b2)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def gin_backward(gy, z, pre, w1t, w2t, dpre, dz, hid_scratch, gw1, gb1, gw2, gb2):
    """GIN backward up to dz (module docstring); hid = ReLU(pre) is recomputed per block into
    ``hid_scratch`` (W, RB, hidden); gw1, gb1, gw2, gb2: (W, ...) zeroed per-worker partial
    sums."""
    N = gy.shape[0]
    W = gw1.shape[0]
    for w in prange(W):
        hid = hid_scratch[w]
        for blk in range(w, num_blocks(N), W):
            i0, i1 = row_block(blk, N)
            _relu_rows(pre, i0, i1, hid)
            block_product(dpre, i0, i1, gy, i0, w2t, 0)
            for i in range(i0, i1):
                for c in range(dpre.shape[1]):
                    if pre[i, c] <= 0:
                        dpre[i, c] = 0
            block_product(dz, i0, i1, dpre, i0, w1t, 0)
            block_product_tn(gw2[w], hid, 0, gy, i0, i1)
            block_product_tn(gw1[w], z, i0, dpre, i0, i1)
            _column_sums(gb2[w], gy, i0, i1)
            _column_sums(gb1[w], dpre, i0, i1)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def sage_forward(x, nbr, indptr, row_scale, weight, has_root, bias, has_bias, agg, out,
                 scratch):
    """SAGE forward for sum / mean aggregation (module docstring) into agg and out.

    With the root term the block's two products run as one over K = 2 D: [agg | x] (copied
    side by side into the per-worker ``scratch`` (W, RB, 2 D)) times ``weight`` =
    [W_neigh; W_root]; without it ``weight`` is W_neigh.  W = len(scratch) workers."""
    N, D = x.shape
    W = scratch.shape[0]
    for w in prange(W):
        both = scratch[w]
        for blk in range(w, num_blocks(N), W):
            i0, i1 = row_block(blk, N)
            for i in range(i0, i1):
                _row_sum(x, nbr, indptr[i], indptr[i + 1], agg[i])
            _scale_rows(agg, i0, i1, row_scale)
            if has_root:
                for i in range(i0, i1):
                    for d in range(D):
                        both[i - i0, d] = agg[i, d]
                        both[i - i0, D + d] = x[i, d]
                block_product(out, i0, i1, both, 0, weight, 0)
            else:
                block_product(out, i0, i1, agg, i0, weight, 0)
            if has_bias:
                _add_bias(out, i0, i1, bias)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def sage_backward(gy, x, agg, row_scale, wnt, wrt, has_root, dagg, dxr, gwn, gwr, gb):
    """SAGE backward up to dagg and the root term dxr (module docstring); gwn, gwr, gb:
    (W, ...) zeroed per-worker partial sums."""
    N = gy.shape[0]
    W = gwn.shape[0]
    for w in prange(W):
        for blk in range(w, num_blocks(N), W):
            i0, i1 = row_block(blk, N)
            block_product(dagg, i0, i1, gy, i0, wnt, 0)
            _scale_rows(dagg, i0, i1, row_scale)
            block_product_tn(gwn[w], agg, i0, gy, i0, i1)
            _column_sums(gb[w], gy, i0, i1)
            if has_root:
                block_product(dxr, i0, i1, gy, i0, wrt, 0)
                block_product_tn(gwr[w], x, i0, gy, i0, i1)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def scatter(g, nbr, indptr, a, r, has_r, out):
    """out_j = a r_j + sum_p g[nbr[p]] over the CSR slots of j (the transpose of the
    aggregation: a backward pass sends each node's gradient back along its edges)."""
    N = out.shape[0]
    for j in prange(N):
        _row_sum(g, nbr, indptr[j], indptr[j + 1], out[j])
        if has_r:
            for d in range(out.shape[1]):
                out[j, d] += a * r[j, d]
