"""Graph layers against dense-adjacency NumPy references, FD gradients, laws."""
import numpy as np
import pytest

from ruvector import DimensionMismatch, GATLayer, GINLayer, InvalidConfig, InvalidInput, SAGELayer
from ruvector.selftest.reference import gat_reference, gradient_errors, sage_reference


def random_graph(rng, n, e, self_loops=True, multi=True):
    src = rng.integers(0, n, e)
    dst = rng.integers(0, n, e)
    if multi:
        src[:3], dst[:3] = 1, 2  # a triple edge 1 -> 2
    if self_loops:
        src[3], dst[3] = 4, 4
    return np.stack([src, dst])


@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("loops", [True, False])
@pytest.mark.parametrize("edge_dim", [None, 3])
def test_gat_matches_reference(rng, concat, loops, edge_dim):
    N = 9
    ei = random_graph(rng, N, 25)
    ei[:, 5:7] = [[0, 1], [8, 8]]  # node 7 may stay isolated; give node 8 some edges
    ei[1][ei[1] == 7] = 6          # node 7: no incoming edge
    attr = rng.standard_normal((25, 3)) if edge_dim else None
    layer = GATLayer(5, 4, heads=3, concat=concat, add_self_loops=loops, edge_dim=edge_dim,
                     seed=1)
    layer.bias[:] = rng.standard_normal(layer.bias.shape)
    x = rng.standard_normal((N, 5))
    y, (ei2, alpha) = layer.forward(x, ei, attr, need_weights=True)
    ref_y, ref_alpha = gat_reference(layer, x, ei, attr)
    np.testing.assert_allclose(y, ref_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(alpha, ref_alpha, rtol=1e-4, atol=1e-6)
    # attention sums to one over the incoming edges of every target that has one
    sums = np.zeros((N, 3))
    np.add.at(sums, ei2[1], alpha)
    has_in = np.bincount(ei2[1], minlength=N) > 0
    np.testing.assert_allclose(sums[has_in], 1.0, rtol=1e-5)
    if not loops:  # an isolated node gets the bias only
        np.testing.assert_allclose(y[7], layer.bias, rtol=1e-6)


def _fd_check(layer, inputs, forward, wrt_params=True, tol=1e-4, sample=None):
    """Gradients of inputs (and parameters) against central differences; with ``sample``,
    at that many random entries of each array."""
    errors = gradient_errors(layer, inputs, forward, wrt_params, sample)
    assert max(errors.values()) < tol, errors


@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("edge_dim", [None, 2])
def test_gat_backward(rng, concat, edge_dim):
    N = 7
    ei = random_graph(rng, N, 16)
    layer = GATLayer(4, 3, heads=2, concat=concat, edge_dim=edge_dim, seed=2, dtype=np.float64)
    layer.bias[:] = rng.standard_normal(layer.bias.shape)
    x = rng.standard_normal((N, 4))
    attr = rng.standard_normal((16, 2)) if edge_dim else None
    inputs = (x,) if attr is None else (x, attr)
    _fd_check(layer, inputs, lambda: layer.forward(x, ei, attr))


def test_gat_backward_with_dropout(rng):
    N = 6
    ei = random_graph(rng, N, 14)
    layer = GATLayer(3, 2, heads=2, dropout=0.3, seed=3, dtype=np.float64).train()
    x = rng.standard_normal((N, 3))

    def fwd():
        layer._dropout_rng = np.random.default_rng(5)
        return layer.forward(x, ei)

    _fd_check(layer, (x,), fwd)


@pytest.mark.parametrize("train_eps", [False, True])
def test_gin_matches_reference_and_backward(rng, train_eps):
    N = 8
    ei = random_graph(rng, N, 20)
    layer = GINLayer(4, 6, 3, eps=0.3, train_eps=train_eps, seed=1, dtype=np.float64)
    layer.b1[:] = rng.standard_normal(6)
    x = rng.standard_normal((N, 4))
    A = np.zeros((N, N))
    np.add.at(A, (ei[1], ei[0]), 1.0)  # A[i, j] = number of edges j -> i
    z = 1.3 * x + A @ x
    ref = np.maximum(z @ layer.w1 + layer.b1, 0) @ layer.w2 + layer.b2
    np.testing.assert_allclose(layer.forward(x, ei), ref, rtol=1e-10)
    _fd_check(layer, (x,), lambda: layer.forward(x, ei), tol=1e-5)


@pytest.mark.parametrize("aggr", ["mean", "max", "sum"])
@pytest.mark.parametrize("normalize", [False, True])
def test_sage_matches_reference_and_backward(rng, aggr, normalize):
    N = 8
    ei = random_graph(rng, N, 20)
    ei[1][ei[1] == 5] = 6  # node 5: no neighbours -> zero neighbour contribution
    layer = SAGELayer(4, 3, aggr=aggr, normalize=normalize, seed=1, dtype=np.float64)
    layer.bias[:] = rng.standard_normal(3)
    x = rng.standard_normal((N, 4))
    np.testing.assert_allclose(layer.forward(x, ei), sage_reference(layer, x, ei), rtol=1e-10)
    _fd_check(layer, (x,), lambda: layer.forward(x, ei), tol=1e-5)


def _adjacency(ei, n):
    A = np.zeros((n, n))
    np.add.at(A, (ei[1], ei[0]), 1.0)  # A[i, j] = number of edges j -> i
    return A


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gin_and_sage_on_several_row_blocks_and_wide_features(rng, dtype):
    """110 nodes (blocks of 48 rows plus a tail) and widths past one micro-tile (16 float32 /
    8 float64 columns) with leftover columns: the fused kernels' register-tiled path."""
    N, din, hidden, dout = 110, 20, 40, 17
    ei = random_graph(rng, N, 900)
    x = rng.standard_normal((N, din))
    A = _adjacency(ei, N)
    gin = GINLayer(din, hidden, dout, eps=0.2, train_eps=True, seed=2, dtype=dtype)
    gin.b1[:] = rng.standard_normal(hidden)
    p = {k: v.astype(np.float64) for k, v in gin.parameters().items()}
    ref = np.maximum((1.2 * x + A @ x) @ p["w1"] + p["b1"], 0) @ p["w2"] + p["b2"]
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(gin.forward(x.astype(dtype), ei), ref, rtol=tol, atol=tol * 10)
    for root, bias in ((True, True), (False, False)):
        sage = SAGELayer(din, dout, aggr="mean", root_weight=root, bias=bias, seed=3, dtype=dtype)
        p = {k: v.astype(np.float64) for k, v in sage.parameters().items()}
        mean = A @ x / np.maximum(A.sum(1), 1)[:, None]
        ref = mean @ p["w_neigh"] + (x @ p["w_root"] if root else 0) + p.get("bias", 0)
        np.testing.assert_allclose(sage.forward(x.astype(dtype), ei), ref, rtol=tol,
                                   atol=tol * 10)
    if dtype == np.float64:
        _fd_check(gin, (x,), lambda: gin.forward(x, ei), tol=1e-5, sample=30)
        for root in (True, False):
            sage = SAGELayer(din, dout, aggr="sum", root_weight=root, seed=4, dtype=dtype)
            _fd_check(sage, (x,), lambda: sage.forward(x, ei), tol=1e-5, sample=30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gat_on_several_row_blocks_and_wide_heads(rng, dtype):
    """110 nodes (blocks of 48 rows plus a tail; more edges than the prefetch distance per
    node) and H C = 2 x 13 channels: the blocked projection, the source-side message pass
    and the fused finish (weight gradient and dx products on the micro-kernel)."""
    N, din = 110, 20
    ei = random_graph(rng, N, 900)
    x = rng.standard_normal((N, din))
    layer = GATLayer(din, 13, heads=2, seed=5, dtype=dtype)
    layer.bias[:] = rng.standard_normal(layer.bias.shape)
    y, (_, alpha) = layer.forward(x.astype(dtype), ei, need_weights=True)
    ref_y, ref_alpha = gat_reference(layer, x, ei)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y, ref_y, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(alpha, ref_alpha, rtol=tol, atol=tol)
    if dtype == np.float64:
        _fd_check(layer, (x,), lambda: layer.forward(x, ei), tol=1e-5, sample=30)


def test_permutation_equivariance(rng):
    N = 10
    ei = random_graph(rng, N, 30)
    x = rng.standard_normal((N, 4)).astype(np.float32)
    perm = rng.permutation(N)
    inv = np.argsort(perm)
    ei_p = inv[ei]  # node perm[k] becomes node k
    for layer in (GATLayer(4, 3, heads=2, seed=0), GINLayer(4, 5, 3, seed=0),
                  SAGELayer(4, 3, aggr="max", seed=0)):
        y = layer.forward(x, ei)
        y_p = layer.forward(x[perm], ei_p)
        np.testing.assert_allclose(y_p, y[perm], rtol=1e-5, atol=1e-5)


def test_bad_graph_input(rng):
    layer = GATLayer(4, 2)
    x = rng.standard_normal((5, 4))
    with pytest.raises(InvalidInput, match="outside"):
        layer.forward(x, np.array([[0, 5], [1, 2]]))
    with pytest.raises(InvalidInput, match="outside"):
        layer.forward(x, np.array([[0, -1], [1, 2]]))
    with pytest.raises(InvalidInput, match="shape"):
        layer.forward(x, np.array([0, 1, 2]))
    with pytest.raises(InvalidInput, match="integers"):
        layer.forward(x, np.array([[0.5, 1], [1, 2]]))
    with pytest.raises(DimensionMismatch):
        layer.forward(rng.standard_normal((5, 3)), np.array([[0], [1]]))
    with pytest.raises(InvalidInput):
        layer.forward(np.full((5, 4), np.nan), np.array([[0], [1]]))
    with pytest.raises(InvalidConfig, match="edge_attr"):
        layer.forward(x, np.array([[0], [1]]), edge_attr=np.ones((1, 2)))
    with pytest.raises(DimensionMismatch):
        GATLayer(4, 2, edge_dim=2).forward(x, np.array([[0], [1]]), edge_attr=np.ones((2, 2)))
    with pytest.raises(InvalidConfig):
        SAGELayer(4, 2, aggr="median")


def test_neighborhood_and_k_hop_equal_full_forward(rng):
    N = 30
    ei = random_graph(rng, N, 70)
    x = rng.standard_normal((N, 6)).astype(np.float32)
    layer = GATLayer(6, 3, heads=2, seed=4)
    full1 = layer.forward(x, ei)
    full2 = layer.forward(full1, ei)
    full3 = layer.forward(full2, ei)
    for node in (0, 2, 17):
        np.testing.assert_allclose(layer.forward_neighborhood(node, x, ei), full1[node],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.forward_k_hop(node, x, ei, 3), full3[node],
                                   rtol=1e-4, atol=1e-5)
    with pytest.raises(InvalidConfig):
        GATLayer(6, 4, heads=2).forward_k_hop(0, x, ei, 2)
    with pytest.raises(InvalidInput):
        layer.forward_neighborhood(N, x, ei)


@pytest.mark.parametrize("edge_dim", [None, 2])
def test_forward_with_edges_is_the_output_at_a_query_node(rng, edge_dim):
    keys = rng.standard_normal((6, 5)).astype(np.float32)
    query = rng.standard_normal(5).astype(np.float32)
    sources = np.array([0, 2, 2, 5])  # a parallel edge from key 2
    attr = rng.standard_normal((4, 2)) if edge_dim else None
    layer = GATLayer(5, 3, heads=2, add_self_loops=False, edge_dim=edge_dim, seed=7)
    layer.bias[:] = rng.standard_normal(6)
    out = layer.forward_with_edges(query, keys, keys, np.stack([sources, np.zeros(4, int)]),
                                   attr)
    x = np.vstack([keys, query[None]])
    full = layer.forward(x, np.stack([sources, np.full(4, 6)]), attr)
    np.testing.assert_allclose(out, full[6], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.forward_with_edges(query, keys, keys, sources, attr), out,
                               rtol=1e-6)
    # separate values change the messages, not the weights
    values = rng.standard_normal((6, 5)).astype(np.float32)
    assert not np.allclose(layer.forward_with_edges(query, keys, values, sources, attr), out)
    np.testing.assert_allclose(layer.forward_with_edges(query, keys, keys, sources[:0],
                                                        attr[:0] if edge_dim else None),
                               layer.bias, rtol=1e-6)
    with pytest.raises(InvalidInput):
        layer.forward_with_edges(query, keys, keys, np.array([[0, 1], [0, 3]]), attr)


def test_non_finite_settings_and_overflowing_inputs_raise():
    for make in (lambda: GINLayer(4, 8, 3, eps=float("nan")),
                 lambda: GINLayer(4, 8, 3, eps="x", train_eps=True),
                 lambda: GATLayer(4, 3, negative_slope=float("nan")),
                 lambda: GATLayer(4, 3, negative_slope=None)):
        with pytest.raises(InvalidConfig):
            make()
    x = np.full((5, 4), 3e38, np.float32)  # finite, but every sum overflows float32
    edges = np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
    for layer in (GATLayer(4, 3), GINLayer(4, 8, 3), SAGELayer(4, 3, aggr="max")):
        for param in layer.parameters().values():  # all-ones weights: the sums surely overflow
            param[...] = 1
        with pytest.raises(InvalidInput, match="overflows float32"), \
                np.errstate(over="ignore", invalid="ignore"):
            layer(x, edges)
    small = GINLayer(4, 8, 3, seed=0)
    assert np.isfinite(small(np.ones((5, 4)), edges)).all()
