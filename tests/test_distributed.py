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
