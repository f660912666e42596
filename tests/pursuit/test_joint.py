"""Joint sparsity: ``bpdn_joint`` against SPORCO's BPDNJoint and scikit-learn's MultiTaskLasso, ``conv_bpdn_joint``
against SPORCO's ConvBPDNJoint at equal objective, non-negative codes by the prox-gradient fixed point."""
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax import shrink
from sparsejax.pursuit.csc import cbpdn_objective
from sparsejax.pursuit.joint import bpdn_joint, conv_bpdn_joint, joint_objective


def _joint_problem(n=16, m=24, B=4, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    X = np.zeros((B, m))
    X[:, rng.choice(m, 4, replace=False)] = rng.standard_normal((B, 4))
    return D, X @ D.T + 0.05 * rng.standard_normal((B, n))


def test_bpdn_joint_matches_sporco_and_multitask_lasso(x64):
    pytest.importorskip("sporco")
    pytest.importorskip("sklearn")
    from sklearn.linear_model import MultiTaskLasso
    from sporco.admm import bpdn as sbpdn

    D, Y = _joint_problem()
    lam, mu = 0.05, 0.3
    sol = bpdn_joint(D, Y, lam, mu, tol=1e-10, max_iter=5000)
    assert bool(sol.converged)
    opt = sbpdn.BPDNJoint.Options({"Verbose": False, "MaxMainIter": 3000, "RelStopTol": 1e-10,
                                      "FastSolve": True})
    Xs = sbpdn.BPDNJoint(D, Y.T.copy(), lam, mu, opt).solve().T           # SPORCO: signals as columns
    f_s = float(joint_objective(D, Y, Xs, lam, mu))
    assert float(sol.objective) <= f_s * (1 + 1e-9)
    np.testing.assert_allclose(np.asarray(sol.codes), Xs, atol=1e-6)
    assert 0 < np.sum(np.any(Xs != 0, axis=0)) < D.shape[1]           # a joint support, not all or nothing

    # MultiTaskLasso: 1/(2n) ||Y^T - D W||^2 + alpha ||W||_21  ->  lam = 0, mu = n alpha
    alpha = 0.02
    mt = MultiTaskLasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100000).fit(D, Y.T)
    sol = bpdn_joint(D, Y, 0.0, D.shape[0] * alpha, tol=1e-10, max_iter=5000)
    np.testing.assert_allclose(np.asarray(sol.codes), mt.coef_, atol=1e-6)
    rows = np.any(np.asarray(sol.codes) != 0, axis=0)
    assert np.all(np.all(np.asarray(sol.codes)[:, rows] != 0, axis=0))   # a kept atom is used by every signal


def test_bpdn_joint_nonneg_float32_auto():
    """Non-negative codes: the fixed point of the prox-gradient map X = joint_soft+(X + (Y - X D^T) D / L) (the
    optimality condition), in float32; lam="auto" is 0.1 max|D^T Y| over the batch."""
    D, Y = _joint_problem(seed=1)
    D, Y = D.astype(np.float32), Y.astype(np.float32)
    mu = 0.2
    sol = bpdn_joint(D, Y, "auto", mu, prox="nonneg_soft", tol=1e-6, max_iter=3000)
    X = np.asarray(sol.codes)
    assert bool(sol.converged) and X.min() >= 0 and X.max() > 0
    lam = 0.1 * np.max(np.abs(Y @ D))
    L = np.linalg.norm(D, 2) ** 2
    T = np.asarray(shrink.joint_soft(jnp.asarray(X + (Y - X @ D.T) @ D / L), lam / L, mu / L, axis=0, nonneg=True))
    assert np.linalg.norm(T - X) <= 1e-4 * np.linalg.norm(X)
    with pytest.raises(ValueError, match="mu must be >= 0"):
        bpdn_joint(D, Y, 0.1, -1.0)
    with pytest.raises(ValueError, match=r"Y must have shape \(B, 16\)"):
        bpdn_joint(D, Y[:, :5], 0.1, 0.1)


def test_conv_bpdn_joint_matches_sporco(x64):
    pytest.importorskip("sporco")
    from sporco.admm import cbpdn as scbpdn

    rng = np.random.default_rng(0)
    M, C, N, k = 3, 3, 12, 3
    f = rng.standard_normal((M, 1, k, k))
    f /= np.linalg.norm(f.reshape(M, -1), axis=1)[:, None, None, None]
    s = rng.standard_normal((C, N, N))
    lam, mu = 0.05, 0.2
    sol = conv_bpdn_joint(f, s, lam, mu, tol=1e-6, max_iter=1000)
    assert bool(sol.converged) and sol.codes.shape == (C, M, N, N)
    opt = scbpdn.ConvBPDNJoint.Options({"Verbose": False, "MaxMainIter": 1000, "RelStopTol": 1e-6,
                                           "FastSolve": True})
    X = scbpdn.ConvBPDNJoint(np.transpose(f[:, 0], (1, 2, 0)), np.transpose(s, (1, 2, 0)), lam, mu, opt,
                             dimK=0).solve()                           # (N, N, C, 1, M)
    Xs = np.transpose(X[:, :, :, 0, :], (2, 3, 0, 1))                  # (C, M, N, N)
    f_s = float(cbpdn_objective(jnp.asarray(f), jnp.asarray(s)[:, None], jnp.asarray(Xs), lam, mu=mu))
    f_o = float(sol.objective)
    assert abs(f_o - f_s) <= 1e-6 * f_s
    np.testing.assert_allclose(np.asarray(sol.codes), Xs, atol=1e-4)
    assert np.any(Xs != 0) and np.any(Xs == 0)
    with pytest.raises(ValueError, match="single-channel filters"):
        conv_bpdn_joint(np.ones((2, 3, 3, 3)), s, lam, mu)
