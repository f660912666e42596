"""Dense dictionary learning: planted-dictionary recovery (the K-SVD paper's synthetic
experiment), the MOD and K-SVD dictionary stages, online BCD, bad input, float64 and exact resume."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparsejax.learn.loop
from sparsejax.learn import dense as L
from sparsejax.pursuit.omp import omp_batch
from conftest import tol_for


def planted(seed=0, n=20, m=50, N=1500, k=3, dtype=np.float32):
    """Aharon-Elad-Bruckstein 2006: unit Gaussian atoms, k atoms per signal, Gaussian coefficients, no noise."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    A = np.zeros((N, m))
    for i in range(N):
        A[i, rng.choice(m, k, replace=False)] = rng.standard_normal(k)
    return D.astype(dtype), (A @ D.T).astype(dtype), A.astype(dtype)


# min_usage=0.25: atoms used by < 1/4 of the mean usage are replaced too (escapes the dead-atom local minima)
RECOVERY = {
    "ksvd": dict(sparsity=3, n_steps=60, min_usage=0.25),
    "mod": dict(sparsity=3, n_steps=50, min_usage=0.25),
    "online": dict(sparsity=3, n_steps=150, batch_size=256, forget=10.0, min_usage=0.25),
    "optax": dict(lam=0.1, n_steps=200, batch_size=256, mode="scan", max_iter=50),
}


@pytest.mark.parametrize("method", list(RECOVERY))
def test_planted_dictionary_recovered(method):
    D_true, Y, _ = planted()
    kw = dict(RECOVERY[method])
    if method == "optax":
        kw["optimizer"] = optax.adam(optax.cosine_decay_schedule(0.05, kw["n_steps"]))
    res = L.learn_dictionary(Y, 50, method=method, key=jax.random.PRNGKey(1), progress=False, **kw)
    assert res.loop.status == "completed"
    assert res.loop.steps == kw["n_steps"]
    assert L.atom_recovery(res.dictionary, D_true) >= 0.95
    np.testing.assert_allclose(np.linalg.norm(np.asarray(res.dictionary), axis=0), 1.0, atol=1e-5)
    h = res.loop.history
    assert h["loss"].shape == (kw["n_steps"],) and np.all(np.isfinite(h["loss"]))
    assert h["loss"][-1] < h["loss"][0] and h["rel_error"][-1] < 0.6 * h["rel_error"][0]   # the fit improved
    assert res.codes.shape == (1500, 50)
    if "sparsity" in kw:
        assert np.all(np.sum(np.asarray(res.codes) != 0, axis=1) <= 3)


def test_mod_update_is_least_squares(dtype):
    rng = np.random.default_rng(3)
    Y = rng.standard_normal((200, 12)).astype(dtype)
    A = rng.standard_normal((200, 30)) * (rng.random((200, 30)) < 0.3)
    A = A.astype(dtype)
    D = np.asarray(L.mod_update(jnp.asarray(Y), jnp.asarray(A)))
    Yd, Ad = Y.astype(np.float64), A.astype(np.float64)
    ref = Yd.T @ Ad @ np.linalg.inv(Ad.T @ Ad)                       # Y^T A (A^T A)^{-1}
    np.testing.assert_allclose(D, ref, rtol=0, atol=100 * tol_for(dtype, 1e-5, 1e-12))
    # the normal equations D A^T A = Y^T A hold: the residual is orthogonal to every code row
    np.testing.assert_allclose((Yd.T - D @ Ad.T) @ Ad, 0.0, atol=tol_for(dtype, 1e-2, 1e-9))


def test_ksvd_update_never_increases_error(dtype):
    D_true, Y, _ = planted(seed=4, N=300, dtype=dtype)
    rng = np.random.default_rng(5)
    D0 = D_true + 0.3 * rng.standard_normal(D_true.shape).astype(dtype)
    D0 = D0 / np.linalg.norm(D0, axis=0)
    codes = omp_batch(jnp.asarray(D0), jnp.asarray(Y), k=3).codes
    D1, C1, unused = L.ksvd_dictionary_update(jnp.asarray(D0), jnp.asarray(Y), codes)
    e0 = float(L.representation_error(D0, Y, codes))
    e1 = float(L.representation_error(D1, Y, C1))
    assert e1 <= e0 * (1 + tol_for(dtype, 1e-5, 1e-12))
    assert e1 < 0.9 * e0                                              # and it is a real improvement here
    # supports are kept: a code becomes nonzero only where it was
    assert not np.any((np.asarray(C1) != 0) & (np.asarray(codes) == 0))
    used = ~np.asarray(unused)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(D1)[:, used], axis=0), 1.0, atol=tol_for(dtype, 1e-5, 1e-12))
    # atom 0 is updated first: it is the leading singular pair of E_0 restricted to its users (numpy SVD)
    Dd, Cd, Yd = (np.asarray(x, np.float64) for x in (D0, codes, Y))
    users = Cd[:, 0] != 0
    E = (Yd - Cd @ Dd.T + np.outer(Cd[:, 0], Dd[:, 0]))[users].T       # (n, |omega_0|)
    U, s, Vt = np.linalg.svd(E, full_matrices=False)
    sign = np.sign(U[:, 0] @ np.asarray(D1, np.float64)[:, 0])
    np.testing.assert_allclose(np.asarray(D1)[:, 0], sign * U[:, 0], atol=tol_for(dtype, 1e-4, 1e-9))


def test_online_bcd_reaches_the_surrogate_minimiser(dtype):
    # with A positive definite and the unconstrained minimiser D* = B A^{-1} inside the unit ball,
    # block coordinate descent on 1/2 Tr(D^T D A) - Tr(D^T B) converges to D*
    rng = np.random.default_rng(6)
    M = rng.standard_normal((40, 8))
    A = (M.T @ M / 40 + 0.5 * np.eye(8)).astype(dtype)
    Dstar = rng.standard_normal((5, 8))
    Dstar = 0.8 * Dstar / np.linalg.norm(Dstar, axis=0)
    B = (Dstar @ A).astype(dtype)
    D0 = jnp.asarray(rng.standard_normal((5, 8)) * 0.1, dtype)
    stats = L.OnlineStats(jnp.asarray(A), jnp.asarray(B), jnp.asarray(1.0, dtype))
    D = L.online_dictionary_update(D0, stats, n_sweeps=200)
    np.testing.assert_allclose(np.asarray(D), Dstar, atol=tol_for(dtype, 1e-4, 1e-9))


def test_float64_run(x64):
    D_true, Y, _ = planted(dtype=np.float64)
    res = L.learn_dictionary(Y, 50, method="ksvd", sparsity=3, n_steps=40, key=jax.random.PRNGKey(1),
                             min_usage=0.25, progress=False)
    assert res.dictionary.dtype == jnp.float64 and res.codes.dtype == jnp.float64
    assert res.loop.state.D.dtype == jnp.float64
    assert L.atom_recovery(res.dictionary, D_true) >= 0.95


def test_resume_gives_the_same_dictionary(tmp_path):
    _, Y, _ = planted(N=400)
    kw = dict(method="online", sparsity=3, n_steps=12, batch_size=64, key=jax.random.PRNGKey(2), progress=False,
              return_codes=False)
    full = L.learn_dictionary(Y, 50, **kw)
    part = L.learn_dictionary(Y, 50, checkpoint_dir=tmp_path, checkpoint_every=5, stop_after=7, **kw)
    assert part.loop.status == "stopped" and part.loop.steps == 7
    resumed = L.learn_dictionary(Y, 50, checkpoint_dir=tmp_path, checkpoint_every=5, **kw)
    assert resumed.loop.resumed_from == 7 and resumed.loop.status == "completed"
    np.testing.assert_array_equal(np.asarray(resumed.loop.state.D), np.asarray(full.loop.state.D))
    np.testing.assert_array_equal(np.asarray(resumed.loop.state.stats.A), np.asarray(full.loop.state.stats.A))
    np.testing.assert_array_equal(resumed.loop.history["loss"], full.loop.history["loss"])
    assert not np.array_equal(np.asarray(part.loop.state.D), np.asarray(full.loop.state.D))


