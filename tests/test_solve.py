"""The iteration driver: per-instance stopping under vmap, fixed-length modes, divergence and status codes, the
iteration check, and the four differentiation modes (scan == checkpoint == implicit on ISTA and FISTA, float64)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax import shrink
from sparsejax.dictionary import normalize_atoms
from sparsejax.operators import Dense
from sparsejax.pursuit.ista import fista_solver, ista_solver
from sparsejax.solve import (MODES, STATUS_NAMES, Solver, Status, check_iteration, iterate, relative_change,
                             status_name, stop_status)


def _relax(rate, target=1.0):
    """x <- rate x + (1 - rate) target from 0: converges to ``target``, slower for ``rate`` nearer 1."""
    return Solver(init=lambda: jnp.zeros(()), step=lambda x: rate * x + (1.0 - rate) * target,
                  codes=lambda x: x, error=relative_change, objective=lambda x: (x - target) ** 2)


# -- loops --------------------------------------------------------------------------------------------

def test_while_mode_stops_each_vmapped_instance_on_its_own():
    rates = jnp.array([0.1, 0.5, 0.9])
    run = jax.jit(jax.vmap(lambda r: iterate(_relax(r), max_iter=500, tol=1e-6)))
    sol = run(rates)
    steps = [int(s) for s in sol.num_steps]
    assert len(set(steps)) == 3 and steps == sorted(steps) and steps[-1] < 500, steps
    for i, r in enumerate(rates):   # each instance is exactly its own unbatched run: its state froze when it stopped
        alone = iterate(_relax(r), max_iter=500, tol=1e-6)
        assert int(alone.num_steps) == steps[i]
        np.testing.assert_array_equal(sol.codes[i], alone.codes)
    assert np.all(np.asarray(sol.converged)) and np.all(np.asarray(sol.error) <= 1e-6)
    assert np.all(np.asarray(sol.status) == Status.CONVERGED)


@pytest.mark.parametrize("mode", ["scan", "checkpoint"])
def test_fixed_length_modes_run_exactly_max_iter(mode):
    sol = iterate(_relax(0.1), max_iter=40, tol=1e-3, mode=mode, history=True)
    assert int(sol.num_steps) == 40
    assert sol.history.shape == (40,)
    np.testing.assert_allclose(sol.history[:3], [1e-2, 1e-4, 1e-6], rtol=1e-3)  # (x_k - 1)^2 = 0.01^k
    assert float(sol.history[-1]) < 1e-12
    assert bool(sol.converged) and int(sol.status) == Status.CONVERGED
    early = iterate(_relax(0.1), max_iter=40, tol=1e-3, mode="while")
    assert int(early.num_steps) < 40


def test_checkpoint_mode_equals_scan():
    a, b = (iterate(_relax(0.7), max_iter=25, tol=0.0, mode=m, history=True) for m in ("scan", "checkpoint"))
    for x, y in zip(a[:6] + a[7:], b[:6] + b[7:]):  # every field but the state
        np.testing.assert_array_equal(x, y)


def test_divergence_is_flagged():
    blowup = Solver(init=lambda: jnp.ones(3), step=lambda x: 3.0 * x, codes=lambda x: x, error=relative_change,
                    objective=lambda x: jnp.sum(x * x))
    sol = iterate(blowup, max_iter=20, tol=1e-6)
    assert bool(sol.diverged) and not bool(sol.converged) and int(sol.status) == Status.DIVERGED
    overflow = Solver(init=lambda: jnp.ones(()), step=lambda x: x * 1e30, codes=lambda x: x, error=relative_change)
    sol = iterate(overflow, max_iter=5, tol=0.0, mode="scan")
    assert bool(sol.diverged) and not bool(jnp.isfinite(sol.codes)) and int(sol.status) == Status.DIVERGED


def test_status_codes():
    assert STATUS_NAMES == ("converged", "max_steps", "diverged", "nonfinite_input")
    assert [Status.CONVERGED, Status.MAX_STEPS, Status.DIVERGED, Status.NONFINITE_INPUT] == [0, 1, 2, 3]
    assert int(iterate(_relax(0.5), max_iter=200, tol=1e-6).status) == Status.CONVERGED
    slow = iterate(_relax(0.99), max_iter=10, tol=1e-6)
    assert status_name(slow.status) == "max_steps" and not bool(slow.converged) and int(slow.num_steps) == 10
    nan_target = iterate(_relax(0.5, target=jnp.nan), max_iter=10, tol=1e-6)
    assert status_name(nan_target.status) == "nonfinite_input" and bool(nan_target.diverged)
    # per instance under vmap
    targets = jnp.array([1.0, jnp.inf, 2.0])
    sol = jax.vmap(lambda t: iterate(_relax(0.5, t), max_iter=100, tol=1e-6))(targets)
    assert [status_name(s) for s in sol.status] == ["converged", "nonfinite_input", "converged"]
    # precedence: non-finite input, then divergence, then convergence
    codes = stop_status(jnp.array([True, True, False, True]), jnp.array([False, True, False, True]),
                        jnp.array([False, False, False, True]))
    assert codes.dtype == jnp.int32 and codes.tolist() == [0, 2, 1, 3]


def test_check_iteration_errors_name_the_argument():
    assert MODES == ("while", "scan", "checkpoint", "implicit")
    for mode in MODES:
        assert check_iteration(10, 1e-6, mode) == 10
    assert check_iteration(np.int64(3)) == 3
    for bad in (1.5, True, -1, "10"):
        with pytest.raises(ValueError, match="max_iter must be a Python int >= 0"):
            check_iteration(bad)
    with pytest.raises(ValueError, match="max_iter must be a Python int >= 1, got 0"):
        check_iteration(0, min_iter=1)
    with pytest.raises(ValueError, match=r"tol must be a scalar, got shape \(2,\)"):
        check_iteration(10, jnp.ones(2))
    with pytest.raises(ValueError, match="tol must be >= 0"):
        check_iteration(10, -1e-3)
    with pytest.raises(TypeError, match="tol must be a real floating-point"):
        check_iteration(10, True)
    with pytest.raises(ValueError, match=r"mode must be one of \('while', 'scan', 'checkpoint', 'implicit'\)"):
        check_iteration(10, mode="unrolled")


def test_iterate_argument_errors():
    with pytest.raises(ValueError, match="mode must be one of"):
        iterate(_relax(0.5), max_iter=10, mode="for")
    for mode in ("while", "implicit"):
        with pytest.raises(ValueError, match="history=True needs mode='scan' or 'checkpoint'"):
            iterate(_relax(0.5), max_iter=10, mode=mode, history=True)
    no_objective = _relax(0.5)._replace(objective=None)
    with pytest.raises(ValueError, match="history=True needs a solver with an objective"):
        iterate(no_objective, max_iter=10, mode="scan", history=True)


# -- differentiation modes -----------------------------------------------------------------------------

def _lasso(seed=0, n=16, m=24):
    """A 3-sparse signal with a little noise; at lam = 0.1 the support {2, 7, 19} is stable (float64)."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    D = normalize_atoms(jax.random.normal(k1, (n, m), jnp.float64))
    a0 = jnp.zeros(m).at[jnp.array([2, 7, 19])].set(jnp.array([1.5, -2.0, 1.0]))
    y = D @ a0 + 0.02 * jax.random.normal(k2, (n,), jnp.float64)
    return D, y, jnp.asarray(0.1)


