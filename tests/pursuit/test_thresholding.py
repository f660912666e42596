"""Thresholding pursuit against a direct NumPy computation."""
import jax
import numpy as np
import pytest

from sparsejax.pursuit.thresholding import thresholding


def _problem(dtype, n=16, m=32, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    y = rng.standard_normal(n)
    return D.astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("prox", ["hard", "soft", "nonneg_soft"])
def test_threshold_matches_numpy(dtype, prox):
    D, y = _problem(dtype)
    c = D.T.astype(np.float64) @ y.astype(np.float64)
    lam = 0.5
    ref = {"hard": c * (np.abs(c) > lam), "soft": np.sign(c) * np.maximum(np.abs(c) - lam, 0),
           "nonneg_soft": np.maximum(c - lam, 0)}[prox]
    sol = thresholding(D, y, lam=lam, prox=prox)
    assert sol.codes.dtype == dtype
    np.testing.assert_allclose(np.asarray(sol.codes), ref, atol=1e-5 if dtype == np.float32 else 1e-12)
    r = y - D @ np.asarray(sol.codes)
    np.testing.assert_allclose(float(sol.objective), 0.5 * r @ r, rtol=1e-4)


def test_top_k_keeps_largest_and_debias_is_least_squares(dtype):
    D, y = _problem(dtype)
    c = D.T @ y
    k = 5
    S = np.argsort(-np.abs(c))[:k]
    sol = thresholding(D, y, k=k)
    ref = np.zeros_like(c)
    ref[S] = c[S]
    np.testing.assert_allclose(np.asarray(sol.codes), ref, rtol=1e-5, atol=1e-6)
    deb = np.asarray(thresholding(D, y, k=k, debias=True).codes)
    assert set(np.nonzero(deb)[0]) == set(S)
    # least-squares optimality on the support: D_S^T (y - D_S a_S) = 0
    g = D[:, S].T @ (y - D @ deb)
    assert np.abs(g).max() < (1e-4 if dtype == np.float32 else 1e-10)


def test_jit_vmap_and_traced_threshold():
    D, _ = _problem(np.float32)
    Y = np.random.default_rng(1).standard_normal((6, 16)).astype(np.float32)
    f = jax.jit(jax.vmap(lambda y, lam: thresholding(D, y, lam=lam, prox="soft").codes, in_axes=(0, None)))
    out = f(Y, 0.3)
    c = Y @ D
    np.testing.assert_allclose(np.asarray(out), np.sign(c) * np.maximum(np.abs(c) - 0.3, 0), atol=1e-5)


def test_bad_inputs():
    D, y = _problem(np.float32)
    with pytest.raises(ValueError, match="lam"):
        thresholding(D, y, lam=-1.0)
    with pytest.raises(ValueError, match="k"):
        thresholding(D, y, k=33)
    with pytest.raises(ValueError, match="lam|k"):
        thresholding(D, y)
    with pytest.raises(ValueError, match="prox"):
        thresholding(D, y, lam=0.1, prox="nope")
    with pytest.raises(TypeError, match="y"):
        thresholding(D, np.arange(16), lam=0.1)
    with pytest.raises(ValueError, match="y"):
        thresholding(D, y[:5], lam=0.1)
