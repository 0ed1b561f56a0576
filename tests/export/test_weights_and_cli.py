"""JSON weights (config + raw little-endian tensors) and ``ruvector export``."""
import json

import numpy as np
import pytest

from ruvector import (AttentionGNNLayer, CorruptFile, GATLayer, GNN, InvalidConfig,
                      MultiHeadAttention, NotFound, SAGELayer)
from ruvector.cli import main
from ruvector.export import load_weights_json, save_weights_json
from ruvector.nn.onnx_graph import run_onnx
from ruvector.training import Adam, save_checkpoint


def test_weights_json_layout_is_readable_without_ruvector(tmp_path, rng):
    mha = MultiHeadAttention(8, 2, seed=1, dtype=np.float64)
    path = save_weights_json(mha, tmp_path / "mha.json")
    meta = json.loads((tmp_path / "mha.json").read_text())
    data = (tmp_path / "mha.bin").read_bytes()
    assert meta["format"] == "ruvector.weights" and meta["byte_order"] == "little"
    assert len(data) == meta["size"]
    for t in meta["tensors"]:   # what a reader in another language does
        assert t["offset"] % 64 == 0
        arr = np.frombuffer(data, np.dtype(t["dtype"]).newbyteorder("<"),
                            int(np.prod(t["shape"])), t["offset"]).reshape(t["shape"])
        np.testing.assert_array_equal(arr, mha.state_dict()[t["name"]])
    back = load_weights_json(path)
    assert type(back) is MultiHeadAttention and back.dtype == np.float64
    q = rng.standard_normal((2, 3, 8))
    np.testing.assert_array_equal(back.forward(q, q, q), mha.forward(q, q, q))


def test_weights_json_damage_is_detected(tmp_path):
    gnn = GNN([GATLayer(4, 2, 2, seed=0), SAGELayer(4, 3, seed=1)], activation="relu")
    path = save_weights_json(gnn, tmp_path / "g.json")
    assert set(load_weights_json(path).parameters()) == set(gnn.parameters())
    raw = bytearray((tmp_path / "g.bin").read_bytes())
    raw[5] ^= 1
    (tmp_path / "g.bin").write_bytes(bytes(raw))
    with pytest.raises(CorruptFile, match="SHA-256"):
        load_weights_json(path)
    (tmp_path / "g.bin").unlink()
    with pytest.raises(CorruptFile, match="data file"):
        load_weights_json(path)
    with pytest.raises(NotFound):
        load_weights_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CorruptFile):
        load_weights_json(tmp_path / "bad.json")
    with pytest.raises(InvalidConfig):
        save_weights_json(gnn, tmp_path / "g.weights")


def test_cli_export_onnx_and_json(tmp_path, rng, capsys):
    block = AttentionGNNLayer(8, 2, seed=0)
    ckpt = tmp_path / "ckpt"
    save_checkpoint(block, ckpt, Adam(block, lr=1e-3), extra={"epoch": 3})
    assert main(["export", str(ckpt), str(tmp_path / "block.onnx")]) == 0
    assert "checked in onnxruntime" in capsys.readouterr().out
    x = rng.standard_normal((9, 8)).astype(np.float32)
    ei = rng.integers(0, 9, (2, 20))
    block.eval()
    np.testing.assert_allclose(run_onnx(tmp_path / "block.onnx", {"x": x, "edge_index": ei}),
                               block.forward(x, ei), rtol=1e-5, atol=1e-5)
    assert main(["export", str(ckpt), str(tmp_path / "block.json")]) == 0
    back = load_weights_json(tmp_path / "block.json")
    np.testing.assert_array_equal(back.forward(x, ei), block.forward(x, ei))


def test_cli_export_errors(tmp_path, capsys):
    from ruvector.attention.geometric import HyperbolicAttention
    ckpt = tmp_path / "ckpt"
    save_checkpoint(HyperbolicAttention(4), ckpt)
    assert main(["export", str(ckpt), str(tmp_path / "h.onnx")]) == 2
    assert "has no ONNX export" in capsys.readouterr().err
    assert not (tmp_path / "h.onnx").exists()
    assert main(["export", str(ckpt), str(tmp_path / "h.json")]) == 0   # JSON takes any module
    assert main(["export", str(tmp_path / "nothing"), str(tmp_path / "x.onnx")]) == 2
