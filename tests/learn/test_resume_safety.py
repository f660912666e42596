"""Long runs lose nothing: damaged checkpoints, checkpoints of another run, and failed writes.

Three classes of failure, each seen on real use: (1) a truncated or corrupt newest checkpoint (a kill during
a copy, a full disk) blocked every resume although older good files existed; (2) a folder written by a run
with other settings was silently "resumed"; (3) a checkpoint folder that cannot be written failed only after
the computation, and a failed write mid-run surfaced as a raw OSError.
"""
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.learn import checkpoint as C
from sparsejax.learn.checkpoint import (CheckpointReadError, CheckpointWarning, CheckpointWriteError,
                                        checkpoint_path, list_checkpoints, load_checkpoint, save_checkpoint)
from sparsejax.learn.conv import learn_conv_dictionary
from sparsejax.learn.loop import ConfigMismatchError, run_config, run_loop


def _step(x):
    return jax.tree_util.tree_map(lambda v: 0.5 * v + 1.0, x), {"loss": jnp.sum(x["w"] ** 2)}


def _x0():
    return {"w": jnp.arange(4.0), "b": jnp.ones((2, 3))}


# ----------------------------------------------------------------------------------------------------
# (1) damaged files
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_newest_checkpoint_falls_back_to_the_newest_readable(tmp_path, damage):
    full = run_loop(_step, _x0(), 6, progress=False)
    part = run_loop(_step, _x0(), 6, checkpoint_dir=tmp_path, checkpoint_every=1, stop_after=4, progress=False)
    assert part.steps == 4
    newest = checkpoint_path(tmp_path, 4)
    raw = newest.read_bytes()
    newest.write_bytes({"truncated": raw[: len(raw) // 2], "garbage": b"PK\x03\x04" + b"\x00" * 64,
                        "empty": b""}[damage])
    tmp = tmp_path / ".ckpt_000000005.npz.abc123.tmp"          # left by a writer killed mid-write
    tmp.write_bytes(b"PK partial")
    with pytest.warns(CheckpointWarning, match=re.escape(newest.name)):
        rest = run_loop(_step, _x0(), 6, checkpoint_dir=tmp_path, checkpoint_every=1, progress=False)
    assert rest.resumed_from == 3 and rest.status == "completed"
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(a, b), rest.state, full.state)
    np.testing.assert_array_equal(rest.history["loss"], full.history["loss"])
    assert not tmp.exists()                                      # partial temporary file cleaned up
    assert (tmp_path / (newest.name + ".corrupt")).exists()      # kept aside, no longer a candidate
    assert [s for s, _ in list_checkpoints(tmp_path)] == [4, 5, 6]


def test_unreadable_leaf_and_missing_leaf_are_named_errors(tmp_path):
    tree = {"a": jnp.arange(3.0), "w": jnp.full((64,), 7.0)}
    p = save_checkpoint(checkpoint_path(tmp_path, 1), tree, step=1)
    raw = bytearray(p.read_bytes())
    at = raw.find(np.full((64,), 7.0, np.float32).tobytes())     # np.savez stores leaves uncompressed
    assert at > 0
    raw[at + 8] ^= 0xFF                                          # flip one byte of leaf ['w']: its CRC fails
    p.write_bytes(bytes(raw))
    with pytest.raises(CheckpointReadError, match=r"leaf \['w'\].*cannot be read back"):
        load_checkpoint(p, tree)
    # a file whose record names a leaf that is not stored
    q = save_checkpoint(checkpoint_path(tmp_path, 2), tree, step=2)
    with np.load(q) as z:
        arrays = {k: z[k] for k in z.files if k != "leaf_00001"}
    np.savez(q, **arrays)
    with pytest.raises(CheckpointReadError, match=r"leaf \['w'\] \(leaf_00001\) is missing"):
        load_checkpoint(q, tree)
    # both damaged: the folder has no readable checkpoint; each file is named in a warning
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(FileNotFoundError, match="no checkpoint"):
            load_checkpoint(tmp_path, tree)
    assert {p.name, q.name} <= {m for w in seen for m in re.findall(r"ckpt_\d+\.npz", str(w.message))}


