"""sparsejax.cores: one XLA:CPU device per core, the batched coders' rows split over them with the same codes.

The device count is fixed when JAX starts, so the checks with several devices run in fresh Python processes; the
main test process (one CPU device) checks the argument errors and that nothing is split by default.
"""
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax import cores
from sparsejax.cores import MIN_ROWS_PER_DEVICE, split_devices, split_rows

from conftest import run_on_host_devices


# ---- the main process: one CPU device, use_cpu_cores never called with success --------------------------------


def test_no_split_by_default():
    assert not cores._STATE["on"]
    assert sj.cpu_cores_in_use() == 1
    assert split_devices(None, 10_000) is None
    assert split_devices(1, 10_000) is None
    assert split_devices(np.int64(1), 10) is None
    assert split_devices(jax.local_devices()[:1], 10_000) is None   # one device given: no split


@pytest.mark.parametrize("bad", [0, -1, 2.5, "cpu", [], (), [0, 1], True, len(jax.local_devices()) + 1])
def test_bad_devices_raise(bad):
    with pytest.raises(ValueError, match="devices"):
        split_devices(bad, 10_000)


def test_bad_devices_raise_in_the_coders():
    D = sj.random_gaussian(jax.random.PRNGKey(0), 8, 16)
    Y = jax.random.normal(jax.random.PRNGKey(1), (4, 8))
    for call in (lambda: sj.omp_batch(D, Y, k=2, devices=0),
                 lambda: sj.omp_gram(D.T @ D, Y @ D, jnp.sum(Y * Y, 1), k=2, devices="cpu"),
                 lambda: sj.encode(D, Y, method="omp", k=2, devices=len(jax.local_devices()) + 1)):
        with pytest.raises(ValueError, match="devices"):
            call()


@pytest.mark.parametrize("bad", [0, -2, True, False, 2.0, "2"])
def test_use_cpu_cores_bad_n(bad):
    with pytest.raises(ValueError, match="n must"):
        sj.use_cpu_cores(bad)
    assert not cores._STATE["on"]


def test_use_cpu_cores_after_start_raises(monkeypatch):
    # the test process has computed already (and has one CPU device unless XLA_FLAGS says otherwise)
    monkeypatch.setitem(cores._STATE, "on", False)
    jnp.zeros(1).block_until_ready()
    if len(jax.local_devices(backend="cpu")) > 1:
        pytest.skip("this process was started with several CPU devices")
    with pytest.raises(RuntimeError, match="before JAX's first computation"):
        sj.use_cpu_cores(2)
    assert cores._STATE["on"] is False
    assert sj.cpu_cores_in_use() == 1
    # n = 1 asks for nothing new: accepted, and splitting stays off
    assert sj.use_cpu_cores(1) == 1
    assert cores._STATE["on"] is False


def test_split_rows_without_devices_calls_fn():
    calls = []

    def fn(r, c):
        calls.append(1)
        return r * c

    out = split_rows(fn, None, jnp.arange(3.0), 2.0)
    assert calls == [1]
    np.testing.assert_array_equal(np.asarray(out), [0.0, 2.0, 4.0])


def test_min_rows_per_device():
    assert MIN_ROWS_PER_DEVICE == 256


# ---- two devices started by use_cpu_cores(2) in a fresh process (no XLA_FLAGS) ----------------------------------

