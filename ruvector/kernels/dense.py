"""Fused scaled dot-product attention kernels (forward, backward, weights).

All arrays are 4-D ``(B, H, L, D)`` C-contiguous of one float dtype; ``mask`` is a boolean
array broadcast (zero strides allowed) to ``(B, H, Lq, Lk)`` with True = may attend.

Forward (online / streaming softmax, Milakov & Gimelshein 2018; Dao et al. 2022):
for a tile of query rows and successive key tiles ``K_t``,

    S = (scale * Q) K_t^T,   m' = max(m, rowmax S),   P = exp(S - m'),
    l' = l exp(m - m') + rowsum P,   A' = A exp(m - m') + P V_t,

and at the end ``O = A / l`` and ``lse = m + log l`` (saved for the backward).  No
``(Lq, Lk)`` matrix is formed.  Tiles of at least ROWS_MIN query rows hold S^T (keys x
queries) and A^T, and run both products (S^T = K (scale Q)^T, A^T += V^T P^T) through the
register-tiled micro-kernel of ``_simd``, whose epilogue also takes the per-query maxima;
their queries are cut into panels one micro-tile wide, each a contiguous block of (scale
Q)^T, S^T and A^T.  Once every m is finite, an unmasked tile is first tried *lazily*:
P = exp(S - m) is computed in the epilogue with the old m (no rescale of A), which is exact
as long as the tile's maxima stay <= m + LAZY_LIMIT (so P <= e^8); otherwise the tile is
recomputed with the exact rescaling step above.  A row without any allowed key gets
``O = 0``, ``lse = -inf``.  Query-row tiles of ``QB_FWD`` rows and key tiles of ``KT`` keys
keep the working set in L2.

Work is split into tasks (batch, head, query tile, key chunk).  When there are fewer
(batch, head, query tile) triples than threads, the keys are split into chunks whose partial
results are merged by log-sum-exp (:func:`merge_chunks`) at the end of the same call.  A
fixed number of workers, each with its own scratch, take the next task from a shared atomic
counter (:func:`_simd.claim_next`) whenever they are free, so a worker whose core is busy
with another process does not hold up the rest.  No allocation inside ``prange``, no shared
writes, and each task's result does not depend on which worker ran it: the same result on
every run.

The backward is in :mod:`.dense_backward`; it shares this module's tile helpers.

Dropout (training) multiplies P by ``Z / (1 - p)`` in the ``P V`` product only, where the
keep bit ``Z_ij`` comes from a counter-based hash (splitmix64) of (seed, b, h, i, j): the
backward recomputes the same bits without storing them.
"""
import numpy as np
from numba import njit, prange

from ._math import FASTMATH, exp_row, fexp
from ._simd import ACCUMULATE, COLUMN_MAX, EXP_SHIFTED, MR, NVEC, claim_next, gemm_block, \
    simd_lanes, tile_multiple
from . import _isa

# query rows per forward tile: whole query panels (one micro-tile of float32 columns each)
QB_FWD = tile_multiple(NVEC * _isa.lanes(4), 256)
# keys per tile: whole micro-tile rows, so the products whose rows are keys (S^T; P^T, dS^T,
# dV, dK in the backward) end in no partial row block; ~128 keys keep a tile in L1 / L2
KT = tile_multiple(MR, 128)
# keys per tile of a narrow query tile (fewer than ROWS_MIN rows): its score tile is small,
# so it takes 4 KT keys at a time (fewer switches between the K and V streams)
KT_NARROW = 4 * KT


@njit(cache=True, inline="always")
def keep_bit(seed, b, h, i, j, H, Lq, Lk, drop_p):
    """True when entry (b, h, i, j) survives dropout with probability ``1 - drop_p``."""
    idx = np.uint64(((b * H + h) * Lq + i) * Lk + j)
    z = idx + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    u = np.float64(z >> np.uint64(40)) * (1.0 / 16777216.0)
    return u >= drop_p


@njit(cache=True, inline="always")
def _key_range(i0, i1, j0, j1, causal, window):
    """Keys that rows i0:i1 may see within j0:j1: causal stops at i1, a band at i +- window."""
    jstart, jend = j0, (min(j1, i1) if causal else j1)
    if window >= 0:
        jstart = max(j0, i0 - window)
        jend = min(jend, i1 + window)
    return jstart, jend


