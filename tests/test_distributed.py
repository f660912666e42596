"""Sharded batched pursuits equal the unsharded call (4 host CPU devices, in a subprocess)."""
import os
import subprocess
import sys
import textwrap

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
    Ypad = jax.device_put(jnp.zeros((12, 20)), jax.sharding.NamedSharding(batch_mesh(), jax.sharding.PartitionSpec("batch")))
    assert len(Ypad.addressable_shards) == 4 and Ypad.addressable_shards[0].data.shape == (3, 20)
    print("OK")
    """
)


def test_sharded_pursuit_equals_unsharded():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "OK" in res.stdout
