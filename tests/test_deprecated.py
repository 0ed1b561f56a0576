"""Old names (moved modules, renamed keyword arguments) still work, with a DeprecationWarning."""
import importlib
import sys

import numpy as np
import pytest

from ruvector._deprecated import MOVED_MODULES
from ruvector.attention import HyperbolicAttention, ScaledDotProductAttention
from ruvector.errors import InvalidConfig
from ruvector.gnn import GATLayer


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_moved_module_paths_import_the_new_module_with_a_warning(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=MOVED_MODULES[old]):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED_MODULES[old])


def test_sdpa_old_keyword_names_warn_and_give_the_same_answer(rng):
    q, k, v = (rng.standard_normal((4, 8)).astype(np.float32) for _ in range(3))
    attn = ScaledDotProductAttention()
    out, w = attn.forward(q, key=k, value=v, need_weights=True)
    with pytest.warns(DeprecationWarning) as caught:
        old_out, old_w = attn.forward(q, keys=k, values=v, return_weights=True)
    assert sorted(str(w.message) for w in caught) == [
        f"ScaledDotProductAttention.forward: {old}= is deprecated, use {new}="
        for old, new in (("keys", "key"), ("return_weights", "need_weights"),
                         ("values", "value"))]
    np.testing.assert_array_equal(out, old_out)
    np.testing.assert_array_equal(w, old_w)
    with pytest.raises(InvalidConfig, match="pass key= only"):
        attn.forward(q, key=k, keys=k, value=v)


def test_geometric_and_gat_old_keyword_names_warn(rng):
    att = HyperbolicAttention(4)
    q, k, v = (0.1 * rng.standard_normal((3, 4)) for _ in range(3))
    with pytest.warns(DeprecationWarning, match="HyperbolicAttention.forward: keys="):
        old = att.forward(q, keys=k, value=v)
    np.testing.assert_array_equal(old, att.forward(q, k, v))
    layer = GATLayer(4, 2, heads=2, seed=0)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    ei = np.array([[0, 1, 2], [1, 2, 0]])
    y, (_, alpha) = layer.forward(x, ei, need_weights=True)
    with pytest.warns(DeprecationWarning, match="need_weights"):
        y_old, (_, alpha_old) = layer.forward(x, ei, return_attention=True)
    np.testing.assert_array_equal(y, y_old)
    np.testing.assert_array_equal(alpha, alpha_old)
