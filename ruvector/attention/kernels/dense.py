"""Fused scaled dot-product attention kernels (forward, backward, weights).

All arrays are 4-D ``(B, H, L, D)`` C-contiguous of one float dtype; ``mask`` is a boolean
array broadcast (zero strides allowed) to ``(B, H, Lq, Lk)`` with True = may attend.

Forward (online / streaming softmax, Milakov & Gimelshein 2018; Dao et al. 2022):
for a tile of query rows and successive key tiles ``K_t``,

    S = (scale * Q) K_t^T,   m' = max(m, rowmax S),   P = exp(S - m'),
    l' = l exp(m - m') + rowsum P,   A' = A exp(m - m') + P V_t,

and at the end ``O = A / l`` and ``lse = m + log l`` (saved for the backward).  No
``(Lq, Lk)`` matrix is formed.  A row without any allowed key gets ``O = 0``,
``lse = -inf``.  Query-row tiles of ``QB`` rows and key tiles of ``KT`` keys keep the score
tile in L2; the tile products run through BLAS (``np.dot``), which the caller must restrict
to one thread while a parallel kernel runs.

Work is split into tasks (batch, head, query tile, key chunk).  When there are fewer
(batch, head, query tile) triples than threads, the keys are split into chunks whose partial
results are merged by log-sum-exp in :func:`merge_key_chunks`.  Tasks are dealt round-robin
to a fixed number of workers, each with its own scratch: no allocation inside ``prange``,
no shared writes, the same result on every run.

Backward (recomputing P from the saved ``lse``), with ``delta_i = rowsum(dO_i * O_i)``:

    dV_t += P^T dO,  dP = dO V_t^T,  dS = P * (dP - delta),
    dQ += scale dS K_t,  dK_t += scale dS^T Q.

Tasks are (batch, head, query chunk, key chunk); each query chunk owns a private dK/dV
accumulator and each key chunk a private dQ part, which the caller sums, so no two workers
ever write the same memory.

Dropout (training) multiplies P by ``Z / (1 - p)`` in the ``P V`` product only, where the
keep bit ``Z_ij`` comes from a counter-based hash (splitmix64) of (seed, b, h, i, j): the
backward recomputes the same bits without storing them.
"""
import numpy as np
from numba import njit, prange

from ._math import FASTMATH, exp_row

QB = 128  # query rows per tile
KT = 256  # keys per tile


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


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _masked_scores(S, mask, has_mask, causal, window, b, h, i0, jt):
    """Set disallowed entries of the score tile S (rows i0.., keys jt..) to -inf: the mask,
    causal (j > i) and, with window >= 0, the band |i - j| > window."""
    nq, nk = S.shape
    ninf = -np.inf
    for r in range(nq):
        if window >= 0:
            for c in range(0, min(nk, max(0, i0 + r - window - jt))):
                S[r, c] = ninf
            for c in range(max(0, i0 + r + window + 1 - jt), nk):
                S[r, c] = ninf
        if has_mask:
            for c in range(nk):
                if not mask[b, h, i0 + r, jt + c]:
                    S[r, c] = ninf
        if causal:
            for c in range(max(0, i0 + r + 1 - jt), nk):
                S[r, c] = ninf


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _scaled_copy(src, scale, dst):
    for r in range(src.shape[0]):
        for c in range(src.shape[1]):
            dst[r, c] = src[r, c] * scale


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _poison(a):
    """sum of a * 0 over a 2-D tile: 0 when every entry is finite, NaN otherwise.

    Applied to each raw score tile S = Q K^T (before masking): a NaN/Inf in a query or key
    entry makes its scores non-finite, so the inputs are validated without another pass over
    memory.  (A NaN/Inf value entry reaches the output through P V, even where P = 0.)
    The fast-math flags used here keep NaN semantics, so ``x * 0`` is not folded to 0.
    """
    acc = a.dtype.type(0)
    for r in range(a.shape[0]):
        for c in range(a.shape[1]):
            acc += a[r, c] * a.dtype.type(0)
    return acc


