import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import ruvector.attention.functional as F
from ruvector import DimensionMismatch, InvalidConfig, InvalidInput, ScaledDotProductAttention
from ruvector.attention import scaled_dot_product_attention as sdpa
from tests.conftest import reference_attention


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), H=st.integers(1, 3), Lq=st.integers(1, 80), Lk=st.integers(1, 300),
       D=st.integers(1, 20), Dv=st.integers(1, 12), causal=st.booleans(), masked=st.booleans(),
       seed=st.integers(0, 2**31))
def test_forward_matches_reference(B, H, Lq, Lk, D, Dv, causal, masked, seed):
    rng = np.random.default_rng(seed)
    q, k, v = _rand(rng, B, H, Lq, D), _rand(rng, B, H, Lk, D), _rand(rng, B, H, Lk, Dv)
    mask = rng.random((B, 1, Lq, Lk)) > 0.3 if masked else None
    out, w = sdpa(q, k, v, mask, causal=causal, need_weights=True)
    ref_out, ref_w = reference_attention(q, k, v, mask, causal)
    assert out.shape == (B, H, Lq, Dv) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(w, ref_w, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("rank", [1, 2, 3, 4])
def test_every_rank_returns_matching_form(rng, rank):
    D, Dv, Lk = 8, 5, 11
    lead = {1: (), 2: (), 3: (2,), 4: (2, 3)}[rank]
    q = _rand(rng, *lead, *(() if rank == 1 else (4,)), D)
    k, v = _rand(rng, *lead, Lk, D), _rand(rng, *lead, Lk, Dv)
    out, w = sdpa(q, k, v, need_weights=True)
    ref_out, ref_w = reference_attention(q[..., None, :] if rank == 1 else q, k, v)
    if rank == 1:
        ref_out, ref_w = ref_out[0], ref_w[0]
    assert out.shape == q.shape[:-1] + (Dv,)
    assert w.shape == q.shape[:-1] + (Lk,)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w, ref_w, rtol=1e-5, atol=1e-7)


def test_weights_sum_to_one_and_masked_are_exactly_zero(rng):
    q, k, v = _rand(rng, 3, 40, 16), _rand(rng, 3, 70, 16), _rand(rng, 3, 70, 16)
    mask = rng.random((3, 40, 70)) > 0.5
    mask[:, 0, :] = False  # a row with no allowed key
    out, w = sdpa(q, k, v, mask, need_weights=True)
    assert np.all(w[~mask] == 0.0)
    np.testing.assert_allclose(w[:, 1:].sum(-1), 1.0, rtol=1e-5)
    assert np.all(out[:, 0] == 0.0) and np.all(w[:, 0] == 0.0)


def test_causal_with_more_keys_is_top_left_aligned(rng):
    q, k, v = _rand(rng, 5, 8), _rand(rng, 9, 8), _rand(rng, 9, 8)
    _, w = sdpa(q, k, v, causal=True, need_weights=True)
    assert np.all(np.triu(w, 1) == 0.0)
    assert np.all(w[np.tril(np.ones(w.shape, bool))] > 0.0)


def test_scale_override(rng):
    q, k, v = _rand(rng, 6, 4), _rand(rng, 9, 4), _rand(rng, 9, 3)
    np.testing.assert_allclose(sdpa(q, k, v, scale=0.3),
                               reference_attention(q, k, v, scale=0.3)[0], rtol=1e-5, atol=1e-6)


def test_serial_and_parallel_paths_agree(rng, monkeypatch):
    q, k, v = (_rand(rng, 2, 3, 150, 16) for _ in range(3))
    mask = rng.random((2, 3, 150, 150)) > 0.2
    monkeypatch.setattr(F, "PARALLEL_MIN_WORK", 1 << 62)
    serial = sdpa(q, k, v, mask, causal=True)
    monkeypatch.setattr(F, "PARALLEL_MIN_WORK", 0)
    parallel = sdpa(q, k, v, mask, causal=True)
    np.testing.assert_allclose(serial, parallel, rtol=1e-6, atol=1e-6)


def test_split_key_chunks_merge_exactly(rng, monkeypatch):
    """Few query rows against many keys split the keys across threads (log-sum-exp merge)."""
    monkeypatch.setattr(F, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(F, "num_workers", lambda: 4)
    q, k, v = _rand(rng, 3, 16), _rand(rng, 1000, 16), _rand(rng, 1000, 16)
    mask = np.zeros((3, 1000), dtype=bool)
    mask[0, :10] = True  # only the first key chunk holds allowed keys for row 0
    mask[1, 990:] = True
    out, w = sdpa(q, k, v, mask, need_weights=True)
    ref_out, ref_w = reference_attention(q, k, v, mask)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6)
    assert np.all(out[2] == 0)


