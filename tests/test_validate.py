import numpy as np
import pytest

from ruvector import InvalidInput
from ruvector._validate import all_finite, check_finite


def test_all_finite_and_check_finite():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert all_finite(a)
    check_finite(a, "a")
    for bad in (np.nan, np.inf, -np.inf):
        b = a.copy()
        b[2, 1] = bad
        assert not all_finite(b)
        with pytest.raises(InvalidInput, match="b contains 1 NaN/Inf"):
            check_finite(b, "b")
    huge = np.full(4, 1e200)  # finite, but the squares overflow: the exact test clears it
    assert all_finite(huge)
    check_finite(huge, "huge")
