"""T1 (Beck & Teboulle 2009): ISTA and FISTA objective gaps stay below their O(1/k) and O(1/k^2) bounds
at every iteration, over hundreds of random Lasso instances (float64)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax import fista, ista, lasso_objective

from sparsejax.theory import dense as theory
N_INST, N, M, STEPS = 200, 40, 80, 300


def _instances(seed, n_inst=N_INST, warm=False):
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    D = jax.random.normal(keys[0], (n_inst, N, M)) / np.sqrt(N)  # not normalised: generic L
    Y = jax.random.normal(keys[1], (n_inst, N))
    lam = jax.random.uniform(keys[2], (n_inst,), minval=0.05, maxval=0.5) * jnp.max(
        jnp.abs(jnp.einsum("bnm,bn->bm", D, Y)), axis=1)
    X0 = jax.random.normal(keys[3], (n_inst, M)) if warm else jnp.zeros((n_inst, M))
    L = jax.vmap(lambda d: jnp.linalg.eigvalsh(d @ d.T)[-1])(D)
    return D, Y, lam, X0, L


@jax.jit
def _reference(D, Y, lam):
    """F* and a* from a long restarted-FISTA solve."""
    sol = jax.vmap(lambda d, y, l: fista(d, y, l, max_iter=20000, tol=1e-15, restart=True))(D, Y, lam)
    return sol.codes, jax.vmap(lasso_objective)(D, Y, sol.codes, lam)


@jax.jit
def _histories(D, Y, lam, X0, L):
    run_i = lambda d, y, l, x0, L: ista(d, y, l, step=1.0 / L, x0=x0, max_iter=STEPS, tol=0.0,
                                        mode="scan", history=True).history
    run_f = lambda d, y, l, x0, L: fista(d, y, l, L=L, x0=x0, max_iter=STEPS, tol=0.0,
                                         mode="scan", history=True).history
    return jax.vmap(run_i)(D, Y, lam, X0, L), jax.vmap(run_f)(D, Y, lam, X0, L)


@pytest.mark.parametrize("warm, L_scale", [(False, 1.0), (True, 1.0), (False, 3.0)])
def test_ista_fista_gap_below_bound_every_iteration(x64, warm, L_scale):
    D, Y, lam, X0, L = _instances(seed=int(10 * L_scale) + warm, warm=warm)
    L = L * L_scale  # any L >= ||D||^2 is admissible
    a_star, F_star = _reference(D, Y, lam)
    # a* really is a minimiser: the Lasso optimality condition |D^T(y - D a*)| <= lam (= on the support)
    corr = jnp.abs(jnp.einsum("bnm,bn->bm", D, Y - jnp.einsum("bnm,bm->bn", D, a_star)))
    assert float(jnp.max(corr / lam[:, None])) < 1 + 1e-6
    h_ista, h_fista = _histories(D, Y, lam, X0, L)
    dist0 = jnp.sum((X0 - a_star) ** 2, axis=1)
    k = jnp.arange(1, STEPS + 1)[None, :]
    gap_i = h_ista - F_star[:, None]
    gap_f = h_fista - F_star[:, None]
    b_i = theory.ista_rate_bound(L[:, None], dist0[:, None], k)
    b_f = theory.fista_rate_bound(L[:, None], dist0[:, None], k)
    slack = 1e-9 * (1 + jnp.abs(F_star))[:, None]  # F* from a finite solve
    assert bool(jnp.all(gap_i >= -slack)) and bool(jnp.all(gap_f >= -slack))
    assert bool(jnp.all(gap_i <= b_i + slack)), float(jnp.max(gap_i / b_i))
    assert bool(jnp.all(gap_f <= b_f + slack)), float(jnp.max(gap_f / b_f))
    # the checks are not vacuous: the gaps are a visible fraction of the bounds early on
    assert float(jnp.max(gap_i[:, 0] / b_i[:, 0])) > 1e-3
    assert float(jnp.max(gap_f[:, 0] / b_f[:, 0])) > 1e-3


def test_rate_bound_values():
    assert float(theory.ista_rate_bound(2.0, 3.0, 4)) == pytest.approx(0.75)
    assert float(theory.fista_rate_bound(2.0, 3.0, 3)) == pytest.approx(12.0 / 16)
    k = jnp.arange(1, 100)
    assert bool(jnp.all(theory.fista_rate_bound(1.0, 1.0, k) <= 4 * theory.ista_rate_bound(1.0, 1.0, k)))
