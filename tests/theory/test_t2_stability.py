"""T2 (Donoho, Elad & Temlyakov 2006): BP and OMP stability under the coherence conditions.

Hundreds of seeded k-sparse signals with ||v||_2 = eps exactly, every k that meets each condition, on
low-coherence dictionaries: [I, H/sqrt(n)] (mu = 1/sqrt(n)) and a Gaussian one. Float64.
"""
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax import mutual_coherence, random_gaussian

from sparsejax.theory import dense as theory
N_SIG = 200


def _dictionary(kind):
    if kind == "identity_hadamard":
        return theory.identity_hadamard(256, jnp.float64)
    return random_gaussian(jax.random.PRNGKey(7), 512, 1024, jnp.float64)


# ------------------------------------------------------------------------------ bound functions
def test_conditions_and_max_sparsity():
    mu = 1 / 16
    assert theory.max_sparsity_bp(mu) == 4          # k < 17/4
    assert theory.max_sparsity_unique(mu) == 8      # k < 17/2
    assert theory.max_sparsity_omp(mu, 0.1, 1.0) == 6  # k < 8.5 - 1.6
    assert theory.max_sparsity_omp(mu, 10.0, 1.0) == 0
    assert theory.max_sparsity_bp(1 / 3) == 0       # k < 1: the exact-threshold edge is excluded
    for k in range(1, 12):
        assert bool(theory.bp_stability_condition(mu, k)) == (k <= 4)
        assert bool(theory.uniqueness_condition(mu, k)) == (k <= 8)
        assert bool(theory.omp_exact_support_condition(mu, k, 0.1, 1.0)) == (k <= 6)
    assert float(theory.bp_stability_bound(mu, 4, 0.1)) == pytest.approx(0.04 / (1 - 15 / 16))
    assert float(theory.bp_stability_bound(mu, 4, 0.1, 0.3)) == pytest.approx(0.16 / (1 - 15 / 16))
    assert np.isinf(float(theory.bp_stability_bound(mu, 5, 0.1)))
    assert float(theory.omp_error_bound(mu, 3, 0.2)) == pytest.approx(0.04 / (1 - 2 / 16))


def test_identity_hadamard_coherence(x64):
    D = theory.identity_hadamard(64, jnp.float64)
    assert D.shape == (64, 128)
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, rtol=1e-12)
    assert float(mutual_coherence(D)) == pytest.approx(1 / 8, rel=1e-12)
    with pytest.raises(ValueError, match="power of two"):
        theory.identity_hadamard(48)


def test_sparse_signals_generator(x64):
    D = theory.identity_hadamard(64, jnp.float64)
    Y, A, V = theory.sparse_signals(jax.random.PRNGKey(3), D, 5, 300, amplitude=3.0, noise_eps=0.2,
                                    min_abs=0.5)
    assert Y.shape == (300, 64) and A.shape == (300, 128) and V.shape == (300, 64)
    assert np.all(np.sum(np.asarray(A) != 0, axis=1) == 5)
    nz = np.abs(np.asarray(A))[np.asarray(A) != 0]
    assert nz.min() >= 0.5 and nz.max() <= 3.0
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 0.2, rtol=1e-12)
    np.testing.assert_allclose(Y, A @ D.T + V, atol=1e-12)
    # the supports are spread over all atoms, and seeding is reproducible
    assert np.all(np.sum(np.asarray(A) != 0, axis=0) > 0)
    Y2, _, _ = theory.sparse_signals(jax.random.PRNGKey(3), D, 5, 300, amplitude=3.0, noise_eps=0.2,
                                     min_abs=0.5)
    np.testing.assert_array_equal(Y, Y2)
    _, _, Vb = theory.sparse_signals(jax.random.PRNGKey(4), D, 5, 300, noise_eps=0.2, exact_noise=False)
    assert np.all(np.linalg.norm(Vb, axis=1) <= 0.2 + 1e-12)


# ------------------------------------------------------------------------------ BP
@pytest.mark.parametrize("kind", ["identity_hadamard", "gaussian"])
def test_bp_error_within_bound(x64, kind):
    D = _dictionary(kind)
    mu = float(mutual_coherence(D))
    kmax = theory.max_sparsity_bp(mu)
    assert kmax >= 1
    eps = 0.1
    for k in range(1, kmax + 1):
        Y, A, V = theory.sparse_signals(jax.random.PRNGKey(100 + k), D, k, N_SIG, noise_eps=eps)
        codes, delta, solver = theory.recover_bp(D, Y, eps)
        assert bool(jnp.all(delta >= eps * (1 - 1e-9))), solver  # the theorem's delta >= eps
        # the two facts the proof uses: a^ is no larger in l1 than a, and ||D a^ - y|| <= delta
        assert bool(jnp.all(jnp.sum(jnp.abs(codes), 1) <= jnp.sum(jnp.abs(A), 1) * (1 + 1e-9)))
        err = jnp.sum((codes - A) ** 2, axis=1)
        bound = theory.bp_stability_bound(mu, k, eps, delta)
        assert bool(jnp.all(jnp.isfinite(bound)))
        assert bool(jnp.all(err <= bound * (1 + 1e-6))), (k, solver, float(jnp.max(err / bound)))


