"""Checkpoints: bit-exact round trips of nested pytrees (optax states, typed and raw PRNG keys, bfloat16),
atomic writes, keep-last-n, and clear errors on a mismatched template."""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.learn import checkpoint as C
from sparsejax.learn.checkpoint import (checkpoint_path, latest_checkpoint, list_checkpoints, load_checkpoint,
                                  save_checkpoint)


class Pair(NamedTuple):
    a: jax.Array
    b: tuple


def _tree(seed=0):
    k = jax.random.key(seed)
    k1, k2, k3 = jax.random.split(k, 3)
    params = {"D": jax.random.normal(k1, (5, 7)), "bias": jax.random.normal(k2, (7,)).astype(jnp.bfloat16)}
    opt = optax.chain(optax.clip(1.0), optax.adam(1e-2))
    st = opt.init(params)
    # one real update so the moments are non-trivial
    g = jax.tree_util.tree_map(lambda x: jnp.ones_like(x) * 0.3, params)
    _, st = opt.update(g, st, params)
    return {
        "params": params,
        "opt": st,
        "key": k3,                                   # new-style typed key
        "rbg": jax.random.key(seed, impl="rbg"),     # another implementation
        "raw": jax.random.PRNGKey(seed + 1),         # old-style uint32 key
        "pair": Pair(jnp.arange(4, dtype=jnp.int32), (np.linspace(0, 1, 3), jnp.array(True))),
        "scalar": 2.5,
        "nothing": None,
    }


def _bits_equal(a, b):
    if jax.dtypes.issubdtype(getattr(a, "dtype", np.float32), jax.dtypes.prng_key):
        assert jax.random.key_impl(a) == jax.random.key_impl(b)
        a, b = jax.random.key_data(a), jax.random.key_data(b)
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def test_round_trip_bit_exact(tmp_path, x64):
    tree = _tree()
    extra = {"history": {"loss": np.array([3.0, np.nan, 1.0])}, "note": "hi", "n": np.int64(4)}
    p = save_checkpoint(checkpoint_path(tmp_path, 12), tree, step=12, extra=extra)
    # restore into a template with the same structure but different values
    ck = load_checkpoint(p, _tree(seed=5))
    assert ck.step == 12
    assert jax.tree_util.tree_structure(ck.tree) == jax.tree_util.tree_structure(tree)
    jax.tree_util.tree_map(_bits_equal, tree, ck.tree)
    assert isinstance(ck.tree["pair"].b[0], np.ndarray)  # numpy leaves stay numpy
    np.testing.assert_array_equal(ck.extra["history"]["loss"], extra["history"]["loss"])
    assert ck.extra["note"] == "hi" and ck.extra["n"] == 4
    # the restored key generates the same numbers
    np.testing.assert_array_equal(jax.random.normal(ck.tree["key"], (3,)), jax.random.normal(tree["key"], (3,)))


def test_folder_path_loads_latest_and_keep(tmp_path):
    tree = {"w": jnp.arange(3.0)}
    for s in (1, 2, 3, 10, 11):
        save_checkpoint(checkpoint_path(tmp_path, s), {"w": tree["w"] + s}, step=s, keep=3)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 10, 11]
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 11)
    ck = load_checkpoint(tmp_path, tree)
    assert ck.step == 11
    np.testing.assert_array_equal(ck.tree["w"], np.arange(3.0) + 11)
    assert latest_checkpoint(tmp_path / "missing") is None


def test_failed_write_keeps_previous(tmp_path, monkeypatch):
    tree = {"w": jnp.arange(4.0)}
    save_checkpoint(checkpoint_path(tmp_path, 5), tree, step=5)
    good = checkpoint_path(tmp_path, 5).read_bytes()

    def broken(fileobj, arrays):
        fileobj.write(b"PK\x03\x04 partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(C, "_write_npz", broken)
    # the same file (overwrite) and a newer step both fail cleanly
    for step in (5, 6):
        with pytest.raises(OSError, match="disk full"):
            save_checkpoint(checkpoint_path(tmp_path, step), {"w": tree["w"] * 0}, step=step)
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint_path(tmp_path, 5).name]  # no temp left
    assert checkpoint_path(tmp_path, 5).read_bytes() == good
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 5)
    np.testing.assert_array_equal(load_checkpoint(tmp_path, tree).tree["w"], np.arange(4.0))


def test_mismatch_errors(tmp_path):
    tree = {"w": jnp.zeros((3, 2)), "k": jax.random.key(0)}
    p = save_checkpoint(tmp_path / "c", tree, step=0)
    assert p.suffix == ".npz"
    with pytest.raises(ValueError, match="structure"):
        load_checkpoint(p, {"w": jnp.zeros((3, 2)), "k": jax.random.key(0), "extra": jnp.zeros(1)})
    with pytest.raises(ValueError, match="structure"):
        load_checkpoint(p, {"v": jnp.zeros((3, 2)), "k": jax.random.key(0)})
    with pytest.raises(ValueError, match=r"\['w'\].*shape \(3, 2\).*\(2, 3\)"):
        load_checkpoint(p, {"w": jnp.zeros((2, 3)), "k": jax.random.key(0)})
    with pytest.raises(ValueError, match=r"\['w'\].*dtype float32.*int32"):
        load_checkpoint(p, {"w": jnp.zeros((3, 2), jnp.int32), "k": jax.random.key(0)})
    with pytest.raises(ValueError, match=r"\['k'\].*implementation"):
        load_checkpoint(p, {"w": jnp.zeros((3, 2)), "k": jax.random.key(0, impl="rbg")})
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.npz", tree)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "empty", tree)
    np.savez(tmp_path / "foreign.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a sparsejax checkpoint"):
        load_checkpoint(tmp_path / "foreign.npz", tree)
    with pytest.raises(ValueError, match="step"):
        save_checkpoint(tmp_path / "x.npz", tree, step=-1)
    with pytest.raises(TypeError, match="extra"):
        save_checkpoint(tmp_path / "x.npz", tree, step=1, extra={"f": object()})


def test_float64_needs_x64(tmp_path, x64):
    p = save_checkpoint(tmp_path / "c.npz", {"w": jnp.ones(2, jnp.float64)}, step=0)
    ok = load_checkpoint(p, {"w": jnp.zeros(2, jnp.float64)})
    assert ok.tree["w"].dtype == jnp.float64
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="dtype float64.*float32"):
            load_checkpoint(p, {"w": jnp.zeros(2)})