@njit(cache=True, inline="always")
def _tile_needs_mask(has_mask, causal, window, i0, i1, jt, je):
    """True when some entry of the (i0:i1, jt:je) tile may be disallowed."""
    return has_mask or (causal and je - 1 > i0) or (
        window >= 0 and (jt < i1 - 1 - window or je - 1 > i0 + window))


@njit(cache=True, inline="always")
def allowed(mask, has_mask, causal, window, b, h, i, j):
    """True when query i of (b, h) may attend to key j (mask, causal j <= i, band |i - j|);
    an axis of length 1 in ``mask`` is broadcast."""
    return (not has_mask or mask[b if mask.shape[0] > 1 else 0, h if mask.shape[1] > 1 else 0,
                                 i if mask.shape[2] > 1 else 0, j if mask.shape[3] > 1 else 0]
            ) and (not causal or j <= i) and (
        window < 0 or abs(i - j) <= window)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _mask_scores(S, wide, mask, has_mask, causal, window, b, h, i0, jt):
    """Set disallowed entries of a score tile to -inf.  A wide tile is transposed (keys x
    queries: S[c, r]), a narrow one is S[r, c], for query i0 + r and key jt + c.  Causal
    alone (no mask, no band) fills the disallowed runs directly: key jt + c is hidden from
    the queries before it, a prefix of row c of a wide tile (a suffix of a narrow row)."""
    nq, nk = (S.shape[1], S.shape[0]) if wide else S.shape
    ninf = -np.inf
    if causal and not has_mask and window < 0:
        for c in range(nk):
            hidden = min(max(jt + c - i0, 0), nq)  # rows r < jt + c - i0 may not see key c
            if wide:
                S[c, :hidden] = ninf
            else:
                for r in range(hidden):
                    S[r, c] = ninf
        return
    for r in range(nq):
        i = i0 + r
        for c in range(nk):
            if not allowed(mask, has_mask, causal, window, b, h, i, jt + c):
                if wide:
                    S[c, r] = ninf
                else:
                    S[r, c] = ninf


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _poison(a):
    """sum of a * 0 over a C-contiguous 2-D tile: 0 when every entry is finite, NaN otherwise.

    Applied to each raw score tile S = Q K^T (before masking): a NaN/Inf in a query or key
    entry makes its scores non-finite, so the inputs are validated without another pass over
    memory.  (A NaN/Inf value entry reaches the output through P V, even where P = 0.)
    The fast-math flags used here keep NaN semantics, so ``x * 0`` is not folded to 0.
    One flat loop: summed row by row, every row's SIMD partial sums would be reduced into
    one scalar chain (18 -> ~2 us for a 256 x 132 tile).
    """
    flat = a.reshape(-1)
    acc = a.dtype.type(0)
    for i in range(flat.shape[0]):
        acc += flat[i] * a.dtype.type(0)
    return acc


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _scaled_copy(src, scale, dst):
    """dst = scale * src (a query tile of the row-at-a-time path)."""
    for r in range(src.shape[0]):
        for d in range(src.shape[1]):
            dst[r, d] = src[r, d] * scale


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _drop(P, wide, seed, b, h, i0, jt, H, Lq, Lk, drop_p):
    """P <- P Z / (1 - p) with the keep bits Z of the tile (layout as in _mask_scores)."""
    inv_keep = P.dtype.type(1.0 / (1.0 - drop_p))
    nq, nk = (P.shape[1], P.shape[0]) if wide else P.shape
    for r in range(nq):
        for c in range(nk):
            keep = keep_bit(seed, b, h, i0 + r, jt + c, H, Lq, Lk, drop_p)
            if wide:
                P[c, r] = P[c, r] * inv_keep if keep else 0
            else:
                P[r, c] = P[r, c] * inv_keep if keep else 0


