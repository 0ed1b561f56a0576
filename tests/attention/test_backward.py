"""Every backward against central finite differences in float64 (relative error < 1e-3)."""
import numpy as np
import pytest

import ruvector.attention.functional as F
from ruvector import MultiHeadAttention, ScaledDotProductAttention
from tests.conftest import dense_reference_grads, fd_entry, finite_difference, rel_error


def _sdpa_case(rng, shape_q, shape_k, dv, mask=None, causal=False, dropout=0.0):
    q = rng.standard_normal(shape_q)
    k = rng.standard_normal(shape_k)
    v = rng.standard_normal(shape_k[:-1] + (dv,))
    attn = ScaledDotProductAttention(causal=causal, dropout=dropout, seed=7, dtype=np.float64)
    if dropout:
        attn.train()
    w = rng.standard_normal(np.broadcast_shapes(shape_q[:-1] + (dv,)))

    def loss():
        attn._rng = np.random.default_rng(7)  # same dropout mask on every evaluation
        return float((attn.forward(q, k, v, mask) * w).sum())

    loss()
    grads = attn.backward(w)
    for x, g in zip((q, k, v), grads):
        assert g.shape == x.shape
        assert rel_error(g, finite_difference(loss, x)) < 1e-3


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_backward(rng, causal):
    mask = rng.random((2, 7, 9)) > 0.3
    mask[0, 2] = False  # an all-masked row has zero gradient
    _sdpa_case(rng, (2, 7, 5), (2, 9, 5), 3, mask=mask, causal=causal)


@pytest.mark.parametrize("shape_q, shape_k", [((4,), (6, 4)), ((3, 6), (5, 6)),
                                               ((2, 2, 3, 4), (2, 2, 8, 4))])
def test_sdpa_backward_every_rank(rng, shape_q, shape_k):
    _sdpa_case(rng, shape_q, shape_k, 2)


@pytest.mark.parametrize("masked, causal, dropout", [(True, False, 0.0), (False, True, 0.0),
                                                     (True, False, 0.3), (False, False, 0.0),
                                                     (False, False, 0.3)])
def test_sdpa_backward_wide_query_tiles(rng, masked, causal, dropout):
    """Tiles of at least ROWS_MIN query rows take the transposed (keys x queries) path."""
    mask = rng.random((1, 20, 23)) > 0.3 if masked else None
    _sdpa_case(rng, (1, 20, 5), (1, 23, 5), 3, mask=mask, causal=causal, dropout=dropout)


QB = F.dense_backward.QB_BWD  # query rows per backward tile


@pytest.mark.parametrize("Lq, causal, parallel", [(QB + 22, True, True), (QB + 5, False, False),
                                                   (QB + 5, True, True), (1, False, True),
                                                   (3 * QB, True, True)])
def test_sdpa_backward_multiple_tiles_and_parallel_split(rng, monkeypatch, Lq, causal,
                                                         parallel):
    """Several query blocks and key tiles; the parallel path splits queries into chunks, and
    a single query's keys.  QB + 5 rows end in a narrow block that adds to dK / dV (the block
    before it wrote them).  Causal 3 QB rows: three chunks cut at sqrt-spaced row boundaries,
    [0, 336), [336, 480), [480, 576), the first in two blocks (192 and 144 rows)."""
    monkeypatch.setattr(F, "PARALLEL_MIN_WORK_BACKWARD", 0 if parallel else 1 << 62)
    monkeypatch.setattr(F, "num_workers", lambda: 3)
    q = rng.standard_normal((1, 1, Lq, 3))
    k = rng.standard_normal((1, 1, 300, 3))
    v = rng.standard_normal((1, 1, 300, 2))
    out, ctx, _ = F.attention_forward(q, k, v, causal=causal)
    w = rng.standard_normal(out.shape)
    dq, dk, dv = F.attention_backward(ctx, w)

    def loss():
        return float((F.attention_forward(q, k, v, causal=causal)[0] * w).sum())

    for x, g in ((q, dq), (k, dk), (v, dv)):
        idx = rng.choice(x.size, min(25, x.size), replace=False)
        fd = np.array([fd_entry(loss, x, i) for i in idx])
        assert rel_error(g.reshape(-1)[idx], fd) < 1e-3


