"""Pictures render headless and are non-trivial; the weights they draw match NumPy."""
import json
import sys

import networkx as nx
import numpy as np
import pytest

from ruvector import DimensionMismatch, InvalidInput, MissingDependency, QueryError
from ruvector.cli import main
from ruvector.graph import GraphStore
from ruvector.index import AttentionDistance
from ruvector.viz import (attention_heatmap, attention_weights, save_figure, training_curves,
                          traversal)
from ..conftest import reference_attention

image = pytest.importorskip("matplotlib.image")


def colours(path):
    """(height, width, number of distinct colours) of a PNG."""
    pixels = image.imread(path)
    flat = np.round(pixels[..., :3] * 255).astype(np.int64).reshape(-1, 3)
    return pixels.shape[0], pixels.shape[1], len(np.unique(flat, axis=0))


def assert_picture(path, min_colours=20):
    h, w, n = colours(path)
    assert h >= 300 and w >= 400 and n >= min_colours, (h, w, n)


@pytest.fixture
def store(rng):
    G = nx.gnp_random_graph(40, 0.12, seed=1, directed=True)
    for n in G:
        G.nodes[n].update(label="P", embedding=rng.standard_normal(8))
    return GraphStore.from_networkx(G)


def test_heatmap_per_head_png_and_svg(tmp_path, rng):
    w = rng.random((3, 6, 9))
    w /= w.sum(-1, keepdims=True)
    fig = attention_heatmap(w, title="three heads here")
    assert len([ax for ax in fig.axes if ax.images]) == 3
    save_figure(fig, tmp_path / "h.png")
    assert_picture(tmp_path / "h.png")
    save_figure(fig, tmp_path / "h.svg")
    svg = (tmp_path / "h.svg").read_text()
    assert "three heads here" in svg and "head 2" in svg and "query" in svg


def test_masked_cells_are_blank(rng):
    mask = np.tril(np.ones((5, 5), bool))
    fig = attention_heatmap(rng.random((5, 5)), mask=mask)
    shown = fig.axes[0].images[0].get_array()
    assert shown.mask[~mask].all() and not shown.mask[mask].any()


def test_weights_of_each_kind_match_numpy(rng):
    q, k = rng.standard_normal((7, 8)), rng.standard_normal((9, 8))
    w, mask = attention_weights("standard", q, k)
    np.testing.assert_allclose(w, reference_attention(q, k, k)[1], atol=1e-12)
    assert mask is None
    w, _ = attention_weights("multihead", q, k, heads=2)
    for h in range(2):
        part = slice(4 * h, 4 * h + 4)
        ref = reference_attention(q[:, part], k[:, part], k[:, part])[1]
        np.testing.assert_allclose(w[h], ref, atol=1e-12)
    w, mask = attention_weights("sparse", q, k, window=1)
    band = np.abs(np.arange(7)[:, None] - np.arange(9)[None]) <= 1
    np.testing.assert_array_equal(mask, band)
    np.testing.assert_allclose(w, reference_attention(q, k, k, band)[1], atol=1e-12)
    w, mask = attention_weights("sparse", q, k, top_k=3)
    logits = q @ k.T
    assert (mask.sum(-1) == 3).all()
    assert (np.take_along_axis(logits, np.argsort(-logits, -1)[:, :3], -1).min(-1) >=
            np.where(mask, np.inf, logits).min(-1)).all()
    np.testing.assert_allclose(w, reference_attention(q, k, k, mask)[1], atol=1e-12)
    ball = 0.3 * q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, _ = attention_weights("hyperbolic", ball, 0.3 * k / np.linalg.norm(k, axis=-1)[:, None])
    np.testing.assert_allclose(w.sum(-1), 1.0)
    with pytest.raises(InvalidInput, match="pattern"):
        attention_weights("sparse", q, k)
    with pytest.raises(DimensionMismatch, match="divisible"):
        attention_weights("multihead", q, k, heads=3)


