import numpy as np
import pytest

from ruvector import InvalidConfig, Linear, MultiHeadAttention


def test_state_dict_round_trip_gives_identical_outputs(rng):
    a = MultiHeadAttention(16, 4, kdim=8, seed=1)
    b = MultiHeadAttention(16, 4, kdim=8, seed=2)
    x, kv = rng.standard_normal((2, 5, 16)), rng.standard_normal((2, 7, 8))
    xv = rng.standard_normal((2, 7, 16))
    assert not np.allclose(a.forward(x, kv, xv), b.forward(x, kv, xv))
    state = a.state_dict()
    b.load_state_dict(state)
    np.testing.assert_array_equal(a.forward(x, kv, xv), b.forward(x, kv, xv))
    state["w_q"][:] = 0  # state_dict returns copies
    assert np.any(a.w_q != 0)


def test_parameters_are_live_and_grads_match_names():
    lin = Linear(3, 2, seed=0)
    lin.parameters()["weight"][:] = 1.0
    np.testing.assert_array_equal(lin.forward(np.ones((1, 3))), [[3.0, 3.0]])
    assert set(lin.grads) == set(lin.parameters())
    lin.forward(np.ones((1, 3)))
    lin.backward(np.ones((1, 2)))
    assert np.any(lin.grads["weight"] != 0)
    lin.zero_grad()
    assert all(np.all(g == 0) for g in lin.grads.values())


def test_load_state_dict_rejects_bad_states():
    lin = Linear(3, 2, seed=0)
    good = lin.state_dict()
    with pytest.raises(InvalidConfig, match="missing"):
        lin.load_state_dict({"weight": good["weight"]})
    with pytest.raises(InvalidConfig, match="unknown"):
        lin.load_state_dict({**good, "extra": np.zeros(2)})
    with pytest.raises(InvalidConfig, match="shape"):
        lin.load_state_dict({**good, "weight": np.zeros((2, 3))})
    with pytest.raises(InvalidConfig, match="NaN"):
        lin.load_state_dict({**good, "bias": np.array([np.nan, 0])})
    np.testing.assert_array_equal(lin.weight, good["weight"])  # nothing half-loaded


def test_same_seed_same_init():
    a, b = MultiHeadAttention(8, 2, seed=5), MultiHeadAttention(8, 2, seed=5)
    for name, p in a.parameters().items():
        np.testing.assert_array_equal(p, b.parameters()[name])


def test_module_repr_shows_non_default_arguments_and_sub_modules():
    import numpy as np
    from ruvector import GATLayer, GNN, MultiHeadAttention
    assert repr(GATLayer(4, 3, heads=2)) == "GATLayer(in_dim=4, out_dim=3, heads=2)"
    assert repr(MultiHeadAttention(16, 2, dtype=np.float64)) == \
        "MultiHeadAttention(d_model=16, num_heads=2, dtype=float64)"
    assert repr(GNN([GATLayer(4, 3, heads=2), GATLayer(6, 2, seed=1)], activation="relu")) == (
        "GNN(activation='relu',\n"
        "  (0): GATLayer(in_dim=4, out_dim=3, heads=2)\n"
        "  (1): GATLayer(in_dim=6, out_dim=2, seed=1)\n"
        ")")
