"""The Elastic Net min 1/2||y - D a||^2 + lam||a||_1 + (mu/2)||a||^2 (``elastic_net``) against scikit-learn's
ElasticNet (its 1/(2n) scaling, signed and positive codes) and SPORCO's ElasticNet."""
import numpy as np
import pytest

import sparsejax as sj
from sparsejax.pursuit.elastic_net import elastic_net, elastic_net_objective, from_sklearn


def _problem(n=20, m=40, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    y = D[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.05 * rng.standard_normal(n)
    return D, y


@pytest.mark.parametrize("positive", [False, True])
def test_elastic_net_matches_sklearn(x64, positive):
    pytest.importorskip("sklearn")
    from sklearn.linear_model import ElasticNet

    D, y = _problem()
    alpha, l1_ratio = 0.01, 0.6
    ref = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, fit_intercept=False, positive=positive, tol=1e-12,
                     max_iter=100000).fit(D, y).coef_
    lam, mu = from_sklearn(alpha, l1_ratio, D.shape[0])
    sol = elastic_net(D, y, lam, mu, prox="nonneg_soft" if positive else "soft", tol=1e-10, max_iter=5000)
    assert bool(sol.converged)
    np.testing.assert_allclose(np.asarray(sol.codes), ref, atol=1e-7)
    assert float(sol.objective) <= float(elastic_net_objective(D, y, ref, lam, mu)) * (1 + 1e-10)
    assert (ref.min() >= 0) if positive else (ref.min() < 0)


def test_elastic_net_matches_sporco_float32_auto():
    """SPORCO's ElasticNet (float64 reference) against a float32 solve; lam="auto" is SPORCO's default lambda;
    mu = 0 is the Lasso; bad arguments are refused by name."""
    pytest.importorskip("sporco")
    from sporco.admm import bpdn as sbpdn

    D, y = _problem(seed=1)
    mu = 0.5
    opt = sbpdn.ElasticNet.Options({"Verbose": False, "MaxMainIter": 3000, "RelStopTol": 1e-10, "FastSolve": True})
    xs = sbpdn.ElasticNet(D, y[:, None].copy(), None, mu, opt).solve()[:, 0]     # lmbda=None: 0.1 max|D^T s|
    sol = elastic_net(D.astype(np.float32), y.astype(np.float32), "auto", mu, tol=1e-6, max_iter=3000)
    assert bool(sol.converged)
    np.testing.assert_allclose(np.asarray(sol.codes), xs, atol=1e-4)
    lasso = sj.fista(D.astype(np.float32), y.astype(np.float32), 0.1, tol=1e-6, max_iter=3000)
    en0 = elastic_net(D.astype(np.float32), y.astype(np.float32), 0.1, 0.0, tol=1e-6, max_iter=3000)
    np.testing.assert_allclose(np.asarray(en0.codes), np.asarray(lasso.codes), atol=1e-4)
    with pytest.raises(ValueError, match="mu must be >= 0"):
        elastic_net(D, y, 0.1, -1.0)
    with pytest.raises(ValueError, match="prox must be one of"):
        elastic_net(D, y, 0.1, 1.0, prox="hard")
    with pytest.raises(ValueError, match="l1_ratio"):
        from_sklearn(0.1, 1.5, 10)
