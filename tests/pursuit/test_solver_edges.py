"""Edges and defaults of the iterative Lasso solvers: a zero dictionary, the default stopping rule on ordinary data,
reverse-mode differentiation through mode="while", and the ADMMs' scale-aware penalty."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj

LASSO = {"ista": sj.ista, "fista": sj.fista,
         "fista_bt": lambda *a, **k: sj.fista(*a, backtracking=True, **k)}


# ------------------------------------------------------------------------------------------------
# a zero dictionary: L = ||D||^2 = 0, the solution is a = 0 (F(a) = 1/2||y||^2 + lam ||a||_1)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", sorted(LASSO))
def test_zero_dictionary_gives_zero_codes(method, dtype):
    y = jnp.asarray([1.0, -2.0, 0.5], dtype)
    D = jnp.zeros((3, 5), dtype)
    for x0 in (None, jnp.ones(5, dtype)):     # from a non-zero start the shrinkage still reaches 0
        sol = LASSO[method](D, y, 0.1, x0=x0, max_iter=200)
        assert np.all(np.asarray(sol.codes) == 0), sol.codes
        assert bool(sol.converged) and not bool(sol.diverged) and int(sol.status) == sj.solve.Status.CONVERGED
        assert float(sol.objective) == pytest.approx(0.5 * float(jnp.sum(y * y)), rel=1e-6)


# ------------------------------------------------------------------------------------------------
# the default stopping rule says "converged" when the objective is optimal (float32 and float64)
# ------------------------------------------------------------------------------------------------
def test_default_stop_reports_optimal_solutions_as_converged(dtype):
    # Gaussian signals (not sparse in D): FISTA's iterates keep moving (momentum) long after the objective has
    # settled; the old test on ||x_k - x_{k-1}|| / ||x_k|| left 2 of these 4 unconverged at max_iter = 1000
    D = sj.random_gaussian(jax.random.PRNGKey(0), 16, 48, dtype)
    Y = jax.random.normal(jax.random.PRNGKey(1), (4, 16), dtype)
    sols = jax.vmap(lambda y: sj.fista(D, y, 0.1))(Y)
    assert bool(jnp.all(sols.converged)) and int(jnp.max(sols.num_steps)) < 1000
    with jax.enable_x64(True):
        D64, Y64 = jnp.asarray(D, jnp.float64), jnp.asarray(Y, jnp.float64)
        ref = jax.vmap(lambda y: sj.fista(D64, y, 0.1, restart=True, tol=1e-12, max_iter=20000))(Y64)
        assert bool(jnp.all(ref.converged))
        rel = (np.asarray(sols.objective, np.float64) - np.asarray(ref.objective)) / np.asarray(ref.objective)
    assert np.max(rel) < 1e-6, rel
    # ISTA's test is the same residual (its relative change): it reports the solution it reaches as converged
    one = sj.ista(D, Y[0], 0.1, max_iter=20000)
    assert bool(one.converged) and float(one.objective) == pytest.approx(float(ref.objective[0]), rel=1e-5)


def test_stopping_measure_is_scale_free():
    # the residual ||T(z) - z|| / ||T(z)|| is invariant to scaling (y, lam) together and (D, lam) together
    D = sj.random_gaussian(jax.random.PRNGKey(0), 16, 48)
    y = jax.random.normal(jax.random.PRNGKey(1), (16,))
    base = sj.fista(D, y, 0.1)
    for c in (1e-3, 1e3):
        sol = sj.fista(D, c * y, 0.1 * c)
        assert bool(sol.converged) and abs(int(sol.num_steps) - int(base.num_steps)) <= 5
        np.testing.assert_allclose(sol.codes / c, base.codes, atol=1e-4)
        solD = sj.fista(c * D, y, 0.1 * c)           # the same problem in b = c a
        assert bool(solD.converged) and abs(int(solD.num_steps) - int(base.num_steps)) <= 5
        np.testing.assert_allclose(solD.codes * c, base.codes, atol=1e-4)


# ------------------------------------------------------------------------------------------------
# reverse mode through mode="while": a message naming the modes that work, forward mode still works
# ------------------------------------------------------------------------------------------------
def test_grad_through_while_mode_names_the_modes_that_work():
    D, y = jnp.eye(3), jnp.array([2.0, -1.0, 0.1])
    losses = [lambda lam: jnp.sum(sj.fista(D, y, lam).codes ** 2),
              lambda lam: sj.ista(D, y, lam).objective,
              lambda lam: jnp.sum(jax.vmap(lambda s: sj.fista(D, s, lam).codes)(jnp.stack([y, -y])))]
    for loss in losses:
        with pytest.raises(ValueError, match=r"mode='while'.*mode='implicit'.*mode='scan'.*mode='checkpoint'"):
            jax.grad(loss)(0.5)
    with pytest.raises(ValueError, match="mode='implicit'"):
        jax.jit(jax.grad(losses[0]))(0.5)
    # forward mode through the while loop is unchanged, and the reverse modes give the same derivative
    _, tangent = jax.jvp(lambda lam: sj.fista(D, y, lam).codes, (0.5,), (1.0,))
    np.testing.assert_allclose(tangent, [-1.0, 1.0, 0.0], atol=1e-5)
    for mode in sj.solve.REVERSE_MODES:
        g = jax.grad(lambda lam: jnp.sum(sj.fista(D, y, lam, mode=mode, max_iter=100).codes ** 2))(0.5)
        assert float(g) == pytest.approx(2 * (1.5 * -1.0 + -0.5 * 1.0), abs=1e-4)


# ------------------------------------------------------------------------------------------------
# the ADMMs: a scale-aware default penalty with residual balancing; lam = 0 converges
# ------------------------------------------------------------------------------------------------
def _sparse_problem(n=24, m=64):
    D = sj.random_gaussian(jax.random.PRNGKey(0), n, m)
    a = jnp.zeros(m).at[jnp.array([3, 20, 41])].set(jnp.array([1.0, -2.0, 1.5]))
    return D, D @ a + 0.05 * jax.random.normal(jax.random.PRNGKey(1), (n,))


def test_dense_admm_steps_do_not_depend_on_scale():
    D, y = _sparse_problem()
    base = sj.bpdn_admm(D, y, 0.1)
    assert bool(base.converged)
    # signals of any amplitude (lam in proportion) and unnormalised dictionaries (old rho = 1: 20,000+ steps at x10)
    for kw in (dict(D=D, y=1e3 * y, lam=1e2), dict(D=D, y=1e-3 * y, lam=1e-4), dict(D=10.0 * D, y=y, lam=1.0)):
        sol = sj.bpdn_admm(kw["D"], kw["y"], kw["lam"])
        assert bool(sol.converged) and abs(int(sol.num_steps) - int(base.num_steps)) <= 0.2 * int(base.num_steps) + 2
        ref = sj.fista(kw["D"], kw["y"], kw["lam"], restart=True, tol=1e-7, max_iter=20000)
        assert float(sol.objective) == pytest.approx(float(ref.objective), rel=1e-4)
    # a small signal at a fixed lam: balancing moves rho off its start (rho = 1 without it: 20,000+ steps)
    small = sj.bpdn_admm(D, 1e-3 * y, 0.1)
    assert bool(small.converged) and int(small.num_steps) < 500 and float(small.state.rho) != 1.0
    fixed = sj.bpdn_admm(D, 1e-3 * y, 0.1, auto_rho=False)
    assert int(fixed.num_steps) > 4 * int(small.num_steps)


@pytest.mark.parametrize("shape", [(24, 64), (24, 12)])
def test_admm_lam_zero_converges_to_least_squares(shape):
    D, y = _sparse_problem(*shape)
    sol = sj.bpdn_admm(D, y, 0.0)
    assert bool(sol.converged) and not bool(sol.diverged) and int(sol.num_steps) < 500
    lsq = np.linalg.lstsq(np.asarray(D, np.float64), np.asarray(y, np.float64), rcond=None)[0]
    best = 0.5 * np.sum((np.asarray(D, np.float64) @ lsq - np.asarray(y, np.float64)) ** 2)
    assert float(sol.objective) <= best + 1e-5 * float(jnp.sum(y * y))


def test_cbpdn_lam_zero_and_scaled_signals():
    f = sj.normalize_filters(jax.random.normal(jax.random.PRNGKey(0), (4, 1, 3, 3)))
    s = jax.random.normal(jax.random.PRNGKey(1), (1, 12, 12))
    zero = sj.cbpdn_admm(f, s, 0.0, max_iter=500)         # was reported diverged after 1 step
    assert bool(zero.converged) and not bool(zero.diverged)
    D = sj.Conv(f, (1, 12, 12))
    assert float(jnp.sum((D.apply(zero.codes) - s) ** 2)) < 1e-3 * float(jnp.sum(s * s))
    base = sj.cbpdn_admm(f, s, 0.1, max_iter=500)
    assert bool(base.converged)
    for c in (1e-3, 1e3):                                  # was 500+ steps, unconverged, at x 1e3
        sol = sj.cbpdn_admm(f, c * s, 0.1 * c, max_iter=500)
        assert bool(sol.converged) and abs(int(sol.num_steps) - int(base.num_steps)) <= 5
        np.testing.assert_allclose(sol.codes / c, base.codes, atol=1e-3)


def test_constrained_admm_steps_do_not_depend_on_amplitude():
    D, y = _sparse_problem()
    base = sj.bpdn_constrained_admm(D, y, 0.1, tol=1e-5)
    assert bool(base.converged)
    for c in (1e-3, 1e3):            # old rho = 1: neither converged in 20,000 steps (64 x 256)
        sol = sj.bpdn_constrained_admm(D, c * y, 0.1 * c, tol=1e-5)
        assert bool(sol.converged) and abs(int(sol.num_steps) - int(base.num_steps)) <= 5
        assert float(sol.objective) == pytest.approx(c * float(base.objective), rel=1e-3)