ROWS_MIN = 16  # query tiles with fewer rows run the row-at-a-time path
LAZY_LIMIT = 8.0  # a lazy step keeps the running max m while every tile max stays <= m + 8


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _row_scores(Q, K, S):
    """S = Q K^T for a few query rows, four keys per pass (each query element loaded once)."""
    nk, D = K.shape
    zero = Q.dtype.type(0)
    for r in range(Q.shape[0]):
        c = 0
        while c + 4 <= nk:
            a0 = zero
            a1 = zero
            a2 = zero
            a3 = zero
            for d in range(D):
                x = Q[r, d]
                a0 += x * K[c, d]
                a1 += x * K[c + 1, d]
                a2 += x * K[c + 2, d]
                a3 += x * K[c + 3, d]
            S[r, c] = a0
            S[r, c + 1] = a1
            S[r, c + 2] = a2
            S[r, c + 3] = a3
            c += 4
        for c in range(c, nk):
            a0 = zero
            for d in range(D):
                a0 += Q[r, d] * K[c, d]
            S[r, c] = a0


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _row_accumulate(P, X, out):
    """out += P X for a narrow (rows, keys) tile P, four keys per pass (each out element
    loaded and stored once per four keys instead of once per key)."""
    nk = P.shape[1]
    for r in range(P.shape[0]):
        o = out[r]
        c = 0
        while c + 4 <= nk:
            p0, p1, p2, p3 = P[r, c], P[r, c + 1], P[r, c + 2], P[r, c + 3]
            x0, x1, x2, x3 = X[c], X[c + 1], X[c + 2], X[c + 3]
            for w in range(o.shape[0]):
                o[w] += (p0 * x0[w] + p1 * x1[w]) + (p2 * x2[w] + p3 * x3[w])
            c += 4
        for c in range(c, nk):
            p, x = P[r, c], X[c]
            for w in range(o.shape[0]):
                o[w] += p * x[w]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _max_into(S, wide, cmax):
    """cmax[r] = max(cmax[r], max_c S_rc) (layout as in _mask_scores; the contiguous index
    innermost, so the loops vectorise)."""
    if wide:
        for c in range(S.shape[0]):
            for r in range(S.shape[1]):
                cmax[r] = max(cmax[r], S[c, r])
    else:
        for r in range(S.shape[0]):
            top = cmax[r]
            for c in range(S.shape[1]):
                top = max(top, S[r, c])
            cmax[r] = top


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _exp_shifted(S, wide, shift, sums):
    """S_rc <- exp(S_rc - shift[r]) and sums[r] += the new values (layout as in
    _mask_scores)."""
    if wide:  # two keys per pass: shift and sums are read and written once per pair
        nk = S.shape[0]
        for c in range(0, nk - 1, 2):
            for r in range(S.shape[1]):
                e0 = fexp(S[c, r] - shift[r])
                e1 = fexp(S[c + 1, r] - shift[r])
                S[c, r] = e0
                S[c + 1, r] = e1
                sums[r] += e0 + e1
        if nk % 2:
            for r in range(S.shape[1]):
                e = fexp(S[nk - 1, r] - shift[r])
                S[nk - 1, r] = e
                sums[r] += e
    else:
        for r in range(S.shape[0]):
            sums[r] += exp_row(S[r], shift[r], S[r])


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _online_softmax_step(S, wide, m, l, A, cmax, alpha, max_done):
    """One key tile of the streaming softmax (layout as in _mask_scores; a wide tile's
    accumulator is A^T, (Dv, queries)):
    m' = max(m, max_c S), S <- exp(S - m'), l <- l e^(m - m') + sum_c S, A <- A e^(m - m').
    Rows with no allowed key so far keep m = -inf, l = 0 and get S = 0; their A is still 0,
    so a tile whose rescaled rows all had m = -inf (a task's first tile) skips the rescale.
    With ``max_done`` cmax already holds m' (fused into the score product).  ``alpha``:
    scratch for the rows' factors e^(m - m'), applied to A^T in one contiguous pass."""
    nq = S.shape[1] if wide else S.shape[0]
    if not max_done:
        cmax[:nq] = m[:nq]
        _max_into(S, wide, cmax)
    rescale = False
    for r in range(nq):
        new = cmax[r]
        shift = new if new != -np.inf else 0  # exp(-inf - 0) = 0 for empty rows
        a = fexp(m[r] - shift)                 # 0 when m = -inf
        rescale = rescale or (a != 1 and m[r] != -np.inf)
        alpha[r] = a
        cmax[r] = shift
        l[r] *= a
        m[r] = new
    if rescale:
        if wide:
            for d in range(A.shape[0]):
                for r in range(nq):
                    A[d, r] *= alpha[r]
        else:
            for r in range(nq):
                for d in range(A.shape[1]):
                    A[r, d] *= alpha[r]
    _exp_shifted(S, wide, cmax, l)


