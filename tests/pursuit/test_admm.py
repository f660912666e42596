"""ADMM for BPDN and constrained BP (Boyd et al. 2011): optimality, constraints, vmap/jit, errors, retracing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.operators import Adjoint, Dense
from sparsejax.pursuit.admm import _bpdn_admm, bpdn_admm, bpdn_constrained_admm
from sparsejax.pursuit.lasso_batch import lasso_batch


def make(n=20, m=40, k=3, seed=0, noise=0.05, dtype=np.float64):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    a = np.zeros(m)
    a[rng.choice(m, k, replace=False)] = rng.standard_normal(k) + np.sign(rng.standard_normal(k))
    y = D @ a + noise * rng.standard_normal(n)
    return D.astype(dtype), y.astype(dtype)


def _prox(nonneg):
    return "nonneg_soft" if nonneg else "soft"


def kkt_violation(D, y, a, lam, nonneg=False):
    g = D.T @ (y - D @ a)
    on = np.abs(a) > 0
    if nonneg:
        assert np.all(a >= 0)
        return max(np.max(g[~on] - lam, initial=0.0), np.max(np.abs(g[on] - lam), initial=0.0)) / lam
    return max(np.max(np.abs(g[~on]) - lam, initial=0.0),
               np.max(np.abs(g[on] - lam * np.sign(a[on])), initial=0.0)) / lam


@pytest.mark.parametrize("nonneg", [False, True])
def test_bpdn_kkt(dtype, nonneg):
    D, y = make(dtype=dtype)
    lam = 0.1
    tol = 1e-10 if dtype == np.float64 else 1e-5
    sol = bpdn_admm(D, y, lam, tol=tol, max_iter=20000, prox=_prox(nonneg))
    assert bool(sol.converged) and not bool(sol.diverged)
    assert sol.codes.dtype == dtype
    a = np.asarray(sol.codes, np.float64)
    assert kkt_violation(D.astype(np.float64), y.astype(np.float64), a, lam, nonneg) < (1e-6 if dtype == np.float64 else 2e-2)
    st = sol.state
    assert float(st.primal_res) >= 0 and float(st.dual_res) >= 0
    assert float(sol.error) <= tol


def test_bpdn_cg_operator_matches_dense(x64):
    D, y = make()
    op = Adjoint(Dense(D.T))  # no .atoms: the conjugate-gradient x-update
    a1 = bpdn_admm(D, y, 0.1, tol=1e-10, max_iter=5000).codes
    a2 = bpdn_admm(op, y, 0.1, tol=1e-10, max_iter=5000, cg_iter=40).codes
    np.testing.assert_allclose(a1, a2, atol=1e-7)


@pytest.mark.slow  # ~20-40 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_bpdn_wide_and_tall_factorisations_agree(x64):
    for (n, m) in [(20, 40), (40, 20)]:
        D, y = make(n=n, m=m)
        ref = lasso_batch(D, y[None], 0.05, tol=1e-13).objective[0]
        sol = bpdn_admm(D, y, 0.05, tol=1e-11, max_iter=20000)
        assert abs(float(sol.objective) - float(ref)) <= 1e-9 * float(ref)


@pytest.mark.slow  # 12-30 s on 2 cores: kept out of CI (python -m pytest -m slow)
@pytest.mark.parametrize("nonneg", [False, True])
def test_constrained_feasible_and_optimal(x64, nonneg):
    D, y = make(noise=0.05)
    eps = 0.05 * np.sqrt(D.shape[0])
    sol = bpdn_constrained_admm(D, y, eps, rho=3.0, tol=1e-9, max_iter=50000, prox=_prox(nonneg))
    assert bool(sol.converged)
    z = np.asarray(sol.codes)
    assert np.linalg.norm(D @ z - y) <= eps * (1 + 1e-3)
    assert float(sol.state.violation) <= eps * 1e-3
    # Lasso path argument: z solves the Lasso at lam* = ||D^T(y - D z)||_inf with residual eps
    g = D.T @ (y - D @ z)
    lam_star = float(np.max(g) if nonneg else np.max(np.abs(g)))
    ref = np.asarray(lasso_batch(D, y[None], lam_star, tol=1e-13, prox=_prox(nonneg)).codes[0])
    assert abs(np.abs(z).sum() - np.abs(ref).sum()) <= 1e-5 * np.abs(ref).sum()
    assert abs(float(sol.objective) - np.abs(z).sum()) < 1e-12
    if nonneg:
        assert np.all(z >= 0)


def test_constrained_eps_zero_is_basis_pursuit(x64):
    D, y = make(noise=0.0)
    sol = bpdn_constrained_admm(D, y, 0.0, rho=3.0, tol=1e-10, max_iter=50000)
    assert np.linalg.norm(D @ np.asarray(sol.codes) - y) <= 1e-5 * np.linalg.norm(y)


def test_vmap_per_instance_convergence():
    D, _ = make(dtype=np.float32)
    Ys = np.stack([make(dtype=np.float32, seed=s)[1] for s in range(3)])
    lams = jnp.asarray([0.01, 0.1, 0.5], jnp.float32)
    f = jax.jit(jax.vmap(lambda y, lam: bpdn_admm(D, y, lam, tol=1e-5, max_iter=5000)))
    sol = f(jnp.asarray(Ys), lams)
    assert sol.codes.shape == (3, 40)
    assert bool(jnp.all(sol.converged))
    assert len(set(np.asarray(sol.num_steps).tolist())) > 1  # each instance stops on its own
    for i in range(3):
        single = bpdn_admm(D, Ys[i], lams[i], tol=1e-5, max_iter=5000)
        # float32 rounding differs between batched and single mat-vecs: same count up to a few steps
        assert abs(int(single.num_steps) - int(sol.num_steps[i])) <= 0.05 * int(single.num_steps) + 2


def test_nonconvergence_reported():
    D, y = make(dtype=np.float32)
    sol = bpdn_admm(D, y, 0.1, max_iter=2, tol=1e-8)
    assert not bool(sol.converged) and int(sol.num_steps) == 2
    sol = bpdn_constrained_admm(D, y, 0.1, max_iter=2, tol=1e-8)
    assert not bool(sol.converged)


def test_scan_mode_differentiable():
    D, y = make(dtype=np.float32)
    g = jax.grad(lambda lam: jnp.sum(bpdn_admm(D, y, lam, max_iter=20, mode="scan").codes ** 2))(0.1)
    assert np.isfinite(float(g))


def test_bad_inputs():
    D, y = make(dtype=np.float32)
    with pytest.raises(ValueError, match="lam"):
        bpdn_admm(D, y, -1.0)
    with pytest.raises(ValueError, match="rho"):
        bpdn_admm(D, y, 0.1, rho=0.0)
    with pytest.raises(ValueError, match="y"):
        bpdn_admm(D, y[:5], 0.1)
    with pytest.raises(TypeError, match="y"):
        bpdn_admm(D, np.ones(20, int), 0.1)
    with pytest.raises(ValueError, match="mode"):
        bpdn_admm(D, y, 0.1, mode="for")
    with pytest.raises(ValueError, match="eps"):
        bpdn_constrained_admm(D, y, -0.1)
    with pytest.raises(ValueError, match="eps"):
        bpdn_constrained_admm(D, y, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="max_iter"):
        bpdn_admm(D, y, 0.1, max_iter=-1)


def test_no_retrace():
    D, y = make(dtype=np.float32)
    bpdn_admm(D, y, 0.1, rho=1.0, max_iter=50)
    n0 = _bpdn_admm._cache_size()
    bpdn_admm(D * 1.5, y + 1.0, 0.3, rho=2.0, max_iter=50)
    bpdn_admm(D, -y, jnp.float32(0.05), rho=jnp.float32(0.5), max_iter=50)
    assert _bpdn_admm._cache_size() == n0
