"""Batch-OMP's fast path (the unrolled kernel over cache-sized blocks, codes scattered once) against the fori_loop
kernel it replaces for small k: the same pursuit step for step, on ordinary signals and on the edge cases (exact
fits, zero signals, exact ties, tolerance stops, non-finite input)."""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.pursuit._batch_omp import (
    UNROLL_MAX_K,
    batch_omp_core,
    batch_omp_unrolled,
    codes_from_slots,
    scatter_slots,
)
from sparsejax.pursuit.omp import omp_batch


def _signals(dtype, B=37, n=16, m=40, s=3, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    A = np.zeros((B, m))
    for i in range(B):
        A[i, rng.choice(m, s, replace=False)] = rng.choice([-1, 1], s) * rng.uniform(0.5, 1.5, s)
    Y = A @ D.T + 0.01 * rng.standard_normal((B, n))
    Y[3] = 0.0                                          # a zero signal: no atom chosen
    Y[5] = 2.0 * D[:, 7]                                # one atom: exact fit after one step
    return D.astype(dtype), Y.astype(dtype)


def _both(D, Y, k, tol2=-1.0):
    G = jnp.asarray(D.T @ D)
    a0 = jnp.asarray(Y @ D)
    yn = jnp.sum(jnp.asarray(Y) ** 2, axis=1)
    unrolled = jax.jit(partial(batch_omp_unrolled, k=k))
    core = jax.jit(partial(batch_omp_core, k=k, return_factor=True))
    return unrolled(G, a0, yn, tol2), core(G, a0, yn, tol2)


def test_unrolled_kernel_is_the_same_pursuit(dtype):
    k = UNROLL_MAX_K if dtype == np.float32 else 4       # steps 1..k all run (some signals stop early too)
    D, Y = _signals(dtype)
    (gamma, nsteps, energy, idx, finite), (codes, nsteps0, energy0, idx0, _, _, gamma0) = _both(D, Y, k)
    np.testing.assert_array_equal(np.asarray(idx), np.asarray(idx0))            # same atoms, same order
    np.testing.assert_array_equal(np.asarray(nsteps), np.asarray(nsteps0))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(np.asarray(gamma) * (np.asarray(idx) >= 0), np.asarray(gamma0) * (np.asarray(idx0) >= 0),
                               atol=tol)
    np.testing.assert_allclose(np.asarray(energy), np.asarray(energy0), atol=tol * 10)
    np.testing.assert_allclose(np.asarray(codes_from_slots(idx, gamma, D.shape[1])), np.asarray(codes), atol=tol)
    assert np.all(np.asarray(finite))
    assert int(nsteps[3]) == 0 and int(nsteps[5]) == 1                          # zero signal, exact one-atom fit


def test_tol_stop_ties_and_nan_rows():
    D = np.eye(6, dtype=np.float32)
    Y = np.array([[0, 1.0, 0, 1.0, 0, 0],               # exact tie: the lower index goes first
                  [3.0, 0, 0, 0, 0, 0.1],              # tol = 0.5 stops after one atom
                  [np.nan, 0, 0, 0, 0, 0]], np.float32)       # a NaN signal (the kernel's own flag)
    (_, nsteps, energy, idx, finite), (_, nsteps0, _, idx0, finite0, _, _) = _both(D, Y, 3, tol2=0.25)
    np.testing.assert_array_equal(np.asarray(idx), np.asarray(idx0))
    np.testing.assert_array_equal(np.asarray(nsteps), np.asarray(nsteps0))
    assert np.asarray(idx)[0].tolist()[:2] == [1, 3] and int(nsteps[1]) == 1
    np.testing.assert_array_equal(np.asarray(finite), np.asarray(finite0))
    assert np.isnan(np.asarray(energy)[2]) and not np.isnan(np.asarray(energy)[:2]).any()


def test_blocks_do_not_change_the_result():
    """Chunked (with a padded last block) and unchunked runs give identical supports and codes; codes_from_slots
    equals the scatter used elsewhere."""
    D, Y = _signals(np.float32, B=45, n=16, m=40)
    ref = omp_batch(D, Y, k=3)
    sol = omp_batch(D, Y, k=3, chunk=16)             # 45 = 2 * 16 + 13: a padded last block
    np.testing.assert_array_equal(np.asarray(sol.state.support), np.asarray(ref.state.support))
    np.testing.assert_allclose(np.asarray(sol.codes), np.asarray(ref.codes), atol=1e-6)
    idx = jnp.array([[2, -1, 0], [1, 3, -1]])
    vals = jnp.array([[5.0, 7.0, 1.0], [2.0, 3.0, 4.0]])
    np.testing.assert_array_equal(np.asarray(codes_from_slots(idx, vals, 4)), np.asarray(scatter_slots(idx, vals, 4)))