def test_traversal_picture(tmp_path, rng, store):
    query = "MATCH (s {key: $s})-->(a)-->(b) ATTEND BY $q TOP 2 RETURN b, score()"
    params = {"s": 0, "q": rng.standard_normal(8)}
    matches = store.trace(query, params)
    rows = store.query(query, params).rows
    assert [m["score"] for m in matches] == [r[1] for r in rows]
    assert [m["paths"][0]["nodes"][-1] for m in matches] == [r[0] for r in rows]
    fig = traversal(store, query, params, title="walk from 0")
    save_figure(fig, tmp_path / "g.png")
    assert_picture(tmp_path / "g.png")
    save_figure(fig, tmp_path / "g.svg")
    assert "walk from 0" in (tmp_path / "g.svg").read_text()
    alone = traversal(store, "MATCH (s {key: 0}) ATTEND BY $q RETURN s", params)
    assert alone.axes[0].get_title() == "1 matches, 1 nodes reached"
    with pytest.raises(QueryError, match="ATTEND"):
        traversal(store, "MATCH (a)-->(b) RETURN b")
    with pytest.raises(InvalidInput, match="matched nothing"):
        traversal(store, "MATCH (s {key: -5})-->(b) ATTEND BY $q RETURN b", params)


def test_training_curves_from_fit_history(tmp_path, rng):
    x = rng.standard_normal((40, 6))
    dist = AttentionDistance(6, 4, seed=0)
    history = dist.fit(x, x + 0.05 * rng.standard_normal(x.shape), epochs=4,
                       validation=0.25, seed=0, progress=False)
    history.save(tmp_path / "history.json")
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["train"] == list(history) and saved["best_epoch"] == history.best_epoch
    fig = training_curves(str(tmp_path / "history.json"), title="fit")
    assert {line.get_label() for line in fig.axes[0].lines} >= {"train", "validation"}
    save_figure(fig, tmp_path / "t.png")
    assert_picture(tmp_path / "t.png", min_colours=10)
    with pytest.raises(InvalidInput, match="empty"):
        training_curves([])
    with pytest.raises(InvalidInput, match="best_epoch"):
        training_curves({"loss": [1.0, 0.5], "best_epoch": 7})


def test_missing_matplotlib_names_the_extra(monkeypatch, rng):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependency, match=r"ruvector\[viz\]"):
        attention_heatmap(rng.random((3, 3)))


def test_cli_pictures(tmp_path, rng, store, capsys):
    q, k = rng.standard_normal((6, 8)), rng.standard_normal((6, 8))
    np.savez(tmp_path / "qk.npz", query=q, key=k)
    for kind, extra in (("standard", []), ("multihead", ["--heads", "2"]),
                        ("hyperbolic", []), ("sparse", ["--window", "1"])):
        out = tmp_path / f"{kind}.svg"
        assert main(["visualize", "attention", str(tmp_path / "qk.npz"), str(out),
                     "--type", kind, *extra]) == 0
        assert f"{kind} attention" in out.read_text()
    np.savez(tmp_path / "w.npz", weights=rng.random((4, 4)))
    assert main(["visualize", "attention", str(tmp_path / "w.npz"), str(tmp_path / "w.out"),
                 "--format", "png", "--title", "given"]) == 0
    assert_picture(tmp_path / "w.out")
    store.save(tmp_path / "store")
    np.save(tmp_path / "q.npy", rng.standard_normal(8))
    assert main(["visualize", "graph", str(tmp_path / "store"),
                 "MATCH (s {key: 3})-->(a) ATTEND BY $q TOP 3 RETURN a",
                 str(tmp_path / "g.png"), "--param", f"q=@{tmp_path / 'q.npy'}"]) == 0
    assert_picture(tmp_path / "g.png")
    (tmp_path / "h.json").write_text(json.dumps({"train": [3, 2, 1], "best_epoch": 2}))
    assert main(["visualize", "training", str(tmp_path / "h.json"),
                 str(tmp_path / "t.png")]) == 0
    capsys.readouterr()
    np.savez(tmp_path / "bad.npz", values=q)
    assert main(["visualize", "attention", str(tmp_path / "bad.npz"),
                 str(tmp_path / "x.png")]) == 2
    assert "expected weights" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    assert main(["visualize", "attention", str(tmp_path / "qk.npz"), str(tmp_path / "x.png"),
                 "--window", "2"]) == 2
    assert "--window applies to --type sparse" in capsys.readouterr().err
