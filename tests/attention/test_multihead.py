import numpy as np
import pytest

from ruvector import DimensionMismatch, InvalidConfig, InvalidInput, MultiHeadAttention
from ruvector.selftest.reference import reference_mha


def test_parameter_layout():
    mha = MultiHeadAttention(12, 3, kdim=5, vdim=7, seed=0)
    shapes = {n: p.shape for n, p in mha.parameters().items()}
    assert shapes == {"w_q": (12, 12), "w_k": (5, 12), "w_v": (7, 12), "w_o": (12, 12),
                      "b_q": (12,), "b_k": (12,), "b_v": (12,), "b_o": (12,)}
    assert set(MultiHeadAttention(4, 2, bias=False).parameters()) == {"w_q", "w_k", "w_v", "w_o"}


@pytest.mark.parametrize("causal", [False, True])
def test_cross_attention_matches_reference(rng, causal):
    mha = MultiHeadAttention(16, 4, kdim=6, vdim=10, causal=causal, seed=3)
    for n in ("b_q", "b_k", "b_v", "b_o"):
        mha.parameters()[n][:] = rng.standard_normal(16)
    q, k, v = rng.standard_normal((2, 5, 16)), rng.standard_normal((2, 9, 6)), \
        rng.standard_normal((2, 9, 10))
    mask = rng.random((2, 5, 9)) > 0.3
    out, w = mha.forward(q, k, v, mask, need_weights=True)
    ref_out, ref_w, _ = reference_mha(mha, q, k, v, mask)
    assert out.shape == (2, 5, 16) and w.shape == (2, 5, 9) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w, ref_w, rtol=1e-4, atol=1e-6)


def test_unbatched_and_single_query(rng):
    mha = MultiHeadAttention(8, 2, seed=1)
    x = rng.standard_normal((6, 8))
    out, w = mha.forward(x, x, x, need_weights=True)
    ref_out, ref_w, _ = reference_mha(mha, x[None], x[None], x[None])
    np.testing.assert_allclose(out, ref_out[0], rtol=1e-4, atol=1e-5)
    assert w.shape == (6, 6)
    single = mha.forward(x[2], x, x)
    np.testing.assert_allclose(single, out[2], rtol=1e-5, atol=1e-6)


def test_per_head_weights_match_reference(rng):
    mha = MultiHeadAttention(12, 3, seed=2)
    q, k = rng.standard_normal((2, 4, 12)), rng.standard_normal((2, 7, 12))
    mask = rng.random((2, 4, 7)) > 0.3
    mask[..., 0] = True
    _, heads = mha.forward(q, k, k, mask, need_weights=True, average_weights=False)
    _, mean, ref = reference_mha(mha, q, k, k, mask)
    assert heads.shape == (2, 3, 4, 7)
    np.testing.assert_allclose(heads, ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(heads.mean(axis=1), mean, rtol=1e-4, atol=1e-6)
    _, single = mha.forward(q[0], k[0], k[0], need_weights=True, average_weights=False)
    assert single.shape == (3, 4, 7)


def test_per_head_mask(rng):
    mha = MultiHeadAttention(8, 2, seed=1)
    x = rng.standard_normal((1, 4, 8))
    mask = np.ones((1, 2, 4, 4), bool)
    mask[0, 1, :, 0] = False
    _, w = mha.forward(x, x, x, mask, need_weights=True)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
    assert np.all(w[0, :, 0] > 0)  # head 0 still sees key 0


def test_config_and_input_errors(rng):
    with pytest.raises(InvalidConfig, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(InvalidConfig):
        MultiHeadAttention(8, 2, dropout=-0.1)
    mha = MultiHeadAttention(8, 2, kdim=4)
    q, k = rng.standard_normal((3, 8)), rng.standard_normal((5, 4))
    with pytest.raises(DimensionMismatch, match="value"):
        mha.forward(q, k, rng.standard_normal((5, 7)))
    with pytest.raises(DimensionMismatch, match="key"):
        mha.forward(q, rng.standard_normal((5, 8)), rng.standard_normal((5, 8)))
    with pytest.raises(DimensionMismatch, match="lengths"):
        mha.forward(q, k, rng.standard_normal((4, 8)))
    with pytest.raises(DimensionMismatch, match="mask"):
        mha.forward(q, k, rng.standard_normal((5, 8)), np.ones((2, 5), bool))
    with pytest.raises(InvalidInput):
        mha.forward(np.full((3, 8), np.nan), k, rng.standard_normal((5, 8)))
    with pytest.raises(InvalidInput, match="empty"):
        mha.forward(q, np.zeros((0, 4)), np.zeros((0, 8)))


def test_self_attention_with_one_array_is_checked_once_but_still_checked(rng):
    mha = MultiHeadAttention(8, 2, seed=1)
    x = rng.standard_normal((2, 5, 8))
    np.testing.assert_array_equal(mha.forward(x, x, x), mha.forward(x, x.copy(), x.copy()))
    bad = x.copy()
    bad[1, 3, 2] = np.inf
    with pytest.raises(InvalidInput, match="query"):
        mha.forward(bad, bad, bad)
    vec = x[0, 0]
    with pytest.raises(DimensionMismatch, match="key"):  # a (d_model,) query is no key
        mha.forward(vec, vec, vec)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_head_split_and_merge_kernels(rng, dtype):
    from ruvector.attention.multihead import _merge_heads, _split_heads
    y = rng.standard_normal((3, 5, 12)).astype(dtype)
    bias = rng.standard_normal(12)
    expect = y.reshape(3, 5, 4, 3).transpose(0, 2, 1, 3)
    np.testing.assert_array_equal(_split_heads(y, 4), expect)
    with_bias = _split_heads(y, 4, bias)
    assert with_bias.dtype == dtype and with_bias.flags.c_contiguous
    np.testing.assert_allclose(with_bias, (y + bias.astype(dtype)).reshape(3, 5, 4, 3)
                               .transpose(0, 2, 1, 3), rtol=1e-6)
    np.testing.assert_array_equal(_merge_heads(_split_heads(y, 4)), y)


def test_extreme_inputs_give_finite_output_or_a_clear_error():
    big = np.finfo(np.float32).max / 2
    mha = MultiHeadAttention(4, 2, seed=0)
    for p in mha.parameters().values():
        p[...] = 10.0
    x = np.full((3, 4), big, np.float32)
    with pytest.raises(InvalidInput, match="overflows"):
        mha.forward(x, x, x)
    # Huge inputs whose projections overflow float32 but whose output fits: finite.
    mha.parameters()["w_o"][:] = 1e-30
    out = mha.forward(x, x, x)
    assert np.all(np.isfinite(out))


def test_dropout_is_seeded_and_only_in_training(rng):
    x = rng.standard_normal((2, 6, 8))
    a, b = MultiHeadAttention(8, 2, dropout=0.4, seed=9), MultiHeadAttention(8, 2, dropout=0.4, seed=9)
    np.testing.assert_array_equal(a.forward(x, x, x), b.forward(x, x, x))
    eval_out = a.forward(x, x, x)
    a.train()
    b.train()
    train_a = a.forward(x, x, x)
    np.testing.assert_array_equal(train_a, b.forward(x, x, x))
    assert not np.allclose(train_a, eval_out)
