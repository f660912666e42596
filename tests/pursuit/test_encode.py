"""The batched front door agrees with the single-signal pursuits on every path."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj


@pytest.fixture(scope="module")
def data():
    D = sj.random_gaussian(jax.random.PRNGKey(0), 24, 48)
    A = jnp.zeros((12, 48)).at[jnp.arange(12)[:, None], jnp.array([[1, 7, 30]])].set(1.5)
    Y = A @ D.T + 0.01 * jax.random.normal(jax.random.PRNGKey(1), (12, 24))
    return D, Y


def test_omp_path_equals_single_omp(data):
    D, Y = data
    batch = sj.encode(D, Y, method="omp", k=3)
    for i in range(0, 12, 5):
        one = sj.omp(D, Y[i], k=3)
        np.testing.assert_allclose(np.asarray(batch.codes[i]), np.asarray(one.codes), atol=1e-5)
    nn = sj.encode(D, Y, method="omp", k=3, prox="nonneg_soft")
    assert float(jnp.min(nn.codes)) >= 0


@pytest.mark.slow  # ~20-40 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_lasso_paths_agree(data):
    D, Y = data
    fast = sj.encode(D, Y, method="lasso", lam=0.05)
    slow = sj.encode(D, Y, method="fista", lam=0.05, tol=1e-8, max_iter=20000, restart=True)
    F = lambda C: 0.5 * jnp.sum((Y - C @ D.T) ** 2, axis=1) + 0.05 * jnp.sum(jnp.abs(C), axis=1)
    np.testing.assert_allclose(np.asarray(F(fast.codes)), np.asarray(F(slow.codes)), rtol=1e-5)
    assert bool(jnp.all(fast.converged))


def test_matrix_free_operator_path(data):
    _, Y = data
    C = sj.Conv(jax.random.normal(jax.random.PRNGKey(2), (3, 1, 5)), (1, 24))
    Yc = Y[:4, None, :]
    sol = sj.encode(C, Yc, method="lasso", lam=0.1, tol=1e-7, max_iter=5000)
    assert sol.codes.shape == (4, 3, 24) and bool(jnp.all(sol.converged))
    th = sj.encode(C, Yc, method="threshold", lam=0.5, prox="soft")
    np.testing.assert_allclose(np.asarray(th.codes[0]), np.asarray(sj.shrink.soft(C.adjoint(Yc[0]), 0.5)), atol=1e-5)


def test_errors(data):
    D, Y = data
    with pytest.raises(ValueError, match="method"):
        sj.encode(D, Y, method="lars")
    with pytest.raises(ValueError, match=r"Y must have shape \(B, 24\)"):
        sj.encode(D, Y[:, :5], method="omp", k=2)
    with pytest.raises(ValueError, match="needs the keyword argument lam"):
        sj.encode(D, Y, method="lasso")
    with pytest.raises(ValueError, match="Y contains NaN"):
        sj.encode(D, Y.at[0, 0].set(jnp.nan), method="omp", k=2)
    with pytest.raises(ValueError, match="k"):
        sj.encode(D, Y, method="omp", k=100)
