"""End-to-end training: loss decreases, EWC against forgetting, checkpoints, determinism,
learned re-ranking distances and the karate-club example."""
import importlib.util
import json
import os
import sys

import networkx as nx
import numpy as np
import pytest

from ruvector import (CorruptFile, GATLayer, GINLayer, GNN, InvalidConfig, Linear,
                      MultiHeadAttention, SAGELayer)
from ruvector.training import (EWC, SGD, Adam, AdamW, cross_entropy, load_checkpoint,
                                         save_checkpoint)
from ruvector.gnn import AttentionGNNLayer
from ruvector.graph import GraphStore
from ruvector.nn.module import from_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def regression_graph(seed=0, n=60):
    rng = np.random.default_rng(seed)
    G = nx.gnm_random_graph(n, 4 * n, seed=seed, directed=True)
    store = GraphStore.from_networkx(G)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    adj = nx.to_numpy_array(G, nodelist=range(n)).T            # row i: sources into i
    targets = (np.tanh(adj @ x[:, :2] / 4 + x[:, 2:4])).astype(np.float32)
    return store, x, targets


@pytest.mark.parametrize("make", [
    lambda: GNN([GATLayer(6, 8, heads=2, seed=0), GATLayer(16, 2, seed=1)], activation="relu"),
    lambda: GNN([GINLayer(6, 16, 16, seed=0), SAGELayer(16, 2, seed=1)], activation="relu"),
    lambda: GNN([Linear_graph(6, 8), AttentionGNNLayer(8, 2, seed=0), Linear_graph(8, 2)]),
])
def test_two_layer_gnn_regression_loss_decreases(make):
    store, x, targets = regression_graph()
    model = make()
    opt = Adam(model, lr=0.01)
    history = model.fit(store, targets, epochs=60, loss="mse", optimizer=opt, x=x,
                        progress=False)
    assert history[-1] < 0.5 * history[0]
    assert all(np.isfinite(history))


class Linear_graph(Linear):
    """A Linear layer that ignores the graph (to put AttentionGNNLayer between projections)."""

    def forward(self, x, graph=None):
        return super().forward(x)


def test_train_step_cross_entropy_with_mask_and_errors():
    store, x, _ = regression_graph()
    labels = (x[:, 0] > 0).astype(np.int64)
    mask = np.arange(len(labels)) % 2 == 0
    model = GNN([GATLayer(6, 8, seed=0), GATLayer(8, 2, seed=1)], activation="relu")
    opt = SGD(model, lr=0.1, momentum=0.9)
    first = model.train_step(store, labels, mask, loss="cross_entropy", optimizer=opt, x=x)
    for _ in range(30):
        last = model.train_step(store, labels, mask, loss="cross_entropy", optimizer=opt, x=x,
                                max_grad_norm=5.0)
    assert last < first
    with pytest.raises(InvalidConfig):
        model.train_step(store, labels, loss="hinge", optimizer=opt, x=x)
    with pytest.raises(Exception, match="x="):
        model.train_step(store.edge_index(), labels, loss="cross_entropy", optimizer=opt)


def test_training_is_deterministic():
    def train():
        store, x, targets = regression_graph()
        model = GNN([GATLayer(6, 8, heads=2, dropout=0.2, seed=3), GATLayer(16, 2, seed=4)],
                    activation="relu")
        opt = AdamW(model, lr=0.01)
        model.fit(store, targets, epochs=10, optimizer=opt, x=x, progress=False)
        return model.state_dict()
    a, b = train(), train()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_ewc_keeps_task_a_better_than_plain_fine_tuning():
    rng = np.random.default_rng(0)
    d = 10
    u, v = rng.standard_normal(d), rng.standard_normal(d)
    XA, XB = rng.standard_normal((400, d)), rng.standard_normal((400, d))
    yA, yB = (XA @ u > 0).astype(np.int64), (XB @ v > 0).astype(np.int64)

    def train(model, X, y, epochs, ewc=None):
        opt = SGD(model, lr=0.5)
        for _ in range(epochs):
            opt.zero_grad()
            _, g = cross_entropy(model.forward(X), y)
            model.backward(g)
            if ewc is not None:
                ewc.apply()
            opt.step()

    def accuracy(model, X, y):
        return float((model.forward(X).argmax(1) == y).mean())

    results = {}
    for lam in (0.0, 10.0):
        model = Linear(d, 2, seed=0, dtype=np.float64)
        train(model, XA, yA, 200)
        acc_a_before = accuracy(model, XA, yA)
        ewc = EWC(model, lam)

        def grad_fn(i):
            _, g = cross_entropy(model.forward(XA[i:i + 1]), yA[i:i + 1])
            model.backward(g)
        fisher = ewc.consolidate(range(0, 400, 4), grad_fn, progress=False)
        assert all(np.all(f >= 0) for f in fisher.values()) and ewc.penalty() == 0.0
        train(model, XB, yB, 200, ewc=ewc if lam else None)
        results[lam] = (acc_a_before, accuracy(model, XA, yA), accuracy(model, XB, yB))
    plain, kept = results[0.0], results[10.0]
    assert plain[0] > 0.95 and kept[0] > 0.95
    assert kept[1] > plain[1] + 0.2          # task A remembered better with EWC (0.64 vs 0.37)
    assert kept[2] > 0.65                    # while still learning task B (0.72)


