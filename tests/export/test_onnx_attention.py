"""ONNX export of the attention modules and the basic layers: the file onnxruntime runs must
reproduce forward to 1e-5 on inputs of other sizes than the example (dynamic axes)."""
import numpy as np
import pytest

from ruvector import (DimensionMismatch, ExportError, InvalidConfig, LayerNorm, Linear,
                      MultiHeadAttention, ScaledDotProductAttention)
from ruvector.nn.onnx_graph import OPSET, run_onnx


def assert_runs_like(module, path, feeds, inputs):
    module.eval()
    expected = module.forward(*inputs)
    got = run_onnx(path, feeds)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_linear_and_layernorm_round_trip(tmp_path, rng):
    import onnx
    lin = Linear(6, 3, seed=1)
    lin.bias[:] = rng.standard_normal(3)
    path = lin.to_onnx(tmp_path / "lin.onnx")
    model = onnx.load(path)
    assert model.opset_import[0].version == OPSET
    assert {i.name for i in model.graph.initializer} == {"weight", "bias"}
    x = rng.standard_normal((2, 7, 6)).astype(np.float32)
    path = lin.to_onnx(tmp_path / "lin3.onnx", (x[:1, :2],))
    assert_runs_like(lin, path, {"x": x}, (x,))

    ln = LayerNorm(5)
    ln.weight[:] = rng.standard_normal(5)
    ln.bias[:] = rng.standard_normal(5)
    path = ln.to_onnx(tmp_path / "ln.onnx")
    x = (rng.standard_normal((9, 5)) * 3 + 1).astype(np.float32)
    assert_runs_like(ln, path, {"x": x}, (x,))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("rank", [2, 3, 4])
def test_sdpa_round_trip_dynamic_axes(tmp_path, rng, rank, causal):
    sdpa = ScaledDotProductAttention(causal=causal)
    lead = (2, 3)[:rank - 2]
    example = (rng.standard_normal(lead + (4, 8)), rng.standard_normal(lead + (5, 8)),
               rng.standard_normal(lead + (5, 6)))
    path = sdpa.to_onnx(tmp_path / "sdpa.onnx", example)
    lead2 = (3, 2)[:rank - 2]
    q, k, v = (rng.standard_normal(lead2 + s).astype(np.float32)
               for s in ((7, 8), (9, 8), (9, 6)))
    assert_runs_like(sdpa, path, {"query": q, "key": k, "value": v}, (q, k, v))


def test_sdpa_mask_and_fully_masked_row(tmp_path, rng):
    sdpa = ScaledDotProductAttention(scale=0.3)
    q, k, v = (rng.standard_normal((2, n, 4)).astype(np.float32) for n in (3, 5, 5))
    mask = rng.random((2, 3, 5)) > 0.4
    mask[0, 1] = False   # a row with no allowed key gives zeros, as forward does
    path = sdpa.to_onnx(tmp_path / "m.onnx", (q, k, v, mask))
    q2, k2, v2 = (rng.standard_normal((4, n, 4)).astype(np.float32) for n in (6, 2, 2))
    mask2 = rng.random((4, 6, 2)) > 0.5
    mask2[1, 0] = False
    assert_runs_like(sdpa, path, {"query": q2, "key": k2, "value": v2, "mask": mask2},
                     (q2, k2, v2, mask2))


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("bias,causal", [(True, False), (False, True)])
def test_mha_round_trip(tmp_path, rng, batched, bias, causal):
    mha = MultiHeadAttention(16, 4, kdim=6, vdim=10, bias=bias, causal=causal, seed=2)
    if bias:
        for name in ("b_q", "b_k", "b_v", "b_o"):
            getattr(mha, name)[:] = rng.standard_normal(getattr(mha, name).shape) * 0.1
    lead = (2,) if batched else ()
    example = tuple(rng.standard_normal(lead + s) for s in ((3, 16), (4, 6), (4, 10)))
    path = mha.to_onnx(tmp_path / "mha.onnx", example)
    lead2 = (3,) if batched else ()
    q, k, v = (rng.standard_normal(lead2 + s).astype(np.float32)
               for s in ((5, 16), (7, 6), (7, 10)))
    assert_runs_like(mha, path, {"query": q, "key": k, "value": v}, (q, k, v))


@pytest.mark.parametrize("per_head", [False, True])
def test_mha_mask(tmp_path, rng, per_head):
    mha = MultiHeadAttention(8, 2, seed=3)
    q, k, v = (rng.standard_normal((2, n, 8)) for n in (3, 4, 4))
    shape = (2, 2, 3, 4) if per_head else (2, 3, 4)
    mask = rng.random(shape) > 0.3
    path = mha.to_onnx(tmp_path / "mha.onnx", (q, k, v, mask))
    q2, k2, v2 = (rng.standard_normal((3, n, 8)).astype(np.float32) for n in (5, 6, 6))
    mask2 = rng.random((3,) + shape[1:-2] + (5, 6)) > 0.3
    assert_runs_like(mha, path, {"query": q2, "key": k2, "value": v2, "mask": mask2},
                     (q2, k2, v2, mask2))


def test_export_errors(tmp_path, rng, monkeypatch):
    with pytest.raises(DimensionMismatch):
        Linear(4, 2).to_onnx(tmp_path / "x.onnx", (np.zeros((3, 5)),))
    with pytest.raises(DimensionMismatch):
        ScaledDotProductAttention().to_onnx(tmp_path / "x.onnx", (np.zeros(3),) * 3)
    from ruvector.nn.module import Module
    with pytest.raises(InvalidConfig, match="exportable: ScaledDotProductAttention"):
        Module().to_onnx(tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()

    # a verification failure names the module and leaves the error typed
    import ruvector.nn.onnx_graph as og
    monkeypatch.setattr(og, "run_onnx", lambda path, feeds: np.zeros((4, 2), np.float32) + 1)
    lin = Linear(3, 2, seed=0)
    with pytest.raises(ExportError, match="Linear.forward"):
        lin.to_onnx(tmp_path / "v.onnx")


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    import builtins
    from ruvector import MissingDependency
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.delitem(__import__("sys").modules, "onnx")
    with pytest.raises(MissingDependency, match=r'pip install "ruvector\[onnx\]"'):
        Linear(3, 2).to_onnx(tmp_path / "x.onnx")
    with pytest.raises(ImportError):   # MissingDependency is an ImportError too
        Linear(3, 2).to_onnx(tmp_path / "x.onnx")