def test_bad_input_fails_before_compiling(monkeypatch):
    def no_loop(*a, **k):
        raise AssertionError("run_loop reached")

    monkeypatch.setattr(sparsejax.learn.loop, "run_loop", no_loop)
    _, Y, _ = planted(N=100)
    bad = Y.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="Y contains NaN"):
        L.learn_dictionary(bad, 20, sparsity=3)
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="Y contains NaN or infinite"):
        L.learn_dictionary(bad, 20, sparsity=3)
    with pytest.raises(ValueError, match="Y must have 2 dimension"):
        L.learn_dictionary(Y[0], 20, sparsity=3)
    with pytest.raises(ValueError, match="n_atoms must be >= 1"):
        L.learn_dictionary(Y, 0, sparsity=3)
    with pytest.raises(TypeError, match="Y must be a real floating-point"):
        L.learn_dictionary(Y.astype(np.int32), 20, sparsity=3)
    with pytest.raises(ValueError, match="method must be one of"):
        L.learn_dictionary(Y, 20, method="sgd", sparsity=3)
    with pytest.raises(ValueError, match="give sparsity"):
        L.learn_dictionary(Y, 20, method="ksvd", lam=0.1)
    with pytest.raises(ValueError, match="give lam"):
        L.learn_dictionary(Y, 20, method="optax", sparsity=3)
    with pytest.raises(ValueError, match="sparsity must be <="):
        L.learn_dictionary(Y, 20, sparsity=21)
    with pytest.raises(ValueError, match="init must have shape"):
        L.learn_dictionary(Y, 20, sparsity=3, init=np.ones((20, 19), np.float32))
    with pytest.raises(ValueError, match="mode must be one of"):
        L.learn_dictionary(Y, 20, method="optax", lam=0.1, mode="unrolled")
    with pytest.raises(ValueError, match="grad must be one of"):
        L.learn_dictionary(Y, 20, method="optax", lam=0.1, grad="scan")
    with pytest.raises(ValueError, match="max_iter"):
        L.learn_dictionary(Y, 20, method="optax", lam=0.1, max_iter=0)


def test_grad_is_a_deprecated_alias_of_mode():
    """learn_dictionary(grad=...) still works: the same dictionary as its mode=, with a DeprecationWarning."""
    _, Y, _ = planted(N=120, m=20)
    kw = dict(method="optax", lam=0.1, n_steps=3, batch_size=64, max_iter=20, progress=False, return_codes=False)
    new = L.learn_dictionary(Y, 20, mode="checkpoint", **kw)
    with pytest.warns(DeprecationWarning, match="grad"):
        old = L.learn_dictionary(Y, 20, grad="checkpointed", **kw)
    np.testing.assert_array_equal(np.asarray(old.dictionary), np.asarray(new.dictionary))


def test_atom_recovery_counts_true_atoms():
    D_true, _, _ = planted()
    rng = np.random.default_rng(7)
    perm = rng.permutation(50)
    signs = np.where(rng.random(50) < 0.5, -1.0, 1.0)
    assert L.atom_recovery(3.0 * D_true[:, perm] * signs, D_true) == 1.0    # order, sign and scale do not matter
    half = D_true.copy()
    half[:, :25] = rng.standard_normal((20, 25))
    assert L.atom_recovery(half, D_true) == 0.5
    with pytest.raises(ValueError, match="same signal dimension"):
        L.atom_recovery(D_true[:10], D_true)