def test_ewc_penalty_gradient_matches_finite_differences():
    model = Linear(3, 2, seed=1, dtype=np.float64)
    ewc = EWC(model, 3.0)
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((8, 3)), rng.integers(0, 2, 8)
    ewc.consolidate(range(8), lambda i: model.backward(
        cross_entropy(model.forward(X[i:i + 1]), y[i:i + 1])[1]), progress=False)
    model.weight[...] += rng.standard_normal(model.weight.shape)
    model.zero_grad()
    ewc.apply()
    analytic = model.grads["weight"].copy()
    eps, num = 1e-6, np.zeros_like(analytic)
    for idx in np.ndindex(analytic.shape):
        model.weight[idx] += eps
        up = ewc.penalty()
        model.weight[idx] -= 2 * eps
        down = ewc.penalty()
        model.weight[idx] += eps
        num[idx] = (up - down) / (2 * eps)
    assert np.allclose(analytic, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("make", [
    lambda: MultiHeadAttention(16, 4, seed=0),
    lambda: GNN([GATLayer(6, 8, heads=2, seed=0), SAGELayer(16, 2, aggr="max", seed=1)],
                activation="relu"),
    lambda: AttentionGNNLayer(6, 2, seed=np.random.default_rng(0)),
    lambda: GINLayer(6, 5, 4, train_eps=True, seed=0, dtype=np.float64),
])
def test_checkpoint_round_trip_bit_identical(tmp_path, make):
    module = make()
    rng = np.random.default_rng(0)
    if isinstance(module, MultiHeadAttention):
        x = rng.standard_normal((2, 5, 16)).astype(np.float32)
        run = lambda m: m.forward(x, x, x)[0]                      # noqa: E731
    else:
        store, x, _ = regression_graph()
        run = lambda m: m.forward(x, store)                        # noqa: E731
    before = run(module)
    save_checkpoint(module, tmp_path / "ck", extra={"epoch": 3})
    ck = load_checkpoint(tmp_path / "ck")
    assert type(ck.module) is type(module) and ck.optimizer is None
    assert ck.extra == {"epoch": 3}
    assert np.array_equal(run(ck.module), before)


def test_checkpoint_resumes_optimizer_identically(tmp_path):
    store, x, targets = regression_graph()
    model = GNN([GATLayer(6, 8, heads=2, seed=0), GATLayer(16, 2, seed=1)], activation="relu")
    opt = Adam(model, lr=0.01, weight_decay=1e-4)
    model.fit(store, targets, epochs=5, optimizer=opt, x=x, progress=False)
    save_checkpoint(model, tmp_path / "ck", optimizer=opt)
    ck = load_checkpoint(tmp_path / "ck")
    assert isinstance(ck.optimizer, Adam) and ck.optimizer.steps == 5
    a = model.fit(store, targets, epochs=5, optimizer=opt, x=x, progress=False)
    b = ck.module.fit(store, targets, epochs=5, optimizer=ck.optimizer, x=x, progress=False)
    assert a == b
    sa, sb = model.state_dict(), ck.module.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_checkpoint_corruption_and_mismatch(tmp_path):
    model = GATLayer(4, 3, seed=0)
    save_checkpoint(model, tmp_path / "ck")
    manifest = json.loads((tmp_path / "ck" / "manifest.json").read_text())
    tensors = tmp_path / "ck" / manifest["directory"] / "tensors.npz"
    data = bytearray(tensors.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(CorruptFile):
        load_checkpoint(tmp_path / "ck")

    save_checkpoint(model, tmp_path / "ck2")
    path = tmp_path / "ck2" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["module"]["args"]["out_dim"] = 5                  # config no longer fits
    path.write_text(json.dumps(manifest))
    with pytest.raises((InvalidConfig, CorruptFile)):
        load_checkpoint(tmp_path / "ck2")
    with pytest.raises(InvalidConfig, match="not a known Module class"):
        from_config({"class": "os.system", "args": {}})
    # a class path is looked up, never imported: the CLI's __main__ must not run
    for path in ("ruvector.__main__.X", "ruvector.cli.main", "ruvector.nn.module.Module.x"):
        with pytest.raises(InvalidConfig, match="not a known Module class"):
            from_config({"class": path, "args": {}})
    assert "ruvector.__main__" not in sys.modules
    for bad in ({"class": 3, "args": {}}, {"class": "ruvector.gnn.layers.GATLayer"},
                {"class": "ruvector.gnn.layers.GATLayer", "args": []}):
        with pytest.raises(InvalidConfig, match="bad module config"):
            from_config(bad)
    old_path = {"class": "ruvector.attention.graph.GATLayer",  # moved module, old checkpoints
                "args": {"in_dim": 4, "out_dim": 3}}
    assert type(from_config(old_path)).__name__ == "GATLayer"
    with pytest.raises(InvalidConfig):
        save_checkpoint(model, tmp_path / "ck3", optimizer=SGD(GATLayer(4, 3), lr=0.1))


def test_module_config_rebuilds_equal_modules():
    model = GNN([GATLayer(4, 8, heads=2, seed=1), SAGELayer(16, 3)], activation="relu")
    again = from_config(json.loads(json.dumps(model.config())))
    assert again.config() == model.config()
    assert {k: v.shape for k, v in again.parameters().items()} == \
        {k: v.shape for k, v in model.parameters().items()}


def test_learned_distance_raises_recall_over_plain_search():
    from benchmarks.learned_rerank import run
    result = run(n=3000, dim=16, rank=3, train_queries=300, test_queries=100, epochs=6,
                 hard_negatives=8, candidates=100)
    assert result["recall_learned_rerank"] > result["recall_plain"] + 0.1
    assert result["recall_learned_rerank"] <= result["recall_ceiling"] + 1e-9
    assert result["loss_history"][-1] < result["loss_history"][0]


def test_fit_validates_and_uses_explicit_negatives():
    from ruvector.index import AttentionDistance
    rng = np.random.default_rng(0)
    a, p = rng.standard_normal((40, 8)), rng.standard_normal((40, 8))
    d = AttentionDistance(8, seed=0)
    history = d.fit(a, p + a, negatives=rng.standard_normal((40, 3, 8)), epochs=5, lr=0.01,
                    batch_size=16, progress=False)
    assert len(history) == 5 and history[-1] < history[0]
    with pytest.raises(Exception, match="negatives"):
        d.fit(a, p, negatives=np.zeros((40, 3, 5)), progress=False)
    with pytest.raises(Exception, match="differ"):
        d.fit(a, p[:10], progress=False)


def test_karate_club_example_beats_majority():
    spec = importlib.util.spec_from_file_location(
        "karate_club", os.path.join(ROOT, "examples", "karate_club.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    result = mod.run(epochs=150)
    assert result["accuracy"] >= result["majority_baseline"] + 0.25
    assert result["final_loss"] < result["first_loss"]


def test_checkpoint_at_the_end_of_a_cosine_schedule_loads(tmp_path):
    from ruvector.training import CosineLR, LinearWarmup
    store, x, targets = regression_graph()
    model = GNN([GATLayer(6, 8, heads=2, seed=0), GATLayer(16, 2, seed=1)], activation="relu")
    opt = AdamW(model, lr=0.01, weight_decay=5e-4)
    sched = LinearWarmup(opt, 2, then=CosineLR(opt, T_max=3))
    model.fit(store, targets, epochs=5, optimizer=opt, scheduler=sched, x=x, progress=False)
    assert opt.lr == 0.0  # the schedule's legitimate end
    save_checkpoint(model, tmp_path / "ck", optimizer=opt, extra={"epoch": 5})
    ck = load_checkpoint(tmp_path / "ck")
    assert isinstance(ck.optimizer, AdamW) and ck.optimizer.lr == 0.0
    assert ck.optimizer.steps == opt.steps and ck.extra == {"epoch": 5}


def test_a_checkpoint_that_could_not_load_is_not_written(tmp_path):
    model = GATLayer(4, 3, seed=0)
    opt = Adam(model, lr=0.01)
    opt.lr = float("nan")  # e.g. a broken custom schedule
    with pytest.raises(InvalidConfig, match="lr"):
        save_checkpoint(model, tmp_path / "ck", optimizer=opt)
    assert not (tmp_path / "ck").exists()
