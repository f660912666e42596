"""Sharded batched pursuits equal the unsharded call (4 host CPU devices, in a subprocess)."""
import textwrap

import pytest

from conftest import run_on_host_devices

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    import sparsejax as sj
    from sparsejax.distributed import shard_batch, batch_mesh
    assert jax.device_count() == 4, jax.devices()
    D = sj.random_gaussian(jax.random.PRNGKey(0), 20, 40)
    Y = jax.random.normal(jax.random.PRNGKey(1), (10, 20))   # 10 is not a multiple of 4: padding path
    fn = jax.vmap(lambda y, D, lam: sj.fista(D, y, lam, max_iter=300, tol=1e-6), in_axes=(0, None, None))
    ref = fn(Y, D, 0.1)
    out = shard_batch(fn)(Y, D, 0.1)
    np.testing.assert_allclose(np.asarray(out.codes), np.asarray(ref.codes), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out.num_steps), np.asarray(ref.num_steps))
    assert out.codes.shape == (10, 40)
    # the work really was split: each device holds a shard of a padded batch
    rows = jax.sharding.NamedSharding(batch_mesh(), jax.sharding.PartitionSpec("batch"))
    Ypad = jax.device_put(jnp.zeros((12, 20)), rows)
    assert len(Ypad.addressable_shards) == 4 and Ypad.addressable_shards[0].data.shape == (3, 20)
    print("OK")
    """
)


def test_sharded_pursuit_equals_unsharded():
    assert "OK" in run_on_host_devices(SCRIPT, 4)


CBPDN_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from sparsejax.pursuit.csc import cbpdn_admm
    from sparsejax.distributed import batch_mesh
    assert jax.device_count() == 2, jax.devices()
    mesh = batch_mesh()
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    f = jax.random.normal(k1, (6, 1, 5, 5), jnp.float64)
    s = jax.random.normal(k2, (1, 24, 24), jnp.float64)
    # scalar and per-map lam (the latter is split with the maps); same iterates, same stop
    for lam in (0.1, jnp.linspace(0.05, 0.2, 6)[:, None, None]):
        ref = cbpdn_admm(f, s, lam, max_iter=300, tol=1e-6)
        out = cbpdn_admm(f, s, lam, max_iter=300, tol=1e-6, mesh=mesh)
        assert int(out.num_steps) == int(ref.num_steps) and bool(out.converged) == bool(ref.converged)
        np.testing.assert_allclose(np.asarray(out.codes), np.asarray(ref.codes), atol=1e-9)
        np.testing.assert_allclose(float(out.objective), float(ref.objective), rtol=1e-12)
        assert len(out.codes.addressable_shards) == 2 and out.codes.addressable_shards[0].data.shape == (3, 24, 24)
    # objective history (scan) and multichannel filters (Woodbury with psum'd D D^H)
    ref = cbpdn_admm(f, s, 0.1, max_iter=30, mode="scan", history=True, chunk=1)
    out = cbpdn_admm(f, s, 0.1, max_iter=30, mode="scan", history=True, mesh=mesh, chunk=1)
    np.testing.assert_allclose(np.asarray(out.history), np.asarray(ref.history), rtol=1e-10)
    f3 = jax.random.normal(k1, (4, 3, 5, 5)); s3 = jax.random.normal(k2, (3, 20, 20))
    ref = cbpdn_admm(f3, s3, 0.1, max_iter=100, tol=1e-7)
    out = cbpdn_admm(f3, s3, 0.1, max_iter=100, tol=1e-7, mesh=mesh)
    np.testing.assert_allclose(np.asarray(out.codes), np.asarray(ref.codes), atol=1e-8)
    try:
        cbpdn_admm(jax.random.normal(k1, (5, 1, 5, 5)), s, 0.1, mesh=mesh)
    except ValueError as e:
        assert "multiple of the 2 devices" in str(e)
    else:
        raise AssertionError("M = 5 on 2 devices must be refused")
    print("OK")
    """
)


@pytest.mark.slow  # ~20-40 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_cbpdn_filters_split_over_devices_equals_single_device():
    assert "OK" in run_on_host_devices(CBPDN_SCRIPT, 2)