SMALL_Q = 8  # below this many query rows, plain loops beat a BLAS call


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _scores(Qs, Kt, S):
    """S = Qs Kt^T (np.dot for tiles; loops for a few rows, where sgemm is slow)."""
    if Qs.shape[0] >= SMALL_Q:
        np.dot(Qs, Kt.T, S)
        return
    nk, D = Kt.shape
    zero = Qs.dtype.type(0)
    for r in range(Qs.shape[0]):
        c = 0
        while c + 4 <= nk:  # four keys per pass: each query element is loaded once
            a0 = zero
            a1 = zero
            a2 = zero
            a3 = zero
            for d in range(D):
                x = Qs[r, d]
                a0 += x * Kt[c, d]
                a1 += x * Kt[c + 1, d]
                a2 += x * Kt[c + 2, d]
                a3 += x * Kt[c + 3, d]
            S[r, c] = a0
            S[r, c + 1] = a1
            S[r, c + 2] = a2
            S[r, c + 3] = a3
            c += 4
        for c in range(c, nk):
            a0 = zero
            for d in range(D):
                a0 += Qs[r, d] * Kt[c, d]
            S[r, c] = a0


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _accumulate_pv(P, Vt, A, T):
    """A += P Vt (T is scratch of A's shape for the BLAS path)."""
    if P.shape[0] >= SMALL_Q:
        np.dot(P, Vt, T)
        A += T
        return
    for r in range(P.shape[0]):
        for c in range(P.shape[1]):
            p = P[r, c]
            for d in range(Vt.shape[1]):
                A[r, d] += p * Vt[c, d]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _accumulate_tn(P, X, out, T):
    """out += P^T X for P (nq, nk), X (nq, d), out (nk, d) (T: scratch of out's shape)."""
    if P.shape[0] >= SMALL_Q:
        np.dot(P.T, X, T)
        out += T
        return
    for r in range(P.shape[0]):
        for c in range(P.shape[1]):
            p = P[r, c]
            for d in range(X.shape[1]):
                out[c, d] += p * X[r, d]


@njit(cache=True, fastmath=FASTMATH)
def _forward_task(q, k, v, mask, has_mask, causal, window, scale, drop_p, seed,
                  b, h, i0, i1, j0, j1, out_o, out_lse, qs, sbuf, pbuf, acc, tmp, m, l, ibuf):
    """Online-softmax attention of query rows i0:i1 over keys j0:j1 of (b, h).

    Returns the poison sum of the score tiles and of the outputs: 0, or NaN when a score,
    an output or a log-sum-exp is not finite (a NaN/Inf input, or an overflow).
    """
    H, Lq, Lk = q.shape[1], q.shape[2], k.shape[2]
    D, Dv = q.shape[3], v.shape[3]
    nq = i1 - i0
    Qs = qs[:nq * D].reshape((nq, D))
    _scaled_copy(q[b, h, i0:i1], scale, Qs)
    poison = Qs.dtype.type(0)
    A = acc[:nq * Dv].reshape((nq, Dv))
    A[:, :] = 0
    for r in range(nq):
        m[r] = -np.inf
        l[r] = 0
    jend = min(j1, i1) if causal else j1
    jstart = j0
    if window >= 0:                    # band: keys i0 - window .. i1 - 1 + window
        jstart = max(j0, i0 - window)
        jend = min(jend, i1 + window)
    inv_keep = 1.0 / (1.0 - drop_p) if drop_p > 0 else 1.0
    for jt in range(jstart, jend, KT):
        je = min(jt + KT, jend)
        nk = je - jt
        S = sbuf[:nq * nk].reshape((nq, nk))
        P = pbuf[:nq * nk].reshape((nq, nk))
        _scores(Qs, k[b, h, jt:je], S)
        poison += _poison(S)
        if has_mask or (causal and je - 1 > i0) or (
                window >= 0 and (jt < i1 - 1 - window or je - 1 > i0 + window)):
            _masked_scores(S, mask, has_mask, causal, window, b, h, i0, jt)
        for r in range(nq):
            row = S[r]
            rmax = m[r]
            for c in range(nk):
                rmax = max(rmax, row[c])
            if rmax == -np.inf:
                P[r, :] = 0
                continue
            alpha = np.exp(m[r] - rmax)
            rs = exp_row(row, rmax, P[r], ibuf)
            l[r] = l[r] * alpha + rs
            m[r] = rmax
            if alpha != 1:
                for c in range(Dv):
                    A[r, c] *= alpha
            if drop_p > 0:
                for c in range(nk):
                    if keep_bit(seed, b, h, i0 + r, jt + c, H, Lq, Lk, drop_p):
                        P[r, c] *= inv_keep
                    else:
                        P[r, c] = 0
        _accumulate_pv(P, v[b, h, jt:je], A, tmp[:nq * Dv].reshape((nq, Dv)))
    zero = poison * 0
    for r in range(nq):
        if l[r] > 0:
            inv = 1.0 / l[r]
            for c in range(Dv):
                out_o[r, c] = A[r, c] * inv
                poison += out_o[r, c] * zero
            out_lse[r] = m[r] + np.log(l[r])
            poison += out_lse[r] * zero
        else:
            out_o[r, :] = 0
            out_lse[r] = -np.inf
    return poison


def forward_scratch_size(D, Dv):
    """float scratch per worker for the forward: Qs, S, P, A, T, m, l."""
    return QB * D + 2 * QB * KT + QB * Dv + QB * max(D, Dv) + 2 * QB


