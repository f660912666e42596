"""Lasso objectives of FISTA, ADMM and lasso_batch agree with scikit-learn's coordinate descent.

scikit-learn minimises 1/(2 n) ||y - X w||^2 + alpha ||w||_1, so alpha = lam / n gives our problem.
"""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.linear_model import Lasso  # noqa: E402

import sparsejax  # noqa: E402
from sparsejax.pursuit.admm import bpdn_admm  # noqa: E402
from sparsejax.pursuit.lasso_batch import lasso_batch  # noqa: E402

LAM = 0.05


def problems(B=3, n=24, m=48, k=4, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    A = np.zeros((B, m))
    for i in range(B):
        A[i, rng.choice(m, k, replace=False)] = rng.standard_normal(k)
    Y = A @ D.T + 0.02 * rng.standard_normal((B, n))
    return D, Y


def sklearn_codes(D, Y, lam, positive=False):
    n = D.shape[0]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for y in Y:
            m = Lasso(alpha=lam / n, fit_intercept=False, tol=1e-14, max_iter=1_000_000, positive=positive)
            out.append(m.fit(D, y).coef_)
    return np.array(out)


def objective(D, y, a, lam):
    r = y - D @ np.asarray(a, np.float64)
    return 0.5 * r @ r + lam * np.abs(a).sum()


def ours(name, D, Y, lam, nonneg, f64):
    prox = "nonneg_soft" if nonneg else "soft"
    if name == "lasso_batch":
        return np.asarray(lasso_batch(D, Y, lam, prox=prox, tol=1e-13 if f64 else 1e-6).codes)
    if name == "fista":
        f = lambda y: sparsejax.fista(D, y, lam, max_iter=20000, tol=1e-13 if f64 else 1e-7, restart=True,
                                      prox=prox).codes
    else:
        f = lambda y: bpdn_admm(D, y, lam, max_iter=20000, tol=1e-12 if f64 else 1e-6, prox=prox).codes
    return np.asarray(jax.vmap(f)(jnp.asarray(Y)))


@pytest.mark.parametrize("name", ["fista", "admm", "lasso_batch"])
@pytest.mark.parametrize("nonneg", [False, True])
def test_agreement_float64(x64, name, nonneg):
    D, Y = problems()
    ref = sklearn_codes(D, Y, LAM, positive=nonneg)
    got = ours(name, D, Y, LAM, nonneg, True)
    for y, a, r in zip(Y, got, ref):
        fo, fr = objective(D, y, a, LAM), objective(D, y, r, LAM)
        assert abs(fo - fr) <= 1e-6 * fr, (name, fo, fr)
        supp_r = np.abs(r) > 1e-6 * np.abs(r).max()
        supp_o = np.abs(a) > 1e-6 * np.abs(a).max()
        np.testing.assert_array_equal(supp_o, supp_r)
        if nonneg:
            assert np.all(a >= 0)


@pytest.mark.parametrize("name", ["fista", "admm", "lasso_batch"])
def test_agreement_float32(name):
    D, Y = problems(seed=1)
    ref = sklearn_codes(D, Y, LAM)
    got = ours(name, D.astype(np.float32), Y.astype(np.float32), LAM, False, False)
    assert got.dtype == np.float32
    for y, a, r in zip(Y, got, ref):
        fo, fr = objective(D, y, a, LAM), objective(D, y, r, LAM)
        assert abs(fo - fr) <= 1e-4 * fr, (name, fo, fr)
        big = np.abs(r) > 1e-2 * np.abs(r).max()   # clearly active atoms are found
        assert np.all(np.abs(a[big]) > 0)