def test_float64_input_is_converted_to_float32(rng):
    q, k, v = rng.standard_normal((4, 8)), rng.standard_normal((6, 8)), rng.standard_normal((6, 8))
    out = sdpa(q, k, v)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, reference_attention(q, k, v)[0], rtol=1e-5, atol=1e-6)


def test_extreme_logits_give_finite_output():
    big = np.finfo(np.float32).max / 2
    q = np.full((4, 16), big, np.float32)
    k = np.full((10, 16), big, np.float32)
    v = np.full((10, 16), big, np.float32)
    out = sdpa(q, k, v)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, big, rtol=1e-6)
    k[3] = -big
    out, w = sdpa(q, k, v, need_weights=True)
    assert np.all(np.isfinite(out)) and np.all(w[:, 3] == 0)


def test_huge_but_finite_score_differences(rng):
    q = _rand(rng, 3, 8) * 1e3
    k, v = _rand(rng, 50, 8) * 1e3, _rand(rng, 50, 8)
    np.testing.assert_allclose(sdpa(q, k, v), reference_attention(q, k, v)[0], rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("where", ["query", "key", "value"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises(rng, where, bad):
    arrays = {"query": _rand(rng, 4, 8), "key": _rand(rng, 6, 8), "value": _rand(rng, 6, 8)}
    arrays[where][1, 2] = bad
    with pytest.raises(InvalidInput, match=where):
        sdpa(arrays["query"], arrays["key"], arrays["value"])


@pytest.mark.parametrize("where", ["query", "key", "value"])
def test_non_finite_single_query_raises(rng, where):
    """The one-query form (D,) x (Lk, D) has its own short path to the kernel."""
    arrays = {"query": _rand(rng, 8), "key": _rand(rng, 6, 8), "value": _rand(rng, 6, 8)}
    arrays[where][(2,) if where == "query" else (1, 2)] = np.nan
    with pytest.raises(InvalidInput, match=where):
        sdpa(arrays["query"], arrays["key"], arrays["value"])


def test_single_query_short_path_matches_the_general_path(rng, monkeypatch):
    calls = []
    kernel = F.dense.forward_one
    monkeypatch.setattr(F.dense, "forward_one", lambda *a: calls.append(1) or kernel(*a))
    q, k, v = _rand(rng, 24), _rand(rng, 300, 24), _rand(rng, 300, 7)
    out = sdpa(q, k, v, scale=0.4)
    assert len(calls) == 1 and out.shape == (7,) and out.dtype == np.float32
    general = sdpa(q, k, v, np.ones(300, bool), scale=0.4)  # a mask takes the general path
    assert len(calls) == 1
    np.testing.assert_array_equal(out, general)
    np.testing.assert_allclose(out, reference_attention(q, k, v, scale=0.4)[0], rtol=1e-5,
                               atol=1e-6)
    for args in ((q.astype(np.float64), k, v), (q, k[::2], v[::2]), (list(q), k, v)):
        np.testing.assert_allclose(sdpa(*args, scale=0.4), reference_attention(
            *(np.asarray(a, np.float32) for a in args), scale=0.4)[0], rtol=1e-5, atol=1e-6)
    assert len(calls) == 1  # converted or strided inputs went the general way
    big = np.finfo(np.float32).max / 2  # overflow: recomputed in float64 by the general path
    out = sdpa(np.full(16, big, np.float32), np.full((10, 16), big, np.float32),
               np.full((10, 16), big, np.float32))
    np.testing.assert_allclose(out, big, rtol=1e-6)


def test_lazy_softmax_steps_and_their_exact_redo(rng):
    """Wide query tiles after the first key tile take P = exp(S - m) inside the product;
    a tile whose maximum jumps past m + LAZY_LIMIT is redone with a rescale."""
    q, k, v = _rand(rng, 2, 40, 32), _rand(rng, 2, 700, 32), _rand(rng, 2, 700, 20)
    k[:, 400:] *= 4.0   # scores of the later tiles jump well past the running maximum
    ref_out, _ = reference_attention(q, k, v, None, False)
    np.testing.assert_allclose(sdpa(q, k, v), ref_out, rtol=1e-4, atol=2e-5)
    k[1, 650, 3] = np.inf  # met only by a lazy step: the sums carry the poison
    with pytest.raises(InvalidInput, match="key"):
        sdpa(q, k, v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# panels of one micro-tile width / one panel of all / two query tiles (QB_FWD rows and a tail)
@pytest.mark.parametrize("Lq", [64, 40, 304])
def test_query_panels_with_masks_causal_and_several_key_tiles(rng, dtype, Lq):
    """Wide tiles split their queries into micro-tile-wide panels (16 float32 / 8 float64
    queries) when the rows divide evenly: every panel against the float64 reference, over
    three key tiles (lazy steps and exact ones), with a mask and with causal."""
    q = rng.standard_normal((2, 1, Lq, 24)).astype(dtype)
    k = rng.standard_normal((2, 1, 300, 24)).astype(dtype)
    v = rng.standard_normal((2, 1, 300, 7)).astype(dtype)
    k[:, :, 200:] *= 3.0  # the third key tile jumps past the running maxima
    mask = rng.random((2, 1, Lq, 300)) > 0.2
    tol = dict(rtol=1e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for m, causal in ((None, False), (mask, False), (None, True)):
        out = F.attention_forward(q, k, v, m, causal=causal)[0]
        assert out.dtype == dtype
        np.testing.assert_allclose(out, reference_attention(q, k, v, m, causal)[0], **tol)


@pytest.mark.parametrize("Lq", [1, 5, 15, 256 + 5])
def test_narrow_query_tiles_over_several_key_tiles(rng, Lq):
    """Query tiles of fewer than ROWS_MIN rows (a few queries, or the tail of a long
    sequence) step over the keys KT_NARROW at a time: three such key tiles, the later ones
    past the running maxima (rescales), with a mask and with causal."""
    Lk = 2 * F.dense.KT_NARROW + 100
    q, k, v = _rand(rng, 1, 2, Lq, 24), _rand(rng, 1, 2, Lk, 24), _rand(rng, 1, 2, Lk, 9)
    k[..., F.dense.KT_NARROW + 50:, :] *= 4.0
    mask = rng.random((1, 1, Lq, Lk)) > 0.2
    for m, causal in ((None, False), (mask, False), (None, True)):
        ref = reference_attention(q, k, v, m, causal)[0]
        np.testing.assert_allclose(sdpa(q, k, v, m, causal=causal), ref, rtol=1e-4, atol=2e-5)
    single = sdpa(q[0, 0, 0], k[0, 0], v[0, 0])  # the (D,) short path
    np.testing.assert_allclose(single, reference_attention(q, k, v, None, False)[0][0, 0, 0],
                               rtol=1e-4, atol=2e-5)


def test_non_finite_key_behind_a_mask_still_raises(rng):
    q, k, v = _rand(rng, 4, 8), _rand(rng, 6, 8), _rand(rng, 6, 8)
    k[5, 0] = np.nan
    mask = np.ones((4, 6), bool)
    mask[:, 5] = False
    with pytest.raises(InvalidInput, match="key"):
        sdpa(q, k, v, mask)
    k[5, 0] = 0
    k2, v2 = _rand(rng, 9, 8), _rand(rng, 9, 8)
    v2[8, 1] = np.inf  # never reached by the causal mask
    with pytest.raises(InvalidInput, match="value"):
        sdpa(q, k2, v2, causal=True)


def test_shape_errors_name_both_arguments(rng):
    with pytest.raises(DimensionMismatch, match=r"query \(4, 8\).*key \(6, 7\)"):
        sdpa(_rand(rng, 4, 8), _rand(rng, 6, 7), _rand(rng, 6, 7))
    with pytest.raises(DimensionMismatch, match="value"):
        sdpa(_rand(rng, 4, 8), _rand(rng, 6, 8), _rand(rng, 5, 8))
    with pytest.raises(DimensionMismatch, match="mask"):
        sdpa(_rand(rng, 4, 8), _rand(rng, 6, 8), _rand(rng, 6, 8), np.ones((3, 6), bool))
    with pytest.raises(DimensionMismatch):
        sdpa(_rand(rng, 2, 4, 8), _rand(rng, 6, 8), _rand(rng, 6, 8))


def test_empty_keys_ragged_and_bad_masks_raise(rng):
    with pytest.raises(InvalidInput, match="empty"):
        sdpa(_rand(rng, 4, 8), np.zeros((0, 8), np.float32), np.zeros((0, 8), np.float32))
    with pytest.raises(InvalidInput):
        sdpa([[1.0, 2.0], [3.0]], _rand(rng, 6, 2), _rand(rng, 6, 2))
    with pytest.raises(InvalidInput, match="boolean"):
        sdpa(_rand(rng, 4, 8), _rand(rng, 6, 8), _rand(rng, 6, 8), np.ones((4, 6)))


def test_key_cap(rng):
    attn = ScaledDotProductAttention(max_keys=10)
    with pytest.raises(InvalidInput, match="max_keys=10"):
        attn.forward(_rand(rng, 8), _rand(rng, 11, 8), _rand(rng, 11, 8))
    assert attn.forward(_rand(rng, 8), _rand(rng, 10, 8), _rand(rng, 10, 8)).shape == (8,)


def test_module_api(rng):
    attn = ScaledDotProductAttention(causal=True)
    assert attn.get_attention_weights() is None
    q, k, v = _rand(rng, 2, 5, 4), _rand(rng, 2, 5, 4), _rand(rng, 2, 5, 6)
    out = attn.forward_batch(q, k, v)
    assert out.shape == (2, 5, 6)
    out2, w = attn.forward(q, k, v, need_weights=True)
    np.testing.assert_array_equal(out, out2)
    assert attn.get_attention_weights() is w
    with pytest.raises(DimensionMismatch):
        attn.forward_batch(q[0], k[0], v[0])
    with pytest.raises(InvalidConfig):
        ScaledDotProductAttention(dropout=1.5)
    with pytest.raises(InvalidConfig):
        ScaledDotProductAttention(scale=float("nan"))


def test_dropout_only_in_training_and_reproducible(rng):
    q, k, v = _rand(rng, 6, 8), _rand(rng, 40, 8), _rand(rng, 40, 8)
    a = ScaledDotProductAttention(dropout=0.5, seed=3)
    np.testing.assert_array_equal(a.forward(q, k, v), sdpa(q, k, v))  # eval mode
    a.train()
    out1 = a.forward(q, k, v)
    assert not np.allclose(out1, sdpa(q, k, v))
    b = ScaledDotProductAttention(dropout=0.5, seed=3).train()
    np.testing.assert_array_equal(out1, b.forward(q, k, v))
    # Unbiased: averaged over many seeds, dropout output approaches the plain output.
    outs = np.mean([F.sdpa_with_context(q, k, v, drop_p=0.5, seed=s)[0] for s in range(400)], 0)
    np.testing.assert_allclose(outs, sdpa(q, k, v), atol=0.1)


def test_scale_must_be_a_finite_non_zero_number():
    q = np.ones((2, 4), np.float32)
    for bad in (float("nan"), float("inf"), 0.0, "x"):
        with pytest.raises(InvalidInput, match="scale"):
            sdpa(q, q, q, scale=bad)
        with pytest.raises(InvalidInput, match="scale"):
            sdpa(q[0], q, q, scale=bad)  # the single-query path too
        with pytest.raises(InvalidConfig, match="scale"):
            ScaledDotProductAttention(scale=bad)


def test_every_mask_form_uses_one_compiled_kernel(rng):
    """Broadcast, full, read-only, non-contiguous and absent masks reach the kernels in one
    array type (one compile per dtype), and broadcast axes stay length 1."""
    from ruvector.attention.functional import compact_mask
    from ruvector.kernels import dense
    q, k, v = (rng.standard_normal((2, 3, 6, 4)).astype(np.float32) for _ in range(3))
    full = rng.random((2, 3, 6, 6)) > 0.3
    readonly = full.copy()
    readonly.flags.writeable = False
    forms = [None, full, readonly, full[:, :1], full[0, 0], full[0, 0, 0], full.transpose(
        0, 1, 3, 2).copy().transpose(0, 1, 3, 2), np.broadcast_to(full[:1], full.shape)]
    for mask in forms:
        out = sdpa(q, k, v, mask)
        np.testing.assert_allclose(out, reference_attention(q, k, v, mask)[0], atol=1e-5)
    mask_types = {s[3] for s in dense.forward_serial.signatures if s[0].dtype.name == "float32"}
    assert len(mask_types) == 1, mask_types
    m = compact_mask(np.broadcast_to(full[:, :1], full.shape), full.shape)
    assert m.shape == (2, 1, 6, 6) and m.flags.c_contiguous and not m.flags.writeable