# ---------------------------------------------------------------------------------------------------------------
# the multi-process runtime's settings and the parallel loop, on one process (tests/test_multiprocess.py starts
# real processes)
# ---------------------------------------------------------------------------------------------------------------
def test_initialize_settings_checked_before_anything_starts(monkeypatch):
    import jax

    from sparsejax.distributed import ENV_VARS, initialize, settings_from_env

    env = {"SPARSEJAX_COORDINATOR": "10.1.2.3:4000", "SPARSEJAX_NUM_PROCESSES": "2"}
    with pytest.raises(ValueError, match="SPARSEJAX_PROCESS_ID is not"):
        settings_from_env(env)
    with pytest.raises(ValueError, match="SPARSEJAX_NUM_PROCESSES must be an integer"):
        settings_from_env(dict(env, SPARSEJAX_NUM_PROCESSES="two", SPARSEJAX_PROCESS_ID="0"))
    full = dict(env, SPARSEJAX_PROCESS_ID="1", SPARSEJAX_LOCAL_DEVICE_IDS="0,1")
    assert settings_from_env(full) == {"coordinator_address": "10.1.2.3:4000", "num_processes": 2, "process_id": 1,
                                       "local_device_ids": [0, 1]}
    with pytest.raises(ValueError, match="together"):
        initialize("127.0.0.1:1234", 2)
    with pytest.raises(ValueError, match=r"process_id must lie in \[0, num_processes = 2\)"):
        initialize("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match="host:port"):
        initialize("localhost", 2, 0)
    for name in ENV_VARS + ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES"):
        monkeypatch.delenv(name, raising=False)
    info = initialize()                      # nothing set, no cluster: one process, nothing started
    assert info.num_processes == 1 and info.process_id == 0 and not jax.distributed.is_initialized()
    assert initialize("127.0.0.1:1", 1, 0).num_processes == 1


def test_parallel_loop_checkpoints_resume_and_divergence(tmp_path):
    import jax.numpy as jnp
    import numpy as np

    from sparsejax.learn.checkpoint import list_checkpoints
    from sparsejax.learn.loop import ConfigMismatchError, run_loop
    from sparsejax.learn.parallel import parallel_loop

    step = lambda x: (0.5 * x + 1.0, {"loss": x * x})
    ref = run_loop(step, jnp.asarray(8.0), 5, progress=False)
    part = parallel_loop(step, jnp.asarray(8.0), 5, checkpoint_dir=tmp_path, checkpoint_every=2, stop_after=3,
                         config={"a": 1})
    assert part.status == "stopped" and [s for s, _ in list_checkpoints(tmp_path)] == [2, 3]
    rest = parallel_loop(step, jnp.asarray(8.0), 5, checkpoint_dir=tmp_path, checkpoint_every=2, config={"a": 1})
    assert rest.resumed_from == 3 and rest.status == "completed"
    assert float(rest.state) == float(ref.state)
    np.testing.assert_array_equal(rest.history["loss"], ref.history["loss"])
    with pytest.raises(ConfigMismatchError, match="a"):
        parallel_loop(step, jnp.asarray(8.0), 6, checkpoint_dir=tmp_path, config={"a": 2})
    bad = parallel_loop(lambda x: (x * jnp.inf, {}), jnp.asarray(1.0), 3)
    assert bad.status == "diverged" and bad.steps == 0 and float(bad.state) == 1.0


def test_parallel_learners_name_bad_input_before_compiling():
    import numpy as np

    from sparsejax.learn.parallel import (
        learn_conv_dictionary_parallel,
        learn_dictionary_parallel,
    )

    Y = np.ones((10, 4))
    with pytest.raises(ValueError, match="Y contains NaN"):
        learn_dictionary_parallel(np.where(np.eye(10, 4) > 0, np.nan, Y), 5, sparsity=2)
    with pytest.raises(ValueError, match="Y must be a float32 or float64 array"):
        learn_dictionary_parallel(Y.astype(int), 5, sparsity=2)
    with pytest.raises(ValueError, match="fewer than n_atoms"):
        learn_dictionary_parallel(Y, 11, sparsity=2)
    with pytest.raises(ValueError, match="give sparsity"):
        learn_dictionary_parallel(Y, 5, method="mod")
    with pytest.raises(ValueError, match="filter_size"):
        learn_conv_dictionary_parallel(np.ones((2, 8)), 3, 9, 0.1)
