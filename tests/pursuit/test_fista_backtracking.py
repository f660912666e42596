"""FISTA's adaptive backtracking (Scheinberg, Goldfarb & Bai, Found. Comput. Math. 2014): L may fall as well as
rise. A start 1000x too large costs Beck-Teboulle's rule (L only grows) thousands of iterations; the adaptive rule
reaches the same solution in a small fraction of them, and keeps FISTA's certificate
F(x_k) - F* <= L_k ||x_0 - x*||^2 / (2 t_k^2) at every step. Also: lam="auto" (SPORCO's 0.1 max|D^T y|)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax.pursuit.ista import fista_prox_solver
from sparsejax.pursuit.lam import default_lam


def _problem(dtype, n=32, m=64, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    x = np.zeros(m)
    x[rng.choice(m, 5, replace=False)] = rng.standard_normal(5)
    y = D @ x + 0.01 * rng.standard_normal(n)
    return D.astype(dtype), y.astype(dtype), float(np.linalg.norm(D, 2) ** 2)


def test_adaptive_backtracking_lowers_L():
    """Started at 1000 ||D||^2 (float32): the old rule needs > 1,000 iterations, the adaptive one < 1/5 of that, to
    the same solution (that of FISTA with the true L). float64: the certificate test below."""
    dtype = np.float32
    D, y, L = _problem(dtype)
    lam, tol = 0.05, 1e-6
    ref = sj.fista(D, y, lam, max_iter=5000, tol=1e-7)
    old = sj.fista(D, y, lam, L=1000 * L, backtracking=True, max_iter=5000, tol=tol)
    new = sj.fista(D, y, lam, L=1000 * L, backtracking="adaptive", max_iter=5000, tol=tol)
    assert bool(new.converged) and sj.solve.status_name(new.status) == "converged"
    assert int(old.num_steps) > 1000
    assert int(new.num_steps) < int(old.num_steps) / 5
    assert float(new.state.L) < 2 * L                       # L came down to the curvature's scale
    f_ref = float(ref.objective)
    assert abs(float(new.objective) - f_ref) <= 1e-5 * f_ref
    np.testing.assert_allclose(np.asarray(new.codes), np.asarray(ref.codes), atol=1e-3)


def test_adaptive_backtracking_keeps_fista_certificate(x64):
    """Each step's (x_k, t_k, L_k) satisfies 2 t_k^2 / L_k (F(x_k) - F*) <= ||x_0 - x*||^2 (the bound of the proof,
    which holds for L rising and falling), along a run that starts at 1000 L, with and without restart-free momentum;
    L both fell and rose."""
    D, y, L = _problem(np.float64)
    lam = 0.05
    op = sj.Dense(jnp.asarray(D))
    yj = jnp.asarray(y)
    star = sj.fista(D, y, lam, max_iter=20000, tol=1e-13)
    f_star, x_star = float(star.objective), np.asarray(star.codes)
    solver = fista_prox_solver(op, yj, lambda v, Lk: sj.shrink.soft(v, lam / Lk), lambda a: lam * jnp.sum(jnp.abs(a)),
                               1000 * L, jnp.zeros(D.shape[1]), backtracking="adaptive")

    @jax.jit
    def run():
        def body(s, _):
            s = solver.step(s)
            return s, (solver.objective(s), s.t, s.L)
        return jax.lax.scan(body, solver.init(), None, length=400)[1]

    F, t, Ls = (np.asarray(v) for v in run())
    bound = np.sum(x_star ** 2)                                # x_0 = 0
    assert np.all(2 * t ** 2 / Ls * (F - f_star) <= bound * (1 + 1e-9) + 1e-12)
    dL = np.diff(Ls)
    assert np.any(dL < 0) and np.any(dL > 0)
    assert F[-1] - f_star <= 1e-10 * f_star


def test_adaptive_with_restart_and_validation():
    D, y, _ = _problem(np.float32, seed=1)
    a = sj.fista(D, y, 0.1, backtracking="adaptive", restart=True, max_iter=3000, tol=1e-6)
    b = sj.fista(D, y, 0.1, max_iter=3000, tol=1e-6)
    assert bool(a.converged)
    assert abs(float(a.objective) - float(b.objective)) <= 1e-5 * float(b.objective)
    with pytest.raises(ValueError, match="backtracking must be one of"):
        sj.fista(D, y, 0.1, backtracking="yes")


def test_lam_auto_is_sporco_default(x64):
    """lam="auto" is 0.1 max|D^T y| (SPORCO's BPDN default) in fista (ista, bpdn_admm and elastic_net resolve it by
    the same ``resolve_lam``; elastic_net's is checked against SPORCO in test_elastic_net); default_lam takes a batch
    (max over it, SPORCO's rule over the columns of S); any other string is refused naming lam."""
    D, y, _ = _problem(np.float64, n=16, m=24)
    lam = 0.1 * np.max(np.abs(D.T @ y))
    assert float(default_lam(D, y)) == pytest.approx(lam, rel=1e-12)
    Y = np.stack([y, 3 * y])
    assert float(default_lam(D, Y)) == pytest.approx(3 * lam, rel=1e-12)
    ref = sj.fista(D, y, lam, tol=1e-10, max_iter=5000)
    sol = sj.fista(D, y, "auto", tol=1e-10, max_iter=5000)
    np.testing.assert_allclose(np.asarray(sol.codes), np.asarray(ref.codes), atol=1e-9)
    with pytest.raises(ValueError, match="lam must be"):
        sj.fista(D, y, "max")
