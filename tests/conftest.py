"""Strict test settings: rank promotion raises; fixtures for float64 and seeded keys."""

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """Run a test under float32 (the default) and float64 (with x64 enabled for the test only)."""
    if request.param == "float64":
        with jax.enable_x64(True):
            yield np.float64
    else:
        yield np.float32


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)


def tol_for(dtype, f32=1e-4, f64=1e-10):
    return f64 if np.dtype(dtype) == np.float64 else f32
