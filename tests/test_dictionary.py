"""Dense dictionaries: operator interface, adjoint identity, Lipschitz constant, coherence, Babel, constructors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax.operators import Dense, power_iteration


def test_dense_adjoint_identity(dtype, key):
    k1, k2, k3 = jax.random.split(key, 3)
    D = Dense(jax.random.normal(k1, (20, 50), dtype))
    x = jax.random.normal(k2, (50,), dtype)
    y = jax.random.normal(k3, (20,), dtype)
    lhs = jnp.vdot(D.apply(x), y)
    rhs = jnp.vdot(x, D.adjoint(y))
    assert float(jnp.abs(lhs - rhs)) <= (1e-4 if dtype == np.float32 else 1e-12) * float(jnp.abs(lhs) + 1)
    assert D.T.apply(y).shape == (50,) and D.T.adjoint(x).shape == (20,)


def test_lipschitz_exact_and_power_iteration_agree(dtype, key):
    A = jax.random.normal(key, (30, 70), dtype)
    D = Dense(A)
    exact = np.linalg.norm(np.asarray(A, np.float64), 2) ** 2
    assert float(D.lipschitz()) == pytest.approx(exact, rel=1e-5)
    est = power_iteration(D.normal, D.code_shape, dtype, num_iter=500)
    assert float(est) <= exact * (1 + 1e-5)
    assert float(est) == pytest.approx(exact, rel=1e-3)


def test_dense_is_a_pytree_and_never_retraces(key):
    D1 = Dense(jax.random.normal(key, (8, 16)))
    D2 = Dense(jax.random.normal(jax.random.PRNGKey(5), (8, 16)))
    count = 0

    @jax.jit
    def f(D, x):
        nonlocal count
        count += 1
        return D.apply(x)

    x = jnp.ones(16)
    np.testing.assert_allclose(f(D1, x), D1.atoms @ x, rtol=1e-5)
    f(D2, x)
    assert count == 1
    g = jax.grad(lambda D: jnp.sum(D.apply(x) ** 2))(D1)
    assert isinstance(g, Dense) and g.atoms.shape == (8, 16)


def test_normalize_and_coherence_against_numpy(key):
    A = np.asarray(jax.random.normal(key, (16, 40)))
    Dn = np.asarray(sj.normalize_atoms(A))
    np.testing.assert_allclose(np.linalg.norm(Dn, axis=0), 1, rtol=1e-5)
    G = np.abs(Dn.T @ Dn)
    np.fill_diagonal(G, 0)
    assert float(sj.mutual_coherence(A)) == pytest.approx(G.max(), rel=1e-5)
    # Babel: brute force for small k
    srt = -np.sort(-G, axis=1)
    for k in (1, 2, 5):
        assert float(sj.babel(A, k)) == pytest.approx(srt[:, :k].sum(axis=1).max(), rel=1e-5)
    assert float(sj.babel(A, 1)) == pytest.approx(float(sj.mutual_coherence(A)), rel=1e-6)
    curve = np.asarray(sj.babel(A))
    assert np.all(np.diff(curve) >= -1e-6) and np.all(curve <= np.arange(1, 40) * G.max() + 1e-5)
    z = np.zeros((4, 3)); z[:, 0] = 1
    assert np.all(np.isfinite(np.asarray(sj.normalize_atoms(z))))


def test_union_of_orthobases_reaches_welch_type_coherence():
    n = 16
    H = np.array([[1.0]])
    while H.shape[0] < n:
        H = np.block([[H, H], [H, -H]])
    D = np.hstack([np.eye(n), H / np.sqrt(n)])
    assert float(sj.mutual_coherence(D)) == pytest.approx(1 / np.sqrt(n), rel=1e-6)


def test_constructors(key):
    D = sj.random_gaussian(key, 12, 30)
    assert D.shape == (12, 30) and D.dtype == jnp.float32
    np.testing.assert_allclose(np.linalg.norm(np.asarray(D), axis=0), 1, rtol=1e-5)
    C = np.asarray(sj.overcomplete_dct(8, 16))
    np.testing.assert_allclose(np.linalg.norm(C, axis=0), 1, rtol=1e-5)
    np.testing.assert_allclose(C[:, 1:].mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(C[:, 0], 1 / np.sqrt(8), rtol=1e-6)  # the DC atom
    # mean-removed atoms are orthogonal to the DC atom
    np.testing.assert_allclose(C[:, 0] @ C[:, 1:], 0, atol=1e-6)
    C2 = sj.overcomplete_dct_2d(8, 256)
    assert C2.shape == (64, 256)
    with pytest.raises(ValueError, match="m must be a perfect square"):
        sj.overcomplete_dct_2d(8, 200)


def test_bad_inputs():
    with pytest.raises(TypeError, match="atoms"):
        Dense(np.ones((3, 4), dtype=np.int32))
    with pytest.raises(ValueError, match="atoms"):
        Dense(np.ones(3))
    with pytest.raises(ValueError, match="n"):
        sj.random_gaussian(jax.random.PRNGKey(0), 0, 4)
    with pytest.raises(TypeError, match="D must be"):
        sj.as_operator("not a dictionary")


def test_dictionary_functions_accept_a_dense_and_check_k():
    A = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (6, 9)), np.float32)
    np.testing.assert_allclose(sj.gram(Dense(A)), A.T @ A, rtol=1e-5)
    np.testing.assert_allclose(sj.normalize_atoms(Dense(A)), A / np.linalg.norm(A, axis=0), rtol=1e-5)
    with pytest.raises(ValueError, match=r"k must be <= 8 \(number of atoms minus one\)"):
        sj.babel(A, 9)
    with pytest.raises(TypeError, match="k must be a Python int"):
        sj.babel(A, 2.0)
    with pytest.raises(ValueError, match="D must have 2 dimension"):
        sj.mutual_coherence(np.ones(4, np.float32))