def test_backward_query_chunks_cover_rows_evenly():
    """Chunks of query rows: contiguous, never empty, aligned, and of equal work (rows, or
    for causal attention the triangle's area) within one alignment step."""
    align = F.dense_backward.CHUNK_ALIGN
    for causal in (False, True):
        for Lq in list(range(1, 700, 7)) + [4096, 4097, 10000]:
            for nqc in range(1, min(8, -(-Lq // QB)) + 1):
                bounds = [F.dense_backward.chunk_rows(c, nqc, Lq, causal) for c in range(nqc)]
                assert bounds[0][0] == 0 and bounds[-1][1] == Lq
                for (r0, r1), (s0, _) in zip(bounds, bounds[1:]):
                    assert r1 == s0 and r1 % align == 0
                for r0, r1 in bounds:
                    assert r0 < r1
                    work = (r1 ** 2 - r0 ** 2) if causal else r1 - r0
                    fair = (Lq ** 2 if causal else Lq) / nqc
                    slack = 2 * align * Lq if causal else align
                    assert abs(work - fair) <= slack


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("masked, causal", [(False, False), (True, False), (False, True)])
def test_sdpa_backward_wide_tiles_match_closed_form(rng, monkeypatch, dtype, masked, causal):
    """Wide tiles in several query panels, column panels (D = 32, Dv = 48: the packed dO,
    K_t and scale Q of the dV, dQ and dK products) and key tiles (unmasked ones take P from
    the product's exp epilogue), split into query chunks, against the closed-form gradients
    in float64 (whose formula the finite-difference tests above pin down)."""
    monkeypatch.setattr(F, "PARALLEL_MIN_WORK_BACKWARD", 0)
    monkeypatch.setattr(F, "num_workers", lambda: 3)
    q = rng.standard_normal((1, 2, 240, 32))
    k = rng.standard_normal((1, 2, 300, 32))
    v = rng.standard_normal((1, 2, 300, 48))
    mask = rng.random((1, 2, 240, 300)) > 0.2 if masked else None
    g = rng.standard_normal((1, 2, 240, 48))
    _, ctx, _ = F.attention_forward(*(a.astype(dtype) for a in (q, k, v)), mask, causal=causal)
    got = F.attention_backward(ctx, g.astype(dtype))
    tol = 2e-4 if dtype == np.float32 else 1e-10
    for x, ref in zip(got, dense_reference_grads(q, k, v, mask, g, causal=causal)):
        assert x.dtype == dtype
        assert rel_error(x, ref) < tol


def test_sdpa_backward_with_dropout(rng):
    _sdpa_case(rng, (6, 4), (8, 4), 3, dropout=0.3)


@pytest.mark.parametrize("bias", [True, False])
def test_multihead_backward(rng, bias):
    mha = MultiHeadAttention(8, 2, kdim=5, vdim=3, bias=bias, causal=True, seed=1,
                             dtype=np.float64)
    for name in mha.parameters():  # non-zero biases so their gradients are exercised
        if name.startswith("b_"):
            mha.parameters()[name][:] = rng.standard_normal(8)
    q, k, v = rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 6, 5)), \
        rng.standard_normal((2, 6, 3))
    mask = rng.random((2, 4, 6)) > 0.2
    w = rng.standard_normal((2, 4, 8))

    def loss():
        return float((mha.forward(q, k, v, mask) * w).sum())

    loss()
    mha.zero_grad()
    grads_in = mha.backward(w)
    for x, g in zip((q, k, v), grads_in):
        assert rel_error(g, finite_difference(loss, x)) < 1e-3
    for name, p in mha.parameters().items():
        assert rel_error(mha.grads[name], finite_difference(loss, p)) < 1e-3, name


def test_multihead_backward_with_dropout_unbatched(rng):
    mha = MultiHeadAttention(6, 3, dropout=0.25, seed=2, dtype=np.float64).train()
    x = rng.standard_normal((5, 6))
    w = rng.standard_normal((5, 6))

    def loss():
        mha._dropout_rng = np.random.default_rng(11)
        return float((mha.forward(x, x, x) * w).sum())

    loss()
    gq, gk, gv = mha.backward(w)
    assert rel_error(gq + gk + gv, finite_difference(loss, x)) < 1e-3