FRESH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    assert "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", "")
    import jax
    X64 = sys.argv[1] == "x64"
    LASSO = sys.argv[1] == "lasso"      # float32, with the lasso_batch check (a slow test)
    if X64:
        jax.config.update("jax_enable_x64", True)
    import sparsejax as sj
    assert sj.use_cpu_cores(2) == 2
    import jax.numpy as jnp, numpy as np
    from functools import partial
    from sparsejax.pursuit.omp import omp_gram
    from sparsejax.pursuit.lasso_batch import path_counts
    assert len(jax.devices()) == 2, jax.devices()
    assert sj.cpu_cores_in_use() == 2
    dt = np.float64 if X64 else np.float32
    tol_codes = 1e-10 if X64 else 1e-6

    def ndev(x):
        return len(x.sharding.device_set)

    def same(a, b, atol):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)

    D = sj.random_gaussian(jax.random.PRNGKey(0), 64, 128, dtype=dt)
    Y = jax.random.normal(jax.random.PRNGKey(1), (1000, 64), dtype=dt)
    assert D.dtype == dt and Y.dtype == dt

    # omp_batch: split over both devices, the same codes as one device
    s2, s1 = sj.omp_batch(D, Y, k=4), sj.omp_batch(D, Y, k=4, devices=1)
    assert ndev(s2.codes) == 2 and ndev(s1.codes) == 1, (s2.codes.sharding, s1.codes.sharding)
    same(s2.codes, s1.codes, tol_codes)
    np.testing.assert_array_equal(np.asarray(s2.state.support), np.asarray(s1.state.support))
    np.testing.assert_array_equal(np.asarray(s2.num_steps), np.asarray(s1.num_steps))
    # the split result takes part in further jax.numpy operations and numpy as it is
    assert abs(float(jnp.sum(s2.codes)) - float(np.asarray(s1.codes).sum())) < 1e-3

    # omp_gram
    G, DtY, yn2 = D.T @ D, Y @ D, jnp.sum(Y * Y, axis=1)
    g2, g1 = omp_gram(G, DtY, yn2, k=4), omp_gram(G, DtY, yn2, k=4, devices=1)
    assert ndev(g2.codes) == 2 and ndev(g1.codes) == 1
    same(g2.codes, g1.codes, tol_codes)

    # lasso_batch is not split (its Newton polish's LAPACK calls hung in a split run): one device, certified codes
    if LASSO:
      l2 = sj.lasso_batch(D, Y, 0.5, x0=jnp.zeros((Y.shape[0], 128), dt))
      assert ndev(l2.codes) == 1 and bool(np.asarray(l2.converged).all())

    # encode routes omp / lasso through the split coders
    e2, e1 = sj.encode(D, Y, method="omp", k=4), sj.encode(D, Y, method="omp", k=4, devices=1)
    assert ndev(e2.codes) == 2
    same(e2.codes, e1.codes, tol_codes)

    # cbpdn_admm: an untraced call splits its filters over the cores; traced (inside jit) it does not
    if not LASSO:
      f = sj.normalize_filters(jax.random.normal(jax.random.PRNGKey(2), (8, 1, 5, 5), dtype=dt))
      img = jax.random.normal(jax.random.PRNGKey(3), (1, 32, 32), dtype=dt)
      cz = sj.cbpdn_admm(f, img, 0.1, max_iter=60)
      cj = jax.jit(lambda im: sj.cbpdn_admm(f, im, 0.1, max_iter=60).codes)(img)
      assert ndev(cz.codes) == 2 and ndev(cj) == 1
      same(cz.codes, cj, 1e-9 if X64 else 2e-4)     # float32: the psum adds the maps in another order

    # an odd batch (padding path): the same codes and shapes
    Yo = Y[:1001] if Y.shape[0] > 1001 else jnp.concatenate([Y, Y[:1]])
    assert Yo.shape[0] == 1001
    o2, o1 = sj.omp_batch(D, Yo, k=4), sj.omp_batch(D, Yo, k=4, devices=1)
    assert ndev(o2.codes) == 2 and o2.codes.shape == (1001, 128) and o2.num_steps.shape == (1001,)
    same(o2.codes, o1.codes, tol_codes)

    # below 2 * 256 rows: not split
    small = sj.omp_batch(D, Y[:2 * 256 - 1], k=4)
    assert ndev(small.codes) == 1
    assert ndev(sj.omp_batch(D, Y[:2 * 256], k=4).codes) == 2

    # Y committed to device 0: the call stays on it (no error), same codes
    Yc = jax.device_put(Y, jax.devices()[0])
    c = sj.omp_batch(D, Yc, k=4)
    assert c.codes.sharding.device_set == {jax.devices()[0]}, c.codes.sharding
    same(c.codes, s1.codes, tol_codes)
    # ... and the result meets other committed arrays on device 0
    _ = c.codes + jax.device_put(jnp.zeros_like(c.codes), jax.devices()[0])

    # inside a user's jit (automatic, and explicit devices=2): the same codes
    j_auto = jax.jit(lambda D, Y: sj.omp_batch(D, Y, k=4).codes)(D, Y)
    same(j_auto, s1.codes, tol_codes)
    j2 = jax.jit(lambda D, Y: sj.omp_batch(D, Y, k=4, devices=2).codes)(D, Y)
    same(j2, s1.codes, tol_codes)

    # an explicit list of devices
    same(sj.omp_batch(D, Y, k=4, devices=jax.devices()).codes, s1.codes, tol_codes)
    print("OK")
    """
)


def _run_fresh(arg: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    res = subprocess.run([sys.executable, "-c", FRESH_SCRIPT, arg], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.mark.parametrize("precision", ["x32", "x64"])
def test_use_cpu_cores_splits_with_the_same_codes(precision):
    assert "OK" in _run_fresh(precision)


@pytest.mark.slow
def test_use_cpu_cores_leaves_lasso_batch_on_one_device():
    """lasso_batch is not split after use_cpu_cores (a split run of its Newton polish hung in XLA:CPU): it runs on
    one device and certifies its codes (the warm-start path, the one that hung)."""
    assert "OK" in _run_fresh("lasso")


# ---- XLA_FLAGS already gave two devices ---------------------------------------------------------------------

FORCED_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    import sparsejax as sj
    assert len(jax.devices()) == 2
    assert sj.cpu_cores_in_use() == 1             # two devices, but splitting is opt-in
    D = sj.random_gaussian(jax.random.PRNGKey(0), 64, 128)
    Y = jax.random.normal(jax.random.PRNGKey(1), (600, 64))
    ref = sj.omp_batch(D, Y, k=4)
    assert len(ref.codes.sharding.device_set) == 1
    assert sj.use_cpu_cores() == 2                # the devices XLA_FLAGS made are used as they are
    assert sj.cpu_cores_in_use() == 2
    out = sj.omp_batch(D, Y, k=4)
    assert len(out.codes.sharding.device_set) == 2
    np.testing.assert_allclose(np.asarray(out.codes), np.asarray(ref.codes), rtol=0, atol=1e-6)
    print("OK")
    """
)


def test_use_cpu_cores_with_xla_flags_devices():
    assert "OK" in run_on_host_devices(FORCED_SCRIPT, 2)