def _solver(algorithm, D, y, lam, fixed_point=False):
    op = Dense(D)
    L = jnp.linalg.eigvalsh(D.T @ D)[-1]
    x0 = jnp.zeros(D.shape[1])
    s = ista_solver(op, y, lam, 1.0 / L, x0) if algorithm == "ista" else fista_solver(op, y, lam, L, x0)
    if fixed_point:  # the proximal-gradient map: its fixed point is the Lasso solution
        s = s._replace(fixed_point=lambda a: shrink.soft(a - op.adjoint(op.apply(a) - y) / L, lam / L))
    return s


# scan / checkpoint: enough steps to sit at the solution; implicit: converged to the float64 floor
_STEPS = {"scan": dict(max_iter=800, tol=0.0), "checkpoint": dict(max_iter=800, tol=0.0),
          "implicit": dict(max_iter=5000, tol=1e-14)}


def _loss_fn(algorithm, D, mode, fixed_point=False):
    c = jnp.cos(jnp.arange(D.shape[1]) * 0.7) + 0.5

    def loss(y, lam):
        sol = iterate(_solver(algorithm, D, y, lam, fixed_point), mode=mode, **_STEPS[mode])
        return jnp.sum(c * sol.codes) + 0.5 * jnp.sum(sol.codes ** 2)

    return jax.jit(loss)


@pytest.mark.parametrize("algorithm", ["ista", "fista"])
def test_checkpoint_and_implicit_gradients_equal_scan(algorithm, x64):
    D, y, lam = _lasso()
    g_scan = jax.grad(_loss_fn(algorithm, D, "scan"), argnums=(0, 1))(y, lam)
    assert abs(float(g_scan[1])) > 1e-2  # a non-trivial derivative in lam
    g_ckpt = jax.grad(_loss_fn(algorithm, D, "checkpoint"), argnums=(0, 1))(y, lam)
    for a, b in zip(g_scan, g_ckpt):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for fixed_point in (False, True):   # the solver's step on its state, or the Solver's fixed_point map
        g_impl = jax.grad(_loss_fn(algorithm, D, "implicit", fixed_point), argnums=(0, 1))(y, lam)
        for a, b in zip(g_scan, g_impl):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("algorithm", ["ista", "fista"])