@njit(cache=True, inline="always")
def _tile(buf, rows, cols):
    """A (rows, cols) C-contiguous view of the start of a flat scratch buffer."""
    return buf[:rows * cols].reshape((rows, cols))


@njit(cache=True, inline="always")
def _panel_width(buf, nq, wide):
    """Queries per panel of a tile: one micro-tile's width when it divides the rows, else all."""
    nr = simd_lanes(buf)
    return nr if wide and nq % nr == 0 else nq


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _pack_scaled(src, scale, dst, width):
    """dst = scale src^T in panels of ``width`` queries: panel p, the (D, width) block of
    queries p width .. (p + 1) width - 1, starts at dst[p D width] (one panel of all the
    rows is the plain transpose)."""
    D = src.shape[1]
    for r in range(src.shape[0]):
        base = (r // width) * D * width + r % width
        for d in range(D):
            dst[base + d * width] = src[r, d] * scale


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _pack_columns(src, scale, dst, width):
    """dst = scale src (rows, D) in panels of ``width`` columns (width divides D, as
    :func:`_panel_width` picks it): panel p, the (rows, width) block of columns
    p width .. (p + 1) width - 1, starts at dst[p rows width] (one panel of all the columns
    is a plain copy).  As the B operand of a product, a panel's rows lie one cache line
    apart for width = 16 float32, where rows of a (rows, 64) matrix lie four apart and so
    fall into a quarter of the L1 sets (192 of them overflow those sets)."""
    rows, D = src.shape
    for p in range(D // width):
        for r in range(rows):
            base = (p * rows + r) * width
            for c in range(width):
                dst[base + c] = src[r, p * width + c] * scale


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _panel_product(C, c_step, ldc, A, a_off, sa_r, sa_c, Bm, m, kdim, width, npanels, mode, cs,
                   cs_len):
    """For each panel p: C_p (m, width) (+)= A (m, kdim) B_p (kdim, width), where B_p is the
    contiguous block at Bm[p kdim width], C_p starts at C[p c_step] with rows ``ldc`` apart
    (c_step = m width, ldc = width: contiguous panels; c_step = width, ldc = all columns:
    one row-major matrix), and A is addressed as in gemm_block; the column state of panel p
    starts at cs[p width]."""
    for p in range(npanels):
        gemm_block(C, p * c_step, ldc, A, a_off, sa_r, sa_c, Bm, p * kdim * width, width,
                   m, width, kdim, mode, cs[p * width:], cs_len)


@njit(cache=True, fastmath=FASTMATH)
def _forward_task(q, k, v, mask, has_mask, causal, window, scale, drop_p, seed,
                  b, h, i0, i1, j0, j1, out_o, out_lse, qbuf, sbuf, abuf, m, l, cstate):
    """Online-softmax attention of query rows i0:i1 over keys j0:j1 of (b, h).

    Tiles of at least ROWS_MIN rows work on S^T = K (scale Q)^T (keys x queries) and
    A^T = V^T P^T with the register-tiled product of _simd and a column-wise softmax.  Their
    queries are split into panels one micro-tile wide (all of them when the rows do not
    divide evenly): each panel of (scale Q)^T, S^T and A^T is a contiguous block, so the
    products stream through contiguous memory instead of rows a whole tile apart (which
    map to a few L1 sets).  Smaller tiles run row by row.
    Returns the poison sum of the score tiles, the accumulators A and the log-sum-exps: 0,
    or NaN when one of them is not finite (a NaN/Inf input, or an overflow; the outputs
    A / l are then finite too).
    """
    H, Lq, Lk = q.shape[1], q.shape[2], k.shape[2]
    D, Dv = q.shape[3], v.shape[3]
    kf, vf = k.reshape(-1), v.reshape(-1)
    kb0 = (b * H + h) * Lk * D
    vb0 = (b * H + h) * Lk * Dv
    nq = i1 - i0
    wide = nq >= ROWS_MIN
    width = _panel_width(qbuf, nq, wide)
    npan = nq // width
    Qs = _tile(qbuf, nq, D)
    if wide:
        _pack_scaled(q[b, h, i0:i1], scale, qbuf, width)
        acc = abuf[:nq * Dv].reshape((npan, Dv, width))  # panels of A^T
    else:
        _scaled_copy(q[b, h, i0:i1], scale, Qs)
        acc = abuf[:nq * Dv].reshape((1, nq, Dv))  # A
    abuf[:nq * Dv] = 0
    poison = qbuf.dtype.type(0)
    for r in range(nq):
        m[r] = -np.inf
        l[r] = 0
    jstart, jend = _key_range(i0, i1, j0, j1, causal, window)
    qr = cstate.shape[0] // 3
    cmax, shift, sums = cstate[:qr], cstate[qr:2 * qr], cstate[2 * qr:]
    ready = False  # every m finite: later unmasked tiles may use the lazy (fused exp) step
    step = KT if wide else KT_NARROW
    for jt in range(jstart, jend, step):
        je = min(jt + step, jend)
        nk = je - jt
        masked = _tile_needs_mask(has_mask, causal, window, i0, i1, jt, je)
        lazy = False
        if wide:  # panels of S^T
            tiles = sbuf[:nk * nq].reshape((npan, nk, width))
            lazy = ready and not masked
            cmax[:nq] = m[:nq]
            if lazy:  # P = exp(S - m) in the product's epilogue, m kept (see module doc)
                shift[:nq] = m[:nq]
                sums[:nq] = 0
                _panel_product(sbuf, nk * width, width, kf, kb0 + jt * D, D, 1, qbuf, nk, D,
                               width, npan, COLUMN_MAX | EXP_SHIFTED, cstate, qr)
                for r in range(nq):
                    if not cmax[r] <= m[r] + LAZY_LIMIT:  # a jump (or NaN): redo it exactly
                        lazy = False
                if lazy:
                    for r in range(nq):
                        l[r] += sums[r]
                else:
                    cmax[:nq] = m[:nq]
            if not lazy:  # S^T, with the column (query) maxima fused in when unmasked
                _panel_product(sbuf, nk * width, width, kf, kb0 + jt * D, D, 1, qbuf, nk, D,
                               width, npan, 0 if masked else COLUMN_MAX, cstate, qr)
        else:
            tiles = sbuf[:nq * nk].reshape((1, nq, nk))
            _row_scores(Qs, k[b, h, jt:je], tiles[0])
        for p in range(npan):
            r0, r1 = p * width, (p + 1) * width
            if not lazy:
                poison += _poison(tiles[p])
                if masked:
                    _mask_scores(tiles[p], wide, mask, has_mask, causal, window, b, h, i0 + r0, jt)
                _online_softmax_step(tiles[p], wide, m[r0:r1], l[r0:r1], acc[p], cmax[r0:r1],
                                     shift[r0:r1], wide and not masked)
            if drop_p > 0:
                _drop(tiles[p], wide, seed, b, h, i0 + r0, jt, H, Lq, Lk, drop_p)
        ready = ready or (wide and not masked)
        if wide:  # A^T += V_t^T P^T, panel by panel
            _panel_product(abuf, Dv * width, width, vf, vb0 + jt * Dv, 1, Dv, sbuf, Dv, nk, width,
                           npan, ACCUMULATE, cstate, 0)
        else:
            _row_accumulate(tiles[0], v[b, h, jt:je], acc[0])
    zero = poison * 0
    # NaN/Inf in A (a value entry, reached even through P = 0, or an overflow): checked in
    # one flat pass over A, not row by row in the copy below (one scalar chain)
    poison += _poison(abuf[:nq * Dv])
    for r in range(nq):
        if l[r] > 0:
            inv = 1.0 / l[r]
            p, rr = r // width, r % width
            for c in range(Dv):
                out_o[r, c] = (acc[p, c, rr] if wide else acc[0, r, c]) * inv
            out_lse[r] = m[r] + np.log(l[r])
            poison += out_lse[r] * zero
        else:
            out_o[r, :] = 0
            out_lse[r] = -np.inf
    return poison


@njit(cache=True, inline="always")
def task_coords(t, H, nq, nkc):
    """(b, h, query block or chunk, key chunk) of task t = ((b H + h) nq + query) nkc + key."""
    rest = t // nkc
    bh = rest // nq
    return bh // H, bh % H, rest % nq, t % nkc


@njit(cache=True)
def forward_scratch_size(D, Dv, Lq):
    """float scratch per worker for the forward: Q tile, score tile, A, m, l and the column
    state (max, shift, sums) of _simd, for tiles of min(QB_FWD, Lq) query rows."""
    qr = min(QB_FWD, Lq)
    return qr * D + _score_rows(qr) * qr + qr * Dv + 5 * qr


@njit(cache=True, inline="always")
def _score_rows(qr):
    """Score-tile columns per query row of the scratch for tiles of ``qr`` rows: KT_NARROW
    when every tile is narrow (qr < ROWS_MIN), else KT.  A narrow tile can then still occur
    only as the tail of Lq > QB_FWD rows (qr = QB_FWD), which holds it: (ROWS_MIN - 1)
    KT_NARROW <= QB_FWD KT."""
    return KT if qr >= ROWS_MIN else KT_NARROW


assert (ROWS_MIN - 1) * KT_NARROW <= QB_FWD * KT


@njit(cache=True)
def _forward_worker(w, q, k, v, mask, has_mask, causal, window, scale, drop_p, seed,
                    nkc, kchunk, o, lse, fscratch, poison, counter):
    B, H, Lq = q.shape[0], q.shape[1], q.shape[2]
    Lk, D, Dv = k.shape[2], q.shape[3], v.shape[3]
    buf = fscratch[w]
    sc = buf.dtype.type(scale)
    qr = min(QB_FWD, Lq)
    n0 = qr * D
    n1 = n0 + _score_rows(qr) * qr
    n2 = n1 + qr * Dv
    qbuf, sbuf, abuf = buf[:n0], buf[n0:n1], buf[n1:n2]
    m, l, cstate = buf[n2:n2 + qr], buf[n2 + qr:n2 + 2 * qr], buf[n2 + 2 * qr:n2 + 5 * qr]
    nqb = (Lq + QB_FWD - 1) // QB_FWD
    ntasks = B * H * nqb * nkc
    t = claim_next(counter)
    while t < ntasks:
        b, h, qb, kc = task_coords(t, H, nqb, nkc)
        if causal:  # the last query tiles see the most keys: hand them out first
            qb = nqb - 1 - qb
        i0 = qb * QB_FWD
        i1 = min(i0 + QB_FWD, Lq)
        j0 = kc * kchunk
        j1 = min(j0 + kchunk, Lk)
        poison[w] += _forward_task(q, k, v, mask, has_mask, causal, window, sc, drop_p, seed,
                                   b, h, i0, i1, j0, j1, o[kc, b, h, i0:i1],
                                   lse[kc, b, h, i0:i1], qbuf, sbuf, abuf, m, l, cstate)
        t = claim_next(counter)


@njit(cache=True)
def forward_one(q, k, v, no_mask, scale):
    """:func:`forward_serial` for one query q (D,) over keys k (Lk, D) and values v (Lk, Dv):
    returns (out (Dv,), poison total).  ``no_mask``: the (1, 1, 1, 1) broadcast mask the
    drivers pass when there is none (the same argument types as theirs: no second
    compilation of forward_serial).  It allocates its own few hundred floats of scratch:
    the public single-query form is called in loops, where each argument passed and each
    allocation made in Python costs more time than the allocations here."""
    D, Lk, Dv = q.shape[0], k.shape[0], v.shape[1]
    out = np.empty(Dv, q.dtype)
    lse = np.empty((1, 1, 1, 1), q.dtype)
    scratch = np.empty((1, forward_scratch_size(D, Dv, 1)), q.dtype)
    poison = np.empty(1, q.dtype)
    total = forward_serial(q.reshape((1, 1, 1, D)), k.reshape((1, 1, Lk, D)),
                           v.reshape((1, 1, Lk, Dv)), no_mask, False, False, -1, scale, 0.0, 0,
                           1, Lk, out.reshape((1, 1, 1, 1, Dv)), lse, out.reshape((1, 1, 1, Dv)),
                           lse[0], scratch, poison, np.empty(1, np.int64))
    return out, total


@njit(cache=True, parallel=True)
def forward_parallel(q, k, v, mask, has_mask, causal, window, scale, drop_p, seed, nkc, kchunk,
                     o, lse, out, out_lse, fscratch, poison, counter):
    """Forward over W = len(fscratch) workers into o: (nkc, B, H, Lq, Dv), lse: (nkc, B, H, Lq);
    with nkc > 1 key chunks the partials are then merged into out (B, H, Lq, Dv) and out_lse
    (B, H, Lq) (:func:`merge_chunks`; with nkc = 1 the caller passes o[0] and lse[0]).

    fscratch: (W, forward_scratch_size(D, Dv, Lq)) floats; poison: (W,), NaN afterwards where
    a worker read a non-finite input; counter: int64[1], the shared task counter (both are
    reset here, so a caller may reuse them).  ``scale`` is converted to the array dtype.
    Returns the poison total (0 or NaN).
    """
    counter[0] = 0
    poison[:] = 0
    for w in prange(fscratch.shape[0]):
        _forward_worker(w, q, k, v, mask, has_mask, causal, window, scale, drop_p, seed,
                        nkc, kchunk, o, lse, fscratch, poison, counter)
    if nkc > 1:
        merge_chunks(o, lse, out, out_lse)
    return poison.sum()


@njit(cache=True)
def forward_serial(q, k, v, mask, has_mask, causal, window, scale, drop_p, seed, nkc, kchunk,
                   o, lse, out, out_lse, fscratch, poison, counter):
    """Single-threaded forward (same tasks and arguments as :func:`forward_parallel`)."""
    counter[0] = 0
    poison[0] = 0
    _forward_worker(0, q, k, v, mask, has_mask, causal, window, scale, drop_p, seed,
                    nkc, kchunk, o, lse, fscratch, poison, counter)
    if nkc > 1:
        merge_chunks(o, lse, out, out_lse)
    return poison[0]


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def attention_weights(q, k, lse, mask, has_mask, causal, window, scale, out):
    """out[b, h, i, j] = exp(scale q_i . k_j - lse_i) on allowed entries, else 0."""
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    for bhi in prange(B * H * Lq):
        b = bhi // (H * Lq)
        h = (bhi // Lq) % H
        i = bhi % Lq
        row = out[b, h, i]
        li = lse[b, h, i]
        for j in range(Lk):
            if li != -np.inf and allowed(mask, has_mask, causal, window, b, h, i, j):
                s = 0.0
                for d in range(D):
                    s += q[b, h, i, d] * k[b, h, j, d]
                row[j] = np.exp(s * scale - li)
            else:
                row[j] = 0


@njit(cache=True, fastmath=FASTMATH)
def merge_chunks(o, lse, out, merged):
    """Merge key-chunk partials: merged = logsumexp_c lse_c, out = sum_c e^(lse_c - merged) o_c
    (rows whose chunks are all empty, lse = -inf, give 0 and -inf)."""
    C, B, H, Lq, Dv = o.shape
    for b in range(B):
        for h in range(H):
            for i in range(Lq):
                top = -np.inf
                for c in range(C):
                    top = max(top, lse[c, b, h, i])
                for d in range(Dv):
                    out[b, h, i, d] = 0
                if top == -np.inf:
                    merged[b, h, i] = -np.inf
                    continue
                total = 0.0
                for c in range(C):
                    total += np.exp(lse[c, b, h, i] - top)
                merged[b, h, i] = top + np.log(total)
                for c in range(C):
                    w = np.exp(lse[c, b, h, i] - top) / total
                    if w > 0:
                        for d in range(Dv):
                            out[b, h, i, d] += w * o[c, b, h, i, d]
