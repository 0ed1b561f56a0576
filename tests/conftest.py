import numpy as np
import pytest

from ruvector.selftest.reference import (  # noqa: F401  (shared with the tests)
    dense_reference_grads, fd_entry, finite_difference, reference_attention, rel_error)


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", action="store_true",
                     help="run the fuzz suites (tests/fuzz) with ten times as many cases")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