# ----------------------------------------------------------------------------------------------------
# (2) a checkpoint of another run
# ----------------------------------------------------------------------------------------------------
def test_resume_refuses_other_settings_names_them_and_force_overrides(tmp_path):
    run_loop(_step, _x0(), 2, checkpoint_dir=tmp_path, config={"lam": 0.2, "size": 8}, progress=False)
    with pytest.raises(ConfigMismatchError, match=r"lam: 0\.2 in the checkpoint, 5\.0 in this run") as e:
        run_loop(_step, _x0(), 4, checkpoint_dir=tmp_path, config={"lam": 5.0, "size": 8}, progress=False)
    assert "size" not in str(e.value) and "force" in str(e.value)
    # the same settings resume (a longer run is allowed: num_steps is not a setting); run_config merges in
    with run_config({"lam": 0.2}):
        same = run_loop(_step, _x0(), 3, checkpoint_dir=tmp_path, config={"size": 8}, progress=False)
    assert same.resumed_from == 2 and same.steps == 3
    with pytest.warns(CheckpointWarning, match="lam"):
        forced = run_loop(_step, _x0(), 4, checkpoint_dir=tmp_path, config={"lam": 5.0, "size": 8},
                          resume="force", progress=False)
    assert forced.resumed_from == 3
    with pytest.raises(ValueError, match="resume"):
        run_loop(_step, _x0(), 4, checkpoint_dir=tmp_path, resume="yes", progress=False)


def test_conv_learner_records_its_settings(tmp_path):
    S = jax.random.normal(jax.random.PRNGKey(0), (2, 24))
    kw = dict(n_steps=2, checkpoint_dir=tmp_path, progress=False, stop_after=0)   # the initial state only
    assert learn_conv_dictionary(S, 3, 4, 0.1, **kw).loop.status == "stopped"
    with pytest.raises(ConfigMismatchError, match=r"lam: 0\.1 in the checkpoint, 0\.5 in this run"):
        learn_conv_dictionary(S, 3, 4, 0.5, **kw)
    with pytest.raises(ConfigMismatchError, match="images: array"):      # other data of the same shape
        learn_conv_dictionary(S + 1.0, 3, 4, 0.1, **kw)
    assert learn_conv_dictionary(S, 3, 4, 0.1, **kw).loop.resumed_from == 0


# ----------------------------------------------------------------------------------------------------
# (3) failed writes
# ----------------------------------------------------------------------------------------------------
def test_unwritable_folder_fails_before_any_step_and_failed_write_stops_the_run(tmp_path, monkeypatch):
    calls = []

    def counted(x):
        calls.append(1)
        return _step(x)

    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    with pytest.raises(CheckpointWriteError, match="afile"):
        run_loop(counted, _x0(), 3, checkpoint_dir=afile / "ckpts", progress=False)
    assert calls == []                                            # nothing was computed

    real = C._write_npz

    def fail_second(fileobj, arrays):
        if list_checkpoints(tmp_path / "run"):
            raise OSError(28, "No space left on device")
        real(fileobj, arrays)

    monkeypatch.setattr(C, "_write_npz", fail_second)
    with pytest.raises(CheckpointWriteError, match=r"ckpt_000000004\.npz.*No space left.*stopped at step 4") as e:
        run_loop(counted, _x0(), 8, checkpoint_dir=tmp_path / "run", checkpoint_every=2, progress=False)
    assert e.value.step == 4 and len(calls) == 4                  # the run stopped at the failed write
    np.testing.assert_array_equal(e.value.state["w"], run_loop(_step, _x0(), 4, progress=False).state["w"])
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [2]
    assert not list((tmp_path / "run").glob(".*.tmp"))
