"""The l1-ball constrained form min 1/2||y - D a||^2 s.t. ||a||_1 <= gamma (``bpdn_proj_l1``) against SPORCO's
BPDNProjL1, the penalised Lasso it equals for gamma = ||a*_lam||_1, and non-negative codes against scipy's SLSQP."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax.pursuit.l1ball import bpdn_proj_l1


def _problem(n=16, m=32, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    y = D[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.05 * rng.standard_normal(n)
    return D, y


def test_bpdn_proj_l1_matches_sporco_and_lasso(x64):
    pytest.importorskip("sporco")
    from sporco.admm import bpdn as sbpdn

    D, y = _problem()
    gamma = 1.5
    sol = bpdn_proj_l1(D, y, gamma, tol=1e-10, max_iter=5000)
    assert bool(sol.converged)
    opt = sbpdn.BPDNProjL1.Options({"Verbose": False, "MaxMainIter": 3000, "RelStopTol": 1e-10, "FastSolve": True})
    xs = sbpdn.BPDNProjL1(D, y[:, None].copy(), gamma, opt).solve()[:, 0]
    f_s = 0.5 * np.sum((D @ xs - y) ** 2)
    assert float(sol.objective) <= f_s * (1 + 1e-9)
    np.testing.assert_allclose(np.asarray(sol.codes), xs, atol=1e-6)
    assert np.abs(np.asarray(sol.codes)).sum() <= gamma * (1 + 1e-12)
    # the penalised Lasso at lam has the same solution with gamma = ||a*_lam||_1
    lasso = sj.fista(D, y, 0.2, tol=1e-12, max_iter=5000)
    ball = bpdn_proj_l1(D, y, float(jnp.sum(jnp.abs(lasso.codes))), tol=1e-12, max_iter=5000)
    np.testing.assert_allclose(np.asarray(ball.codes), np.asarray(lasso.codes), atol=1e-6)


def test_bpdn_proj_l1_nonneg_float32_batch():
    """Non-negative codes (float32, a vmapped batch) against scipy's SLSQP on {a >= 0, sum(a) <= gamma}; gamma
    above the least-squares solution's l1 norm leaves the constraint inactive; a negative gamma is refused."""
    from scipy.optimize import minimize

    D, y = _problem(seed=1)
    D32, Y32 = D.astype(np.float32), np.stack([y, -y, 2 * y]).astype(np.float32)
    gamma = 1.2
    sols = jax.vmap(lambda s: bpdn_proj_l1(D32, s, gamma, prox="nonneg_soft", tol=1e-6, max_iter=3000))(Y32)
    assert bool(jnp.all(sols.converged))
    m = D.shape[1]
    for s, a in zip(Y32.astype(np.float64), np.asarray(sols.codes)):
        ref = minimize(lambda v, s=s: 0.5 * np.sum((D @ v - s) ** 2), np.zeros(m),
                       jac=lambda v, s=s: D.T @ (D @ v - s),
                       method="SLSQP", bounds=[(0, None)] * m,
                       constraints=[{"type": "ineq", "fun": lambda v: gamma - v.sum(), "jac": lambda v: -np.ones(m)}],
                       options={"ftol": 1e-12, "maxiter": 1000}).x
        f_ref = 0.5 * np.sum((D @ ref - s) ** 2)
        f = 0.5 * np.sum((D @ a - s) ** 2)
        assert a.min() >= 0 and a.sum() <= gamma * (1 + 1e-6)
        assert f <= f_ref + 1e-4 * max(f_ref, 1.0)
    # a tall D and a large gamma: the least-squares solution
    Dt = D[:, :6].astype(np.float32)
    ls = np.linalg.lstsq(Dt, y, rcond=None)[0]
    sol = bpdn_proj_l1(Dt, y.astype(np.float32), 10 * np.abs(ls).sum(), tol=1e-7, max_iter=3000)
    np.testing.assert_allclose(np.asarray(sol.codes), ls, atol=1e-4)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        bpdn_proj_l1(D32, Y32[0], -1.0)
