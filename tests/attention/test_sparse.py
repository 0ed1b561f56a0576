"""Sparse patterns against their definitions and against dense masked attention (forward and
backward); backward against finite differences; bad input."""
import numpy as np
import pytest

from ruvector import DimensionMismatch, InvalidConfig, InvalidInput
from ruvector.attention.sparse import (BlockSparseMask, COOMask, DenseMask, SparseAttention,
                                       StridedMask, WindowedMask)
from tests.conftest import dense_reference_grads, finite_difference, reference_attention


def test_masks_match_their_definitions():
    L = 37
    i, j = np.arange(L)[:, None], np.arange(L)[None, :]
    assert np.array_equal(WindowedMask(4).to_dense(L, L), np.abs(i - j) <= 4)
    g = WindowedMask(2, global_tokens=(0, 30)).to_dense(L, L)
    expect = (np.abs(i - j) <= 2) | np.isin(i, [0, 30]) | np.isin(j, [0, 30])
    assert np.array_equal(g, expect)
    assert np.array_equal(StridedMask(3, 5).to_dense(L, L), (np.abs(i - j) <= 3) | ((i - j) % 5 == 0))
    assert np.array_equal(StridedMask(3, 5).to_dense(L, L, causal=True),
                          ((np.abs(i - j) <= 3) | ((i - j) % 5 == 0)) & (j <= i))
    b = BlockSparseMask(8, [(0, 0), (1, 3), (4, 2)]).to_dense(L, L)
    expect = np.zeros((L, L), bool)
    for qb, kb in [(0, 0), (1, 3), (4, 2)]:
        expect[qb * 8:(qb + 1) * 8, kb * 8:(kb + 1) * 8] = True
    assert np.array_equal(b, expect)
    blocks = np.zeros((5, 5), bool)
    blocks[[0, 1, 4], [0, 3, 2]] = True
    assert np.array_equal(BlockSparseMask(8, blocks).to_dense(L, L), expect)
    coo = COOMask([0, 0, 5, 5], [1, 1, 2, 36], (L, L))
    assert coo.nnz(L, L) == 3
    rect = WindowedMask(2).to_dense(5, 9)
    assert np.array_equal(rect, np.abs(np.arange(5)[:, None] - np.arange(9)[None]) <= 2)