def test_bp_admm_constrained_within_bound(x64):
    """The ADMM solver of the constrained problem (delta = eps), on fewer instances: it converges slowly."""
    D = _dictionary("identity_hadamard")
    mu = float(mutual_coherence(D))
    k, eps = theory.max_sparsity_bp(mu), 0.1
    Y, A, _ = theory.sparse_signals(jax.random.PRNGKey(11), D, k, 24, noise_eps=eps)
    codes, delta, _ = theory.recover_bp(D, Y, eps, method="admm", max_iter=400)
    assert bool(jnp.all(jnp.sum(jnp.abs(codes), 1) <= jnp.sum(jnp.abs(A), 1) * (1 + 1e-9)))
    err = jnp.sum((codes - A) ** 2, axis=1)
    assert bool(jnp.all(err <= theory.bp_stability_bound(mu, k, eps, delta)))
    assert float(jnp.max(delta)) < 1.5 * eps  # the constraint is nearly met


# ------------------------------------------------------------------------------ OMP
@pytest.mark.parametrize("kind, eps", [("identity_hadamard", 0.1), ("identity_hadamard", 0.3),
                                       ("gaussian", 0.05)])
def test_omp_exact_support_and_error(x64, kind, eps):
    D = _dictionary(kind)
    mu = float(mutual_coherence(D))
    amin = 1.0
    kmax = theory.max_sparsity_omp(mu, eps, amin)
    assert kmax >= 1
    for k in range(1, kmax + 1):
        assert bool(theory.omp_exact_support_condition(mu, k, eps, amin))
        Y, A, V = theory.sparse_signals(jax.random.PRNGKey(200 + k), D, k, N_SIG, noise_eps=eps,
                                        min_abs=amin)
        # the stopping rule ||r|| <= eps, room for extra atoms: OMP must stop by itself after k
        codes, solver = theory.recover_omp(D, Y, k + 2, eps * (1 + 1e-9))
        same_support = jnp.all((codes != 0) == (A != 0), axis=1)
        assert bool(jnp.all(same_support)), (k, solver, float(jnp.mean(same_support)))
        err = jnp.sum((codes - A) ** 2, axis=1)
        bound = theory.omp_error_bound(mu, k, eps)
        assert bool(jnp.all(err <= bound * (1 + 1e-9))), (k, solver, float(jnp.max(err / bound)))


def test_omp_noiseless_unique_recovery(x64):
    """eps = 0: every k < (1 + 1/mu)/2 is recovered exactly (Tropp 2004)."""
    D = _dictionary("identity_hadamard")
    mu = float(mutual_coherence(D))
    k = theory.max_sparsity_unique(mu)
    Y, A, _ = theory.sparse_signals(jax.random.PRNGKey(5), D, k, N_SIG)
    codes, _ = theory.recover_omp(D, Y, k, 0.0)
    np.testing.assert_allclose(codes, A, atol=1e-9)


def _reference_omp(D, y, kmax: int, tol):
    """A plain reference OMP (masked least squares on at most ``kmax`` atoms; stop when ||r|| <= tol)."""
    n, m = D.shape
    pos = jnp.arange(kmax)

    def body(_, c):
        idx, coef, r, s = c
        active = (jnp.linalg.norm(r) > tol) & (s < kmax)
        corr = jnp.abs(D.T @ r)
        chosen = jnp.zeros(m, bool).at[idx].set(pos < s)
        j = jnp.argmax(jnp.where(chosen, -1.0, corr)).astype(jnp.int32)
        idx_n = idx.at[jnp.minimum(s, kmax - 1)].set(j)
        valid = pos < s + 1
        Ds = D[:, idx_n] * valid[None, :]
        G = Ds.T @ Ds + jnp.diag(jnp.where(valid, 0.0, 1.0).astype(D.dtype))
        coef_n = jnp.linalg.solve(G, Ds.T @ y) * valid
        r_n = y - Ds @ coef_n
        pick = lambda new, old: jnp.where(active, new, old)
        return pick(idx_n, idx), pick(coef_n, coef), pick(r_n, r), s + active.astype(s.dtype)

    init = (jnp.zeros(kmax, jnp.int32), jnp.zeros(kmax, D.dtype), y, jnp.asarray(0, jnp.int32))
    idx, coef, _, s = jax.lax.fori_loop(0, kmax, body, init)
    return jnp.zeros(m, D.dtype).at[idx].add(jnp.where(pos < s, coef, 0.0))


_reference_omp_batch = jax.jit(jax.vmap(_reference_omp, in_axes=(None, 0, None, None)), static_argnums=2)


def test_reference_omp_agrees_with_package_omp(x64):
    """A plain reference OMP against the package's Batch-OMP."""
    omp_mod = importlib.import_module("sparsejax.pursuit.omp")
    D = theory.identity_hadamard(64, jnp.float64)
    Y, A, _ = theory.sparse_signals(jax.random.PRNGKey(9), D, 6, 50, noise_eps=0.3)
    ref = _reference_omp_batch(D, Y, 8, jnp.asarray(0.3 * (1 + 1e-9)))
    got = omp_mod.omp_batch(D, Y, k=8, tol=0.3 * (1 + 1e-9)).codes
    np.testing.assert_allclose(got, ref, atol=1e-9)