@njit(cache=True)
def _forward_worker(w, W, q, k, v, mask, has_mask, causal, window, scale, drop_p, seed,
                    nkc, kchunk, o, lse, fscratch, iscratch, poison):
    B, H, Lq = q.shape[0], q.shape[1], q.shape[2]
    Lk, D, Dv = k.shape[2], q.shape[3], v.shape[3]
    buf = fscratch[w]
    n0 = QB * D
    n1 = n0 + QB * KT
    n2 = n1 + QB * KT
    n3 = n2 + QB * Dv
    n4 = n3 + QB * max(D, Dv)
    qs, sbuf, pbuf, acc, tmp = buf[:n0], buf[n0:n1], buf[n1:n2], buf[n2:n3], buf[n3:n4]
    m, l = buf[n4:n4 + QB], buf[n4 + QB:n4 + 2 * QB]
    nqb = (Lq + QB - 1) // QB
    ntasks = B * H * nqb * nkc
    for t in range(w, ntasks, W):
        kc = t % nkc
        rest = t // nkc
        qb = rest % nqb
        bh = rest // nqb
        b, h = bh // H, bh % H
        i0 = qb * QB
        i1 = min(i0 + QB, Lq)
        j0 = kc * kchunk
        j1 = min(j0 + kchunk, Lk)
        poison[w] += _forward_task(q, k, v, mask, has_mask, causal, window, scale, drop_p, seed,
                                   b, h, i0, i1, j0, j1, o[kc, b, h, i0:i1],
                                   lse[kc, b, h, i0:i1], qs, sbuf, pbuf, acc, tmp, m, l,
                                   iscratch[w])


@njit(cache=True, parallel=True)
def forward_parallel(q, k, v, mask, has_mask, causal, window, scale, drop_p, seed, nkc, kchunk,
                     o, lse, fscratch, iscratch, poison):
    """Forward over W = len(fscratch) workers; o: (nkc, B, H, Lq, Dv), lse: (nkc, B, H, Lq).

    fscratch: (W, forward_scratch_size(D, Dv)) floats; iscratch: (W, KT) int32; poison: (W,)
    zeroed, NaN afterwards where a worker read a non-finite input.
    """
    W = fscratch.shape[0]
    for w in prange(W):
        _forward_worker(w, W, q, k, v, mask, has_mask, causal, window, scale, drop_p, seed,
                        nkc, kchunk, o, lse, fscratch, iscratch, poison)


@njit(cache=True)
def forward_serial(q, k, v, mask, has_mask, causal, window, scale, drop_p, seed, nkc, kchunk,
                   o, lse, fscratch, iscratch, poison):
    """Single-threaded forward (same tasks as :func:`forward_parallel`, one worker)."""
    _forward_worker(0, 1, q, k, v, mask, has_mask, causal, window, scale, drop_p, seed,
                    nkc, kchunk, o, lse, fscratch, iscratch, poison)


@njit(cache=True, fastmath=FASTMATH)
def _backward_task(q, k, v, do, lse, delta, mask, has_mask, causal, window, scale, drop_p, seed,
                   b, h, i0, i1, j0, j1, dq, dk, dv, qs, sbuf, pbuf, dqacc, tmp, ibuf):
    """Gradient contributions of query rows i0:i1 and keys j0:j1 of (b, h): writes dq (this
    key range's part), adds into dk/dv."""
    H, Lq, Lk = q.shape[1], q.shape[2], k.shape[2]
    D, Dv = q.shape[3], v.shape[3]
    nq = i1 - i0
    Qs = qs[:nq * D].reshape((nq, D))
    _scaled_copy(q[b, h, i0:i1], scale, Qs)
    dO = do[b, h, i0:i1]
    dQ = dqacc[:nq * D].reshape((nq, D))
    dQ[:, :] = 0
    jend = min(j1, i1) if causal else j1
    jstart = j0
    if window >= 0:                    # band: keys i0 - window .. i1 - 1 + window
        jstart = max(j0, i0 - window)
        jend = min(jend, i1 + window)
    inv_keep = 1.0 / (1.0 - drop_p) if drop_p > 0 else 1.0
    for jt in range(jstart, jend, KT):
        je = min(jt + KT, jend)
        nk = je - jt
        S = sbuf[:nq * nk].reshape((nq, nk))
        P = pbuf[:nq * nk].reshape((nq, nk))
        _scores(Qs, k[b, h, jt:je], S)
        if has_mask or (causal and je - 1 > i0) or (
                window >= 0 and (jt < i1 - 1 - window or je - 1 > i0 + window)):
            _masked_scores(S, mask, has_mask, causal, window, b, h, i0, jt)
        for r in range(nq):
            if lse[b, h, i0 + r] == -np.inf:
                P[r, :] = 0
            else:
                exp_row(S[r], lse[b, h, i0 + r], P[r], ibuf)
        if drop_p > 0:
            # S <- P * Z / (1 - p): the probabilities that multiplied V.
            for r in range(nq):
                for c in range(nk):
                    keep = keep_bit(seed, b, h, i0 + r, jt + c, H, Lq, Lk, drop_p)
                    S[r, c] = P[r, c] * inv_keep if keep else 0
            _accumulate_tn(S, dO, dv[jt:je], tmp[:nk * Dv].reshape((nk, Dv)))
        else:
            _accumulate_tn(P, dO, dv[jt:je], tmp[:nk * Dv].reshape((nk, Dv)))
        _scores(dO, v[b, h, jt:je], S)  # S <- dP
        for r in range(nq):
            dl = delta[b, h, i0 + r]
            for c in range(nk):
                g = S[r, c]
                if drop_p > 0:
                    keep = keep_bit(seed, b, h, i0 + r, jt + c, H, Lq, Lk, drop_p)
                    g = g * inv_keep if keep else 0
                S[r, c] = P[r, c] * (g - dl)  # S <- dS
        _accumulate_pv(S, k[b, h, jt:je], dQ, tmp[:nq * D].reshape((nq, D)))
        _accumulate_tn(S, Qs, dk[jt:je], tmp[:nk * D].reshape((nk, D)))
    _scaled_copy(dQ, scale, dq)


