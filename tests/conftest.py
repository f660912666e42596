"""Strict test settings: rank promotion raises; fixtures for float64 and seeded keys."""

import os
import subprocess
import sys

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


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop compiled executables after each test module. A single process that compiles thousands of XLA programs
    keeps every one of them (and their memory mappings) alive; the full suite then crashed inside XLA compilation
    (SIGSEGV) about two thirds of the way through. Nothing is shared across modules, so this costs nothing."""
    yield
    import gc

    jax.clear_caches()
    gc.collect()


def run_on_host_devices(script: str, n_devices: int, timeout: int = 300) -> str:
    """Run ``script`` in a fresh Python with ``n_devices`` XLA host (CPU) devices; it must exit 0. Returns its
    stdout (the scripts print OK after their own checks). The device count is fixed when JAX starts, hence the
    subprocess."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_devices}", JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout
