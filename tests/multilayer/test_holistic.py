"""Subspace BPDN, holistic / projection pursuit and the T8 oracles (sparsejax.multilayer.holistic)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tol_for
from sparsejax import fista
from sparsejax.multilayer import holistic as H
from sparsejax.dictionary import random_gaussian
from sparsejax.multilayer.signals import null_space, two_layer_dense_signal


def _pair(dtype=np.float32, n=20, m1=40, m2=24, seed=1):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return random_gaussian(k1, n, m1, dtype), random_gaussian(k2, m1, m2, dtype)


def test_subspace_bpdn_identity_is_bpdn(dtype):
    """K = I: the projection pursuit equals BPDN on D_1 D_2 solved by FISTA."""
    D1, D2 = _pair(dtype)
    sig = two_layer_dense_signal(jax.random.PRNGKey(0), D1, D2, 5, 2, amplitude=3.0, sigma=0.05)
    lam = 0.05
    tol = tol_for(dtype, 1e-6, 1e-12)
    sol = H.projection_pursuit_dense(D1, D2, sig.y, lam, tol=tol, max_iter=5000)
    ref = fista(D1 @ D2, sig.y, lam, tol=tol, max_iter=20000)
    assert bool(sol.converged) and not bool(sol.diverged)
    np.testing.assert_allclose(np.asarray(sol.codes[1]), np.asarray(ref.codes), atol=tol_for(dtype, 2e-4, 1e-8))
    np.testing.assert_allclose(float(sol.objective), float(ref.objective), rtol=tol_for(dtype, 1e-5, 1e-10))
    np.testing.assert_allclose(np.asarray(sol.codes[1]),
                               np.asarray(H.subspace_bpdn(D1 @ D2, jnp.eye(24, dtype=dtype), sig.y, lam, tol=tol,
                                                          max_iter=5000).codes), atol=tol_for(dtype, 1e-5, 1e-10))


def test_subspace_bpdn_kkt_certificate(dtype):
    """General K: at the solution g = K x, rho u is a subgradient of lam||.||_1 at g, and
    K^T (A^T (A g - y) + rho u) = 0 (stationarity over the subspace); g is no worse than nearby feasible points."""
    D1, D2 = _pair(dtype)
    A = D1 @ D2
    K = null_space(D2[:4], 20)                                   # G_1[:4] = 0
    sig = two_layer_dense_signal(jax.random.PRNGKey(2), D1, D2, 8, 3, amplitude=3.0, sigma=0.05)
    lam, rho = 0.05, 1.0
    tol = tol_for(dtype, 1e-7, 1e-13)
    sol = H.subspace_bpdn(A, K, sig.y, lam, rho=rho, tol=tol, max_iter=20000)
    assert bool(sol.converged)
    s = sol.state
    g, u = np.asarray(s.g, np.float64), np.asarray(s.u, np.float64)
    scale = float(np.abs(g).max())
    atol = tol_for(dtype, 2e-4, 1e-9)
    assert np.abs(np.asarray(K @ s.x) - g).max() <= atol * scale
    np.testing.assert_allclose(np.asarray(D2[:4] @ s.g), 0.0, atol=atol * 10 * scale)
    z = rho * u
    assert np.all(np.abs(z) <= lam * (1 + atol))
    nz = g != 0
    assert nz.sum() >= 1
    np.testing.assert_allclose(z[nz], lam * np.sign(g[nz]), atol=lam * atol * 10)
    stat = np.asarray(K.T @ (A.T @ (A @ s.g - sig.y))) + np.asarray(K.T @ (rho * s.u))
    assert np.abs(stat).max() <= atol * 10 * max(1.0, float(np.abs(np.asarray(K.T @ (A.T @ sig.y))).max()))
    # objective optimality against random feasible perturbations K (x + t d)
    obj = lambda gg: 0.5 * jnp.sum((A @ gg - sig.y) ** 2) + lam * jnp.sum(jnp.abs(gg))  # noqa: E731
    d = jax.random.normal(jax.random.PRNGKey(5), (16, 20), dtype)
    f0 = float(obj(s.g))
    for t in (1e-2, 1e-1):
        vals = jax.vmap(lambda dd: obj(K @ (s.x + t * dd)))(d)
        assert float(jnp.min(vals)) >= f0 - tol_for(dtype, 1e-4, 1e-10) * f0


def test_subspace_bpdn_rejects_bad_input():
    D1, D2 = _pair()
    A = D1 @ D2
    y = jnp.zeros(20)
    with pytest.raises(ValueError, match="orthonormal"):
        H.subspace_bpdn(A, 2.0 * jnp.eye(24), y, 0.1)
    with pytest.raises(ValueError, match="K must have m = 24 rows"):
        H.subspace_bpdn(A, jnp.eye(20), y, 0.1)
    with pytest.raises(ValueError, match="lam"):
        H.subspace_bpdn(A, None, y, -0.1)
    with pytest.raises(ValueError, match="y"):
        H.subspace_bpdn(A, None, jnp.zeros(21), 0.1)
    with pytest.raises(TypeError, match="y"):
        H.subspace_bpdn(A, None, jnp.zeros(20, jnp.int32), 0.1)
    with pytest.raises(ValueError, match="rho"):
        H.subspace_bpdn(A, None, y, 0.1, rho=0.0)
    with pytest.raises(TypeError, match="l1"):
        H.holistic_pursuit(D1, D2, y, 0.1, 2.0)
    with pytest.raises(ValueError, match="rounds"):
        H.holistic_pursuit(D1, D2, y, 0.1, 24)


def test_holistic_recovers_noiseless_signals_and_beats_projection():
    """Noiseless signals with l_1 = s_2 - 1 (G_2 lives on a line): holistic pursuit recovers G_2 and its error
    is far below the projection pursuit's; rounds run past l1 (traced l1) give the same result."""
    D1, D2 = _pair(n=20, m1=40, m2=24)
    s2, l1 = 7, 6
    keys = jax.random.split(jax.random.PRNGKey(11), 8)
    sig = jax.vmap(lambda k: two_layer_dense_signal(k, D1, D2, s2, l1, amplitude=1.0))(keys)
    lam = 1e-3
    hol = jax.vmap(lambda y: H.holistic_pursuit(D1, D2, y, lam, l1, tol=1e-6, max_iter=3000))(sig.y)
    proj = jax.vmap(lambda y: H.projection_pursuit_dense(D1, D2, y, lam, tol=1e-6, max_iter=3000))(sig.y)
    rel = lambda G: np.asarray(jnp.sum((G - sig.G2) ** 2, 1) / jnp.sum(sig.G2 ** 2, 1))  # noqa: E731
    e_h, e_p = rel(hol.codes[1]), rel(proj.codes[1])
    assert np.median(e_h) < 1e-2
    assert np.mean(e_h) < 0.5 * np.mean(e_p)
    assert hol.stages.num_steps.shape == (8, l1 + 1) and bool(jnp.all(hol.converged))
    # the chosen cosupport indices are distinct; G_1 = D_2 G_2 is small there
    cos = np.asarray(hol.state.cosupport1)
    assert all(len(set(c)) == l1 for c in cos.tolist())
    g1 = np.abs(np.asarray(hol.codes[0]))
    assert np.median([g1[b, cos[b]].max() / g1[b].max() for b in range(8)]) < 1e-2
    # one compilation for several l1: rounds=l1 + 2 with a traced l1 repeats the last K twice
    pad = jax.vmap(lambda y: H.holistic_pursuit(D1, D2, y, lam, jnp.asarray(l1), rounds=l1 + 2, tol=1e-6,
                                                max_iter=3000))(sig.y)
    np.testing.assert_array_equal(np.asarray(pad.state.cosupport1[:, :l1]), cos)
    assert np.all(np.asarray(pad.state.cosupport1[:, l1:]) == -1)
    np.testing.assert_allclose(np.asarray(pad.codes[1]), np.asarray(hol.codes[1]),
                               atol=1e-4 * float(jnp.abs(sig.G2).max()))


