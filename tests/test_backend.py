"""Backend-dependent defaults: every tuned setting exists for every backend kind, CPU keeps the measured blocks,
accelerators do not block, and the library's chunk=None defaults follow the table."""
import jax
import pytest

from sparsejax._backend import TUNED, backend_kind, tuned


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