MASKS = {
    "windowed": lambda L: WindowedMask(5),
    "windowed_global": lambda L: WindowedMask(3, global_tokens=(0, L // 2)),
    "strided": lambda L: StridedMask(2, 7),
    "block": lambda L: BlockSparseMask(16, [(0, 0), (0, 2), (1, 1), (3, 0), (2, 3)]),
    "coo": lambda L: COOMask(*np.nonzero(np.random.default_rng(1).random((L, L)) < 0.1), (L, L)),
    "dense": lambda L: DenseMask(np.random.default_rng(2).random((L, L)) < 0.3),
}


@pytest.mark.parametrize("name", sorted(MASKS))
@pytest.mark.parametrize("causal", [False, True])
def test_patterns_equal_dense_masked_attention(rng, name, causal):
    L = 60
    q, k, v = rng.standard_normal((2, 2, L, 8)), rng.standard_normal((2, 2, L, 8)), \
        rng.standard_normal((2, 2, L, 6))
    mask = MASKS[name](L)
    sa = SparseAttention(causal=causal, dtype=np.float64)
    out = sa.forward_sparse(q, k, v, mask)
    dense_mask = mask.to_dense(L, L, causal)
    ref, _ = reference_attention(q, k, v, mask=dense_mask)
    assert np.allclose(out, ref, atol=1e-12)
    g = rng.standard_normal(out.shape)
    for a, b in zip(sa.backward(g), dense_reference_grads(q, k, v, dense_mask, g)):
        assert np.allclose(a, b, atol=1e-11)


def test_named_entry_points_and_ranks(rng):
    sa = SparseAttention(dtype=np.float64)
    q, k, v = rng.standard_normal((40, 8)), rng.standard_normal((40, 8)), rng.standard_normal((40, 8))
    assert np.allclose(sa.forward_windowed(q, k, v, 3), sa.forward_sparse(q, k, v, WindowedMask(3)))
    assert np.allclose(sa.forward_strided(q, k, v, 2, 5),
                       reference_attention(q, k, v, mask=StridedMask(2, 5).to_dense(40, 40))[0])
    blk = BlockSparseMask(10, [(0, 1), (3, 3)])
    out = sa.forward_block_sparse(q, k, v, blk)
    assert out.shape == (40, 8)
    assert np.allclose(out[20:30], 0)            # query block 2 has no active block
    assert sa.forward_windowed(q[None], k[None], v[None], 3).shape == (1, 40, 8)
    with pytest.raises(InvalidConfig):
        sa.forward_block_sparse(q, k, v, WindowedMask(3))


def test_float32_windowed_fast_path_and_rectangular(rng):
    q = rng.standard_normal((2, 300, 16)).astype(np.float32)
    k = rng.standard_normal((2, 350, 16)).astype(np.float32)
    v = rng.standard_normal((2, 350, 16)).astype(np.float32)
    for causal in (False, True):
        sa = SparseAttention(causal=causal)
        out = sa.forward_windowed(q, k, v, 40)
        ref, _ = reference_attention(q, k, v, mask=WindowedMask(40).to_dense(300, 350, causal))
        assert out.dtype == np.float32 and np.allclose(out, ref, atol=2e-5)
        g = rng.standard_normal(out.shape)
        grads = sa.backward(g)
        refs = dense_reference_grads(q.astype(np.float64), k.astype(np.float64),
                                     v.astype(np.float64),
                                     WindowedMask(40).to_dense(300, 350, causal), g)
        for a, b in zip(grads, refs):
            assert np.allclose(a, b, atol=2e-4)


@pytest.mark.parametrize("call", [
    lambda sa, q, k, v: sa.forward_windowed(q, k, v, 2),
    lambda sa, q, k, v: sa.forward_windowed(q, k, v, 1, global_tokens=(3,)),
    lambda sa, q, k, v: sa.forward_strided(q, k, v, 1, 3),
    lambda sa, q, k, v: sa.forward_block_sparse(q, k, v, BlockSparseMask(3, [(0, 0), (1, 2), (2, 1)])),
    lambda sa, q, k, v: sa.forward_sparse(q, k, v, COOMask([0, 1, 1, 4, 7], [2, 0, 5, 4, 7], (9, 9))),
    lambda sa, q, k, v: sa.forward_topk(q, k, v, 3),
    lambda sa, q, k, v: sa.forward_block_sparse(q, k, v, BlockSparseMask(16, [(0, 0)])),
])
def test_backward_matches_finite_differences(rng, call):
    q, k, v = (rng.standard_normal((9, 4)) for _ in range(3))
    sa = SparseAttention(causal=False, dtype=np.float64)
    G = rng.standard_normal((9, 4))
    call(sa, q, k, v)
    dq, dk, dv = sa.backward(G)
    loss = lambda: np.sum(call(sa, q, k, v) * G)           # noqa: E731
    assert np.allclose(dq, finite_difference(loss, q), atol=1e-6)
    assert np.allclose(dk, finite_difference(loss, k), atol=1e-6)
    assert np.allclose(dv, finite_difference(loss, v), atol=1e-6)


def test_topk_equals_dense_attention_over_the_kept_keys(rng):
    q, k, v = rng.standard_normal((3, 5, 8)), rng.standard_normal((3, 50, 8)), \
        rng.standard_normal((3, 50, 8))
    sa = SparseAttention(dtype=np.float64)
    out = sa.forward_topk(q, k, v, 7)
    scores = q @ np.swapaxes(k, -1, -2)
    kth = np.sort(scores, axis=-1)[..., -7][..., None]
    ref, _ = reference_attention(q, k, v, mask=scores >= kth)
    assert np.allclose(out, ref, atol=1e-12)
    assert np.allclose(sa.forward_topk(q, k, v, 50), reference_attention(q, k, v)[0])


def test_bad_input():
    q = np.zeros((10, 4))
    sa = SparseAttention()
    for bad in (lambda: WindowedMask(-1), lambda: StridedMask(2, 0), lambda: StridedMask(-2, 3),
                lambda: BlockSparseMask(0, [(0, 0)])):
        with pytest.raises(InvalidConfig):
            bad()
    with pytest.raises(InvalidInput, match="k=11"):
        sa.forward_topk(q, q, q, 11)
    with pytest.raises(InvalidInput, match="out of range"):
        sa.forward_block_sparse(q, q, q, BlockSparseMask(4, [(0, 3)]))
    with pytest.raises(DimensionMismatch):
        sa.forward_sparse(q, q, q, DenseMask(np.ones((10, 9), bool)))
    with pytest.raises(DimensionMismatch):
        sa.forward_sparse(q, q, q, COOMask([0], [0], (9, 10)))
    with pytest.raises(InvalidInput):
        COOMask([0], [12], (10, 10))
    with pytest.raises(InvalidInput, match="outside"):
        sa.forward_windowed(q, q, q, 2, global_tokens=(12,))
    bad = np.zeros((10, 4))
    bad[3, 1] = np.nan
    for call in (lambda: sa.forward_windowed(bad, q, q, 2), lambda: sa.forward_strided(q, bad, q, 1, 3),
                 lambda: sa.forward_topk(q, bad, q, 2), lambda: sa.forward_windowed(q, q, bad, 2)):
        with pytest.raises(InvalidInput, match="NaN"):
            call()
    with pytest.raises(InvalidConfig):
        SparseAttention().backward(np.ones(3))
    empty_rows = SparseAttention(dtype=np.float64).forward_sparse(
        np.ones((4, 2)), np.ones((4, 2)), np.ones((4, 2)), COOMask([0], [0], (4, 4)))
    assert np.allclose(empty_rows[1:], 0) and np.all(np.isfinite(empty_rows))


def test_bench_sparse_cli_small(capsys, monkeypatch):
    import json

    from ruvector import cli
    from benchmarks import sparse as bench
    patterns, topk, hyper = bench.bench_patterns, bench.bench_topk, bench.bench_hyperbolic
    monkeypatch.setattr(bench, "bench_patterns",
                        lambda lengths: patterns((256,), window=16, stride=16, budget=0.05))
    monkeypatch.setattr(bench, "bench_topk", lambda: topk(n=5000, top_k=8))
    monkeypatch.setattr(bench, "bench_hyperbolic", lambda: hyper(keys=50, dim=8))
    assert cli.main(["bench", "sparse", "--json", "--quick"]) == 0
    result = json.loads(capsys.readouterr().out)
    row = result["patterns"]["L256"]["windowed"]
    assert row["pairs"] == WindowedMask(16).nnz(256, 256) and row["forward_ms"] > 0
    assert result["topk"]["same_output"] and result["hyperbolic"]["tangent"]["us"] > 0
    assert cli.main(["bench", "sparse", "--quick"]) == 0
    assert "windowed" in capsys.readouterr().out