def test_implicit_gradient_matches_finite_differences(algorithm, x64):
    D, y, lam = _lasso()
    loss = _loss_fn(algorithm, D, "implicit")
    gy, glam = jax.grad(loss, argnums=(0, 1))(y, lam)
    v = jax.random.normal(jax.random.PRNGKey(3), y.shape)
    h = 1e-6
    fd_y = (loss(y + h * v, lam) - loss(y - h * v, lam)) / (2 * h)
    fd_lam = (loss(y, lam + h) - loss(y, lam - h)) / (2 * h)
    np.testing.assert_allclose(jnp.vdot(gy, v), fd_y, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(glam, fd_lam, rtol=1e-6, atol=1e-8)


def test_implicit_mode_forward_is_the_while_loop_and_vmaps(x64):
    D, y, lam = _lasso()
    Y = jnp.stack([y, 0.5 * y, -y])
    run = lambda mode: jax.vmap(lambda s: iterate(_solver("ista", D, s, lam), mode=mode, max_iter=20000,  # noqa
                                                  tol=1e-12))(Y)
    w, i = run("while"), run("implicit")
    np.testing.assert_array_equal(w.codes, i.codes)
    np.testing.assert_array_equal(w.num_steps, i.num_steps)
    assert np.all(np.asarray(i.converged)) and len(set(np.asarray(i.num_steps).tolist())) > 1
    # the gradient of a sum over the batch is the sum of the per-signal gradients
    loss = _loss_fn("ista", D, "implicit")
    batched = jax.grad(lambda lam: jnp.sum(jax.vmap(lambda s: loss(s, lam))(Y)))(lam)
    single = sum(jax.grad(loss, argnums=1)(s, lam) for s in Y)
    np.testing.assert_allclose(batched, single, rtol=1e-9)


def test_implicit_fallback_holds_integer_leaves_and_handles_complex_ones(x64):
    """A state with an int counter and a complex leaf: x <- cos(theta x) + Re(z) / 10, z <- z / 2 + theta (1 + i).
    At the fixed point Re(z) = 2 theta; the implicit derivative equals the unrolled one."""

    def solver(theta):
        def step(s):
            x, k, z = s
            return (jnp.cos(theta * x) + 0.1 * z.real, k + 1, 0.5 * z + theta * (1.0 + 1.0j))

        return Solver(init=lambda: (jnp.asarray(0.5), jnp.asarray(0), jnp.asarray(0.0j)), step=step,
                      codes=lambda s: s[0], error=lambda a, b: relative_change(a[0], b[0]) + jnp.abs(b[2] - a[2]))

    def root(theta, mode):
        sol = iterate(solver(theta), max_iter=2000, tol=1e-15 if mode == "implicit" else 0.0, mode=mode)
        return sol.codes

    g_scan = jax.grad(root)(0.8, "scan")
    g_impl = jax.grad(root)(0.8, "implicit")
    assert abs(float(g_scan)) > 1e-2
    np.testing.assert_allclose(g_impl, g_scan, rtol=1e-10)
    assert int(iterate(solver(0.8), max_iter=2000, tol=1e-15, mode="implicit").state[1]) < 2000


@pytest.mark.parametrize("pursuit", ["ista", "fista"])
def test_the_pursuits_pass_mode_to_the_driver(pursuit, x64):
    """sparsejax.ista / fista(mode=...): every mode of the driver, the same gradient in y."""
    import sparsejax as sj

    D, y, lam = _lasso()
    c = jnp.cos(jnp.arange(D.shape[1]) * 0.7) + 0.5
    run = getattr(sj, pursuit)
    kw = {"scan": dict(max_iter=800, tol=0.0), "checkpoint": dict(max_iter=800, tol=0.0),
          "implicit": dict(max_iter=5000, tol=1e-14)}
    grads = {m: jax.grad(lambda y: jnp.sum(c * run(D, y, lam, mode=m, **kw[m]).codes))(y) for m in kw}
    assert bool(run(D, y, lam, mode="implicit", **kw["implicit"]).converged)
    np.testing.assert_allclose(grads["checkpoint"], grads["scan"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grads["implicit"], grads["scan"], rtol=1e-9, atol=1e-11)