def backward_scratch_size(D, Dv):
    """float scratch per worker for the backward: Qs, S, P, dQ, T."""
    return 2 * QB * D + 2 * QB * KT + max(KT, QB) * max(D, Dv)


@njit(cache=True)
def _backward_worker(w, W, q, k, v, do, lse, delta, mask, has_mask, causal, window, scale, drop_p,
                     seed, nqc, nkc, dq, dk, dv, fscratch, iscratch):
    B, H, Lq = q.shape[0], q.shape[1], q.shape[2]
    Lk, D = k.shape[2], q.shape[3]
    buf = fscratch[w]
    n0 = QB * D
    n1 = n0 + QB * KT
    n2 = n1 + QB * KT
    n3 = n2 + QB * D
    qs, sbuf, pbuf, dqacc, tmp = buf[:n0], buf[n0:n1], buf[n1:n2], buf[n2:n3], buf[n3:]
    nqb = (Lq + QB - 1) // QB
    per = (nqb + nqc - 1) // nqc
    kchunk = (Lk + nkc - 1) // nkc
    ntasks = B * H * nqc * nkc
    for t in range(w, ntasks, W):
        kc = t % nkc
        rest = t // nkc
        qc = rest % nqc
        bh = rest // nqc
        b, h = bh // H, bh % H
        j0 = kc * kchunk
        j1 = min(j0 + kchunk, Lk)
        for qb in range(qc * per, min((qc + 1) * per, nqb)):
            i0 = qb * QB
            i1 = min(i0 + QB, Lq)
            _backward_task(q, k, v, do, lse, delta, mask, has_mask, causal, window, scale, drop_p,
                           seed, b, h, i0, i1, j0, j1, dq[kc, b, h, i0:i1], dk[qc, b, h],
                           dv[qc, b, h], qs, sbuf, pbuf, dqacc, tmp, iscratch[w])


@njit(cache=True, parallel=True)
def backward_parallel(q, k, v, do, lse, delta, mask, has_mask, causal, window, scale, drop_p, seed,
                      nqc, nkc, dq, dk, dv, fscratch, iscratch):
    """Backward over W = len(fscratch) workers.

    Tasks are (batch, head, query chunk, key chunk): dq (nkc, B, H, Lq, D) holds one part per
    key chunk (written), dk / dv (nqc, B, H, Lk, D) one zeroed partial sum per query chunk;
    the caller sums the parts.
    """
    W = fscratch.shape[0]
    for w in prange(W):
        _backward_worker(w, W, q, k, v, do, lse, delta, mask, has_mask, causal, window, scale,
                         drop_p, seed, nqc, nkc, dq, dk, dv, fscratch, iscratch)


@njit(cache=True)
def backward_serial(q, k, v, do, lse, delta, mask, has_mask, causal, window, scale, drop_p, seed,
                    nqc, nkc, dq, dk, dv, fscratch, iscratch):
    """Single-threaded backward (same tasks as :func:`backward_parallel`)."""
    _backward_worker(0, 1, q, k, v, do, lse, delta, mask, has_mask, causal, window, scale,
                     drop_p, seed, nqc, nkc, dq, dk, dv, fscratch, iscratch)


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
            allowed = (not has_mask or mask[b, h, i, j]) and (not causal or j <= i) and \
                (window < 0 or abs(i - j) <= window)
            if allowed and li != -np.inf:
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
