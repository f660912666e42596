"""run_loop: exact resume (optax state + PRNG key split every step), continuous history, divergence
handling with the last good checkpoint kept, progress output, argument errors."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.learn.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from sparsejax.learn.loop import LoopResult, run_loop

_A = jax.random.normal(jax.random.PRNGKey(1), (40, 6))
_B = _A @ jnp.arange(1.0, 7.0) + 0.1 * jax.random.normal(jax.random.PRNGKey(2), (40,))
_OPT = optax.adam(0.3)


def _init():
    w = jnp.zeros(6)
    return {"w": w, "opt": _OPT.init(w), "key": jax.random.key(0)}


@jax.jit
def _step(state):
    """SGD on a least-squares problem: a random mini-batch of 8 rows drawn from the key in the state."""
    key, sub = jax.random.split(state["key"])
    rows = jax.random.choice(sub, _A.shape[0], (8,), replace=False)

    def loss_fn(w):
        r = _A[rows] @ w - _B[rows]
        return 0.5 * jnp.mean(r * r)

    loss, g = jax.value_and_grad(loss_fn)(state["w"])
    upd, opt = _OPT.update(g, state["opt"], state["w"])
    w = optax.apply_updates(state["w"], upd)
    return {"w": w, "opt": opt, "key": key}, {"loss": loss, "gnorm": jnp.linalg.norm(g)}


def _same_bits(a, b):
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        a, b = jax.random.key_data(a), jax.random.key_data(b)
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_interrupt_and_resume_is_exact(tmp_path):
    n = 23
    full = run_loop(_step, _init(), n, progress=False)
    assert isinstance(full, LoopResult) and full.status == "completed" and full.steps == n
    assert full.resumed_from is None and full.history["loss"].shape == (n,)
    # the run learns: the loss decreases
    assert full.history["loss"][-5:].mean() < 0.2 * full.history["loss"][:3].mean()

    d = tmp_path / "run"
    first = run_loop(_step, _init(), n, checkpoint_dir=d, checkpoint_every=5, stop_after=9, progress=False)
    assert first.status == "stopped" and first.steps == 9 and "stopped" in first.message
    assert latest_checkpoint(d).name.endswith("9.npz")
    second = run_loop(_step, _init(), n, checkpoint_dir=d, checkpoint_every=5, progress=False)
    assert second.status == "completed" and second.resumed_from == 9 and second.steps == n
    jax.tree_util.tree_map(_same_bits, full.state, second.state)
    # the history is continuous across the resume and equals the uninterrupted one
    for k in ("loss", "gnorm"):
        np.testing.assert_array_equal(second.history[k], full.history[k])
    np.testing.assert_array_equal(second.history["loss"][:9], first.history["loss"])
    # the final checkpoint holds the final state and full history; only the last 3 are kept
    ck = load_checkpoint(d, _init())
    assert ck.step == n
    jax.tree_util.tree_map(_same_bits, full.state, ck.tree)
    np.testing.assert_array_equal(ck.extra["history"]["loss"], full.history["loss"])
    assert [s for s, _ in list_checkpoints(d)] == [15, 20, 23]
    # resuming a finished run does nothing
    again = run_loop(_step, _init(), n, checkpoint_dir=d, progress=False)
    assert again.steps == n and again.status == "completed" and again.resumed_from == n
    jax.tree_util.tree_map(_same_bits, full.state, again.state)


def test_crash_resumes_from_periodic_checkpoint(tmp_path):
    """A step that raises (a crash) leaves the last periodic checkpoint; resuming redoes the lost steps."""
    n = 12
    full = run_loop(_step, _init(), n, progress=False)
    calls = {"n": 0}

    def crashing(state):
        calls["n"] += 1
        if calls["n"] == 8:
            raise RuntimeError("power cut")
        return _step(state)

    d = tmp_path / "run"
    with pytest.raises(RuntimeError, match="power cut"):
        run_loop(crashing, _init(), n, checkpoint_dir=d, checkpoint_every=3, progress=False)
    assert load_checkpoint(d, _init()).step == 6
    res = run_loop(_step, _init(), n, checkpoint_dir=d, checkpoint_every=3, progress=False)
    assert res.resumed_from == 6
    jax.tree_util.tree_map(_same_bits, full.state, res.state)
    np.testing.assert_array_equal(res.history["loss"], full.history["loss"])
    # Ctrl-C during a step saves the last completed step before re-raising
    calls["n"] = 0

    def interrupted(state):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return _step(state)

    with pytest.raises(KeyboardInterrupt):
        run_loop(interrupted, _init(), n, checkpoint_dir=tmp_path / "ctrlc", checkpoint_every=3, progress=False)
    assert load_checkpoint(tmp_path / "ctrlc", _init()).step == 4
    res = run_loop(_step, _init(), n, checkpoint_dir=tmp_path / "ctrlc", progress=False)
    jax.tree_util.tree_map(_same_bits, full.state, res.state)
    # resume=False starts again from the initial state
    fresh = run_loop(_step, _init(), 2, checkpoint_dir=tmp_path / "run", resume=False, progress=False)
    assert fresh.resumed_from is None
    np.testing.assert_array_equal(fresh.history["loss"], full.history["loss"][:2])


@pytest.mark.parametrize("where", ["loss", "state"])
def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path, where):
    def step_fn(state):
        k = state["k"] + 1
        bad = where == "state" and k == 5
        w = state["w"] * 1.5 + (jnp.nan if bad else 0.0)
        loss = jnp.nan if (where == "loss" and k == 5) else jnp.sum(state["w"])
        return {"w": w, "k": k}, {"loss": loss}

    state = {"w": jnp.ones(3), "k": jnp.asarray(0, jnp.int32)}
    d = tmp_path / where
    res = run_loop(step_fn, state, 10, checkpoint_dir=d, checkpoint_every=3, progress=False)
    assert res.status == "diverged" and res.steps == 4
    assert "step 5" in res.message
    assert ("'loss'" in res.message) if where == "loss" else ("['w']" in res.message)
    # last good state returned, history of the good steps only
    np.testing.assert_array_equal(res.state["w"], 1.5 ** 4 * np.ones(3, np.float32))
    assert res.history["loss"].shape == (4,) and np.all(np.isfinite(res.history["loss"]))
    # the checkpoint on disk is the last good periodic one (step 3), not overwritten by the bad step
    ck = load_checkpoint(d, state)
    assert ck.step == 3 and [s for s, _ in list_checkpoints(d)] == [3]
    np.testing.assert_array_equal(ck.tree["w"], 1.5 ** 3 * np.ones(3, np.float32))
    assert np.all(np.isfinite(np.asarray(ck.tree["w"])))


def test_history_pads_missing_metrics_and_progress(capsys):
    def step_fn(s):
        s = s + 1
        m = {"loss": 1.0 / s}
        if int(s) % 2 == 0:
            m["even"] = s
        return s, m

    res = run_loop(step_fn, jnp.asarray(0.0), 4, desc="demo", progress=True)
    np.testing.assert_allclose(res.history["loss"], [1, 1 / 2, 1 / 3, 1 / 4], rtol=1e-6)
    np.testing.assert_array_equal(res.history["even"], [np.nan, 2, np.nan, 4])
    err = capsys.readouterr().err
    assert "demo" in err and "loss" in err
    run_loop(step_fn, jnp.asarray(0.0), 2, progress=False)
    assert capsys.readouterr().err == ""


def test_bad_arguments(tmp_path):
    s = {"w": jnp.ones(2)}
    ok = lambda st: (st, {})  # noqa: E731
    with pytest.raises(ValueError, match="num_steps"):
        run_loop(ok, s, -1)
    with pytest.raises(ValueError, match="checkpoint_every"):
        run_loop(ok, s, 3, checkpoint_every=0)
    with pytest.raises(TypeError, match="step_fn"):
        run_loop(None, s, 3)
    with pytest.raises(TypeError, match="metric 'v'"):
        run_loop(lambda st: (st, {"v": jnp.ones(2)}), s, 3, progress=False)
    # a checkpoint that does not fit the state is a clear error, not a silent restart
    run_loop(ok, s, 2, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="structure"):
        run_loop(ok, {"w": jnp.ones(2), "b": jnp.ones(1)}, 3, checkpoint_dir=tmp_path, progress=False)