def test_holistic_with_l1_zero_is_projection(dtype):
    D1, D2 = _pair(dtype)
    sig = two_layer_dense_signal(jax.random.PRNGKey(3), D1, D2, 5, 2, amplitude=2.0, sigma=0.05)
    tol = tol_for(dtype, 1e-6, 1e-12)
    hol = H.holistic_pursuit(D1, D2, sig.y, 0.05, 0, tol=tol, max_iter=5000)
    proj = H.projection_pursuit_dense(D1, D2, sig.y, 0.05, tol=tol, max_iter=5000)
    np.testing.assert_allclose(np.asarray(hol.codes[1]), np.asarray(proj.codes[1]), atol=tol * 10)
    np.testing.assert_allclose(np.asarray(hol.codes[0]), np.asarray(D2 @ hol.codes[1]), atol=tol * 10)
    assert hol.state.cosupport1.shape == (0,)


def test_oracle_closed_forms_match_monte_carlo(x64):
    """T8: sigma^2 tr((D_S^T D_S)^{-1}) and sigma^2 tr((N^T D_S^T D_S N)^{-1}) are the mean squared errors
    of the two oracle estimators (4000 noise draws; 5 standard errors)."""
    D1, D2 = _pair(np.float64)
    sigma = 0.2
    sig = two_layer_dense_signal(jax.random.PRNGKey(4), D1, D2, 8, 5, amplitude=3.0)
    noise = sigma * jax.random.normal(jax.random.PRNGKey(9), (4000, 20), jnp.float64)
    Y = sig.x[None, :] + noise
    est_p = jax.vmap(lambda y: H.projection_oracle(D1, D2, y, sig.support2))(Y)
    est_h = jax.vmap(lambda y: H.holistic_oracle(D1, D2, y, sig.support2, sig.cosupport1))(Y)
    for est, mse in ((est_p, H.projection_oracle_mse(D1, D2, sig.support2, sigma)),
                     (est_h, H.holistic_oracle_mse(D1, D2, sig.support2, sig.cosupport1, sigma))):
        err = np.asarray(jnp.sum((est - sig.G2[None, :]) ** 2, axis=1))
        se = err.std(ddof=1) / np.sqrt(err.size)
        assert abs(err.mean() - float(mse)) <= 5 * se
    # the holistic oracle estimate obeys the model: zero off the support, (D_2 G_2)[C] = 0
    off = np.setdiff1d(np.arange(24), np.asarray(sig.support2))
    assert np.all(np.asarray(est_h)[:, off] == 0)
    np.testing.assert_allclose(np.asarray((est_h @ D2.T)[:, sig.cosupport1]), 0.0, atol=1e-10)
    # unbiased: noiseless data give back G_2 exactly
    np.testing.assert_allclose(np.asarray(H.holistic_oracle(D1, D2, sig.x, sig.support2, sig.cosupport1)),
                               np.asarray(sig.G2), atol=1e-10)


