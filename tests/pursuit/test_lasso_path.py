"""Lasso paths against scikit-learn: the LARS knots (``lars_path`` vs ``sklearn.linear_model.lars_path``), the grid
solutions (``lasso_path`` vs ``sklearn.linear_model.lasso_path``; lam = N alpha), and the precomputed Gram of the
batched Lasso (``lasso_batch(..., gram=)``)."""
import numpy as np
import pytest

from sparsejax.pursuit.lasso_batch import lasso_batch
from sparsejax.pursuit.path import lam_grid, lars_path, lasso_path

sklm = pytest.importorskip("sklearn.linear_model")


def _problem(n, m, B, seed):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    return D, rng.standard_normal((B, n))


def _same_knots(p, D, Y, lam_min, positive=False):
    n = D.shape[0]
    for b in range(Y.shape[0]):
        alphas, _, coefs = sklm.lars_path(D, Y[b], method="lasso", alpha_min=lam_min / n, positive=positive)
        k = int(p.num_knots[b])
        assert k == len(alphas)
        np.testing.assert_allclose(np.asarray(p.lams[b, :k]), n * alphas, atol=1e-10)
        np.testing.assert_allclose(np.asarray(p.coefs[b, :k]), coefs.T, atol=1e-10)
        np.testing.assert_allclose(np.asarray(p.coefs[b, -1]), coefs[:, -1], atol=1e-10)   # padding repeats the end


def test_lars_path_knots_match_sklearn(x64):
    """Tall D to lam = 0 (the least-squares end; signal 0 has an atom that drops and re-enters with the opposite
    sign) and a wide D stopped at lam_min = 0.3: the same knots and codes as scikit-learn, batched."""
    D, Y = _problem(20, 10, 3, 0)
    p = lars_path(D, Y)
    assert np.all(np.asarray(p.converged)) and not np.any(np.asarray(p.dependent))
    _same_knots(p, D, Y, 0.0)
    np.testing.assert_allclose(np.asarray(p.coefs[:, -1]), np.linalg.lstsq(D, Y.T, rcond=None)[0].T, atol=1e-10)
    D, Y = _problem(10, 20, 3, 1)
    p = lars_path(D, Y, lam_min=0.3)
    assert np.all(np.asarray(p.lams[:, -1]) == 0.3)
    _same_knots(p, D, Y, 0.3)


@pytest.mark.slow
def test_lars_path_nonneg_matches_sklearn_positive(x64):
    D, Y = _problem(10, 16, 2, 2)
    p = lars_path(D, Y, lam_min=0.2, prox="nonneg_soft")
    assert np.all(np.asarray(p.coefs) >= 0)
    _same_knots(p, D, Y, 0.2, positive=True)


@pytest.mark.slow
def test_lasso_path_matches_sklearn_and_warm_starts(x64):
    """Codes on a grid of lam equal scikit-learn's lasso_path (alphas = lam / N), every solve certified; after the
    first lam each solve starts from the previous codes and takes few steps."""
    D, Y = _problem(10, 20, 3, 3)
    lams = lam_grid(D, Y, n_lams=5, eps=0.05)
    assert lams[0] == pytest.approx(np.max(np.abs(Y @ D))) and lams[-1] == pytest.approx(0.05 * lams[0])
    p = lasso_path(D, Y, lams[::-1], tol=1e-10)                    # any order: solved from lam_max down
    np.testing.assert_allclose(p.lams, lams)
    assert np.all(np.asarray(p.converged))
    for b in range(3):
        _, coefs, _ = sklm.lasso_path(D, Y[b], alphas=lams / 10, tol=1e-12, max_iter=100_000)
        np.testing.assert_allclose(np.asarray(p.codes[:, b]), coefs.T, atol=1e-8)
    assert np.all(np.asarray(p.codes[0]) == 0)                      # lam_max: all zero


@pytest.mark.slow
def test_lasso_batch_precomputed_gram():
    """gram = D^T D gives the same certified codes; a Gram of other atoms is refused, naming gram."""
    D, Y = _problem(12, 24, 4, 4)
    D, Y = D.astype(np.float32), Y.astype(np.float32)
    ref = lasso_batch(D, Y, 0.2, method="homotopy")
    sol = lasso_batch(D, Y, 0.2, method="homotopy", gram=D.T @ D)
    assert np.all(np.asarray(sol.converged))
    np.testing.assert_allclose(np.asarray(sol.codes), np.asarray(ref.codes), atol=1e-6)
    with pytest.raises(ValueError, match="gram does not match"):
        lasso_batch(D, Y, 0.2, gram=np.eye(24, dtype=np.float32))
    with pytest.raises(ValueError, match="gram"):
        lasso_batch(D, Y, 0.2, gram=np.eye(12, dtype=np.float32))


def test_path_arguments_are_checked():
    D, Y = _problem(6, 8, 2, 5)
    with pytest.raises(ValueError, match="lam_min"):
        lars_path(D, Y, lam_min=-1.0)
    with pytest.raises(ValueError, match="lams"):
        lasso_path(D, Y, [0.5, -0.1])
    with pytest.raises(ValueError, match="lams"):
        lasso_path(D, Y, [])
    with pytest.raises(ValueError, match="x0"):
        lasso_path(D, Y, [0.5], x0=np.zeros((2, 8)))
    with pytest.raises(ValueError, match="eps"):
        lam_grid(D, Y, eps=0.0)
