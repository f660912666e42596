"""ISTA / FISTA and the iteration driver: optimality, options, vmap, grad, traces, errors, divergence."""
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj


def problem(key, n=30, m=60, k=4, noise=0.01, dtype=np.float32):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    D = sj.random_gaussian(k1, n, m, dtype)
    idx = jax.random.choice(k2, m, (k,), replace=False)
    a = jnp.zeros(m, dtype).at[idx].set(jax.random.normal(k3, (k,), dtype) + jnp.sign(jax.random.normal(k3, (k,), dtype)))
    y = D @ a + noise * jax.random.normal(k4, (n,), dtype)
    return D, y, a


def kkt_violation(D, y, a, lam, nonneg=False):
    """Lasso optimality: D^T(y - Da) = lam sign(a) on the support, |.| <= lam off it (>= 0 part for nonneg)."""
    c = np.asarray(D.T @ (y - D @ a), np.float64)
    a = np.asarray(a, np.float64)
    on = np.abs(a) > 0
    v_on = np.abs(c[on] - lam * np.sign(a[on])) if not nonneg else np.abs(c[on] - lam)
    v_off = np.maximum(np.abs(c[~on]) - lam, 0) if not nonneg else np.maximum(c[~on] - lam, 0)
    return max(v_on.max(initial=0), v_off.max(initial=0))


@pytest.mark.parametrize("method", ["ista", "fista", "fista_bt", "fista_restart"])
def test_solution_meets_kkt(method, dtype, key):
    D, y, _ = problem(key, dtype=dtype)
    lam = 0.1
    kw = dict(tol=1e-7 if dtype == np.float32 else 1e-12, max_iter=20000)
    f = {"ista": sj.ista, "fista": sj.fista,
         "fista_bt": lambda *a, **k: sj.fista(*a, backtracking=True, **k),
         "fista_restart": lambda *a, **k: sj.fista(*a, restart=True, **k)}[method]
    sol = f(D, y, lam, **kw)
    assert bool(sol.converged) and not bool(sol.diverged)
    assert sol.codes.dtype == dtype
    assert kkt_violation(D, y, sol.codes, lam) < (2e-4 if dtype == np.float32 else 1e-8)
    assert float(sol.objective) == pytest.approx(float(sj.lasso_objective(D, y, sol.codes, lam)), rel=1e-6)


def test_nonneg_and_per_atom_weights(key):
    D, y, _ = problem(key)
    sol = sj.fista(D, y, 0.05, prox="nonneg_soft", tol=1e-7, max_iter=20000)
    assert float(jnp.min(sol.codes)) >= 0
    assert kkt_violation(D, y, sol.codes, 0.05, nonneg=True) < 2e-4
    # per-atom weights: an infinite-ish weight on atom 0 keeps it at zero
    w = jnp.full((60,), 0.05).at[0].set(1e3)
    sol_w = sj.fista(D, y + 5 * D[:, 0], w, tol=1e-7, max_iter=20000)
    assert float(sol_w.codes[0]) == 0.0


def test_backtracking_finds_a_valid_L(key):
    D, y, _ = problem(key)
    L = float(sj.Dense(D).lipschitz())
    sol = sj.fista(D, y, 0.1, backtracking=True, max_iter=50, tol=0.0)
    assert float(sol.state.L) >= 1.0 and float(sol.state.L) <= 2 * L * 1.0001


def test_vmap_per_instance_convergence(key):
    D, _, _ = problem(key)
    Y = jax.random.normal(jax.random.PRNGKey(3), (6, 30))
    Y = Y.at[0].set(0.0)  # the zero signal converges in one step
    sols = jax.vmap(lambda y: sj.fista(D, y, 0.1, tol=1e-5, max_iter=5000))(Y)
    assert bool(jnp.all(sols.converged))
    steps = np.asarray(sols.num_steps)
    assert steps[0] == 1 and len(set(steps.tolist())) > 1
    for i in range(6):  # batched result equals the single solve
        one = sj.fista(D, Y[i], 0.1, tol=1e-5, max_iter=5000)
        assert int(one.num_steps) == steps[i]
        # both stop at a relative optimality residual of 1e-5: equal to that accuracy (matmul vs matvec rounding)
        diff = np.linalg.norm(np.asarray(sols.codes[i]) - np.asarray(one.codes))
        assert diff <= 10 * 1e-5 * max(np.linalg.norm(np.asarray(one.codes)), 1e-30)


def test_no_retrace_when_values_change(key):
    ista_mod = importlib.import_module("sparsejax.pursuit.ista")

    D, y, _ = problem(key)
    sj.fista(D, y, 0.1, max_iter=30)
    before = ista_mod._fista._cache_size()
    sj.fista(D * 1.1, y + 1.0, 0.2, max_iter=30)
    sj.fista(D, y, jnp.float32(0.3), max_iter=30, tol=1e-3)
    assert ista_mod._fista._cache_size() == before

    count = 0

    @jax.jit
    def user_fn(D, y, lam):
        nonlocal count
        count += 1
        return sj.ista(D, y, lam, max_iter=20).codes

    user_fn(D, y, 0.1)
    user_fn(D + 0.01, y * 2, 0.5)
    assert count == 1


def test_scan_mode_is_differentiable_and_matches_finite_differences(x64, key):
    D, y, _ = problem(key, dtype=np.float64)

    def loss(lam):
        return jnp.sum(sj.fista(D, y, lam, max_iter=200, mode="scan", tol=0.0).codes ** 2)

    g = jax.grad(loss)(0.1)
    h = 1e-6
    fd = (loss(0.1 + h) - loss(0.1 - h)) / (2 * h)
    assert float(g) == pytest.approx(float(fd), rel=1e-4)

    def loss_D(D):
        return jnp.sum((D @ sj.ista(D, y, 0.1, max_iter=50, mode="scan").codes - y) ** 2)

    gD = jax.grad(loss_D)(D)
    E = jax.random.normal(jax.random.PRNGKey(9), D.shape, D.dtype)
    fdD = (loss_D(D + h * E) - loss_D(D - h * E)) / (2 * h)
    assert float(jnp.sum(gD * E)) == pytest.approx(float(fdD), rel=1e-4)


def test_history_is_monotone_for_ista(key):
    D, y, _ = problem(key)
    sol = sj.ista(D, y, 0.1, max_iter=100, mode="scan", history=True)
    h = np.asarray(sol.history)
    assert h.shape == (100,) and np.all(np.diff(h) <= 1e-5 * h[0])


def test_divergence_is_reported_not_hidden(key):
    D, y, _ = problem(key)
    L = float(sj.Dense(D).lipschitz())
    sol = sj.ista(D, y, 0.1, step=5.0 / L, max_iter=400)
    assert not bool(sol.converged) and bool(sol.diverged)
    sol = sj.fista(D, y, 0.1, step=5.0 / L, max_iter=400, mode="scan")
    assert not bool(sol.converged) and bool(sol.diverged)
    # too few iterations: not converged, not diverged
    sol = sj.fista(D, y, 0.1, max_iter=3, tol=1e-10)
    assert not bool(sol.converged) and not bool(sol.diverged) and int(sol.num_steps) == 3


def test_bad_inputs_raise_before_tracing(key):
    D, y, _ = problem(key)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        sj.fista(D, y, -0.1)
    with pytest.raises(ValueError, match="y must have"):
        sj.fista(D, y[:-1], 0.1)
    with pytest.raises(TypeError, match="y must be a real floating"):
        sj.ista(D, np.ones(30, np.int64), 0.1)
    with pytest.raises(ValueError, match="y contains NaN"):
        sj.fista(D, y.at[0].set(jnp.nan), 0.1)
    with pytest.raises(ValueError, match="D contains NaN"):
        sj.fista(D.at[0, 0].set(jnp.inf), y, 0.1)
    with pytest.raises(ValueError, match="lam of shape"):
        sj.fista(D, y, jnp.ones(7))
    with pytest.raises(ValueError, match="mode"):
        sj.fista(D, y, 0.1, mode="for")
    with pytest.raises(ValueError, match="step must be > 0"):
        sj.ista(D, y, 0.1, step=0.0)
    with pytest.raises(ValueError, match="x0 must have shape"):
        sj.ista(D, y, 0.1, x0=jnp.zeros(5))
    with pytest.raises(ValueError, match="history=True needs mode='scan'"):
        sj.ista(D, y, 0.1, history=True)


def test_fista_implicit_gradient_through_the_prox_grad_map(x64):
    """mode="implicit" differentiates at the fixed point of ISTA's map: it works with backtracking (whose step holds
    a while loop) and equals the unrolled gradient of a long run."""
    D = sj.random_gaussian(jax.random.PRNGKey(3), 8, 12)
    y = jax.random.normal(jax.random.PRNGKey(4), (8,))

    def loss(y, mode, **kw):
        return jnp.sum(sj.fista(D, y, 0.1, mode=mode, tol=1e-13, **kw).codes ** 2)

    g_scan = jax.grad(loss)(y, "scan", max_iter=3000)
    for backtracking in (False, True):
        g_imp = jax.grad(loss)(y, "implicit", max_iter=3000, backtracking=backtracking)
        np.testing.assert_allclose(g_imp, g_scan, rtol=1e-6, atol=1e-9)
