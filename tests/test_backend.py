"""Backend-dependent defaults: every tuned setting exists for every backend kind, CPU keeps the measured blocks,
accelerators do not block, and the library's chunk=None defaults follow the table."""
import importlib

import jax
import pytest

import sparsejax._backend as B
from sparsejax._backend import TUNED, backend_kind, tuned
from sparsejax.pursuit import csc

omp = importlib.import_module("sparsejax.pursuit.omp")      # the module (the package attribute is the function)


def test_every_kind_has_every_setting():
    assert set(TUNED["cpu"]) == set(TUNED["accelerator"])
    for name in TUNED["cpu"]:
        assert tuned(name, "cpu") == TUNED["cpu"][name]
        assert tuned(name, "gpu") == tuned(name, "tpu") == TUNED["accelerator"][name]


def test_accelerators_take_larger_blocks_than_cpu():
    for name in ("omp_chunk", "lasso_guess_chunk", "lasso_homotopy_chunk"):
        assert tuned(name, "gpu") > tuned(name, "cpu")
    assert tuned("csc_chunk_bytes", "gpu") is None


def test_default_backend_and_unknown_name():
    assert backend_kind() == ("cpu" if jax.default_backend() == "cpu" else "accelerator")
    with pytest.raises(KeyError, match="omp_chunk"):
        tuned("no_such_setting")


def test_library_defaults_follow_the_backend(monkeypatch):
    """omp_batch's block, lasso_batch's chunks and the CSC map chunks come from the table: the CPU values on CPU,
    no blocking when the backend is an accelerator (simulated here: the backend name is all that is read)."""

    big_map = 8 * 256 * 256 * 4                      # 8 images of 256 x 256 float32: 2 MiB per code map
    assert omp._check_chunk(None, 10_000) == 256 and omp._check_chunk(None, 100) is None
    assert csc._default_chunk(32, big_map) == 1      # 1 MiB on XLA:CPU: one map at a time
    assert csc._default_chunk(32, 1024) == 32
    monkeypatch.setattr(B.jax, "default_backend", lambda: "gpu")
    assert omp._check_chunk(None, 10_000) is None and omp._check_chunk(None, 100_000) == 1 << 16
    assert csc._default_chunk(32, big_map) == 32     # all M maps at once