@pytest.mark.slow  # 12-30 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_holistic_oracle_never_worse_than_projection(x64):
    """sigma^2 tr((N^T M N)^{-1}) <= sigma^2 tr(M^{-1}), and it shrinks as the cosupport grows (nested
    subspaces); with an empty cosupport both oracles coincide."""
    D1, D2 = _pair(np.float64, n=30, m1=60, m2=30, seed=3)
    keys = jax.random.split(jax.random.PRNGKey(0), 12)
    sig = jax.vmap(lambda k: two_layer_dense_signal(k, D1, D2, 10, 6))(keys)
    p = np.asarray(jax.vmap(lambda S: H.projection_oracle_mse(D1, D2, S, 0.1))(sig.support2))
    prev = p * (1 + 1e-12)
    for l1 in (0, 2, 4, 6):   # G_1 vanishes on every prefix of the cosupport as well
        h = np.asarray(jax.vmap(lambda S, C: H.holistic_oracle_mse(D1, D2, S, C, 0.1))(
            sig.support2, sig.cosupport1[:, :l1]))
        if l1 == 0:
            np.testing.assert_allclose(h, p, rtol=1e-10)
        else:
            assert np.all(h < prev)
        prev = h * (1 + 1e-12)
    with pytest.raises(ValueError, match="cosupport1"):
        H.holistic_oracle_mse(D1, D2, jnp.arange(3), jnp.arange(3), 0.1)
    with pytest.raises(TypeError, match="support2"):
        H.projection_oracle_mse(D1, D2, jnp.arange(3.0), 0.1)
