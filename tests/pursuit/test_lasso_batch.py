"""lasso_batch: exact KKT codes, certified gaps, fallback reporting, errors, jit and no retracing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.pursuit.lasso_batch import _lasso_batch, duality_gap, lasso_batch


def make(B=64, n=24, m=64, k=4, seed=0, noise=0.01, dtype=np.float64):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    A = np.zeros((B, m))
    for i in range(B):
        A[i, rng.choice(m, k, replace=False)] = rng.standard_normal(k)
    Y = A @ D.T + noise * rng.standard_normal((B, n))
    return D.astype(dtype), Y.astype(dtype)


def _prox(nonneg):
    return "nonneg_soft" if nonneg else "soft"


def kkt(D, Y, A, lam, nonneg=False):
    G = (Y - A @ D.T) @ D
    on = A != 0
    if nonneg:
        off = np.where(on, 0.0, G - lam)
        onv = np.where(on, np.abs(G - lam), 0.0)
    else:
        off = np.where(on, 0.0, np.abs(G) - lam)
        onv = np.where(on, np.abs(G - lam * np.sign(A)), 0.0)
    return max(off.max(), onv.max(), 0.0) / lam


@pytest.mark.parametrize("nonneg", [False, True])
def test_kkt_and_gap(dtype, nonneg):
    D, Y = make(dtype=dtype)
    lam = 0.05
    tol = 1e-10 if dtype == np.float64 else 1e-6
    sol = lasso_batch(D, Y, lam, prox=_prox(nonneg), chunk=16, tol=tol, max_active=20)
    assert sol.codes.shape == Y.shape[:1] + (D.shape[1],) and sol.codes.dtype == dtype
    assert bool(jnp.all(sol.converged)) and not bool(jnp.any(sol.diverged))
    A = np.asarray(sol.codes, np.float64)
    if nonneg:
        assert np.all(A >= 0)
    assert kkt(D.astype(np.float64), Y.astype(np.float64), A, lam, nonneg) < (1e-6 if dtype == np.float64 else 1e-3)
    assert np.all(np.asarray(sol.error) <= max(tol, 256 * np.finfo(dtype).eps))
    assert sol.num_steps.shape == (Y.shape[0],) and np.all(np.asarray(sol.num_steps) >= 1)
    gap, obj = duality_gap(D, Y[0], sol.codes[0], lam, _prox(nonneg))
    np.testing.assert_allclose(obj, sol.objective[0], rtol=1e-5)


@pytest.mark.slow  # 12-30 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_matches_fista_method(x64):
    D, Y = make(B=16)
    a = lasso_batch(D, Y, 0.05)
    b = lasso_batch(D, Y, 0.05, method="fista", fallback_iter=20000, tol=1e-9)
    np.testing.assert_allclose(a.objective, b.objective, rtol=1e-7)


@pytest.mark.slow  # 12-30 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_lam_zero_and_large(x64):
    D, Y = make(B=8)
    lam_max = float(np.max(np.abs(Y @ D)))
    sol = lasso_batch(D, Y, lam_max * 1.01)
    assert np.all(np.asarray(sol.codes) == 0) and bool(jnp.all(sol.converged))


@pytest.mark.slow  # ~20-40 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_fallback_and_nonconvergence_reported(x64):
    D, Y = make(B=8)
    # no Newton steps: everything goes to the FISTA fallback (capped at 2 iterations), and an active
    # set of one atom leaves the Newton polish nothing to work with
    sol = lasso_batch(D, Y, 0.05, max_iter=0, fallback_iter=2, max_active=1)
    assert bool(jnp.all(sol.state.fallback))
    assert not bool(jnp.any(sol.converged))
    # the fallback alone, given enough iterations, does converge
    sol = lasso_batch(D, Y, 0.05, max_iter=0, fallback_iter=20000, tol=1e-8)
    assert bool(jnp.all(sol.state.fallback)) and bool(jnp.all(sol.converged))
    # tiny max_active forces overflow -> fallback, still solved
    sol = lasso_batch(D, Y, 0.01, max_active=2, fallback_iter=20000, tol=1e-6)
    assert bool(jnp.any(sol.state.fallback)) and bool(jnp.all(sol.converged))


@pytest.mark.slow  # ~20-40 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_chunking_and_padding_invariant(x64):
    D, Y = make(B=37)
    a = lasso_batch(D, Y, 0.05, chunk=8).codes
    b = lasso_batch(D, Y, 0.05, chunk=64).codes
    np.testing.assert_allclose(a, b, atol=1e-10)


@pytest.mark.slow  # ~20-40 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_jit_wrapping():
    D, Y = make(B=8, dtype=np.float32)
    f = jax.jit(lambda D, Y, lam: lasso_batch(D, Y, lam).codes)
    np.testing.assert_allclose(f(D, Y, 0.05), lasso_batch(D, Y, 0.05).codes, atol=1e-5)


def test_bad_inputs():
    D, Y = make(B=4, dtype=np.float32)
    with pytest.raises(ValueError, match="lam"):
        lasso_batch(D, Y, -0.1)
    with pytest.raises(ValueError, match="lam"):
        lasso_batch(D, Y, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="Y"):
        lasso_batch(D, Y[0], 0.1)
    with pytest.raises(ValueError, match="Y"):
        lasso_batch(D, Y[:, :5], 0.1)
    with pytest.raises(TypeError, match="Y"):
        lasso_batch(D, Y.astype(int), 0.1)
    with pytest.raises(ValueError, match="method"):
        lasso_batch(D, Y, 0.1, method="newton")
    with pytest.raises(ValueError, match="max_active"):
        lasso_batch(D, Y, 0.1, max_active=1000)
    with pytest.raises(ValueError, match="Y"):
        lasso_batch(D, np.full_like(Y, np.nan), 0.1)


def test_no_retrace():
    D, Y = make(B=8, dtype=np.float32)
    lasso_batch(D, Y, 0.05)
    n0 = _lasso_batch._cache_size()
    lasso_batch(D * 1.1, Y + 0.5, 0.2)
    lasso_batch(-D, -Y, jnp.float32(0.01), tol=1e-5)
    assert _lasso_batch._cache_size() == n0


@pytest.mark.slow  # ~20-40 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_deferred_drops_same_result(x64, monkeypatch):
    # with a drop buffer of one signal, concurrent drops wait a step: same path, same codes
    import importlib
    mod = importlib.import_module("sparsejax.pursuit._lars")
    D, Y = make(B=32, k=8, seed=1)
    a = lasso_batch(D, Y, 0.03, chunk=32, max_active=20, method="homotopy")
    monkeypatch.setattr(mod, "_DROP_BUF", 1)
    b = lasso_batch(D, Y, 0.03, chunk=32, max_active=20, refill_size=7, method="homotopy")  # new static config: retraced
    assert bool(jnp.all(b.converged))
    np.testing.assert_array_equal(a.state.fallback, b.state.fallback)
    np.testing.assert_array_equal(a.state.newton_steps, b.state.newton_steps)
    np.testing.assert_allclose(a.codes, b.codes, atol=1e-10)


@pytest.mark.slow  # ~20-40 s on 2 cores: kept out of CI (python -m pytest -m slow)
@pytest.mark.parametrize("nonneg", [False, True])
def test_fast_path_matches_homotopy(x64, nonneg):
    # the guess-and-verify fast path certifies most signals; the rest go through the homotopy
    D, Y = make(B=200, n=32, m=96, k=5, seed=3)
    a = lasso_batch(D, Y, 0.05, prox=_prox(nonneg), chunk=64, tol=1e-10, method="guess")
    b = lasso_batch(D, Y, 0.05, prox=_prox(nonneg), chunk=64, tol=1e-10, method="homotopy")
    fp = np.asarray(a.state.fast_path)
    assert fp.mean() > (0.0 if nonneg else 0.5) and bool(jnp.all(a.converged))
    assert not np.any(np.asarray(b.state.fast_path))
    np.testing.assert_allclose(a.objective, b.objective, rtol=1e-9)
    np.testing.assert_allclose(a.codes, b.codes, atol=1e-7)
    assert kkt(D, Y, np.asarray(a.codes), 0.05, nonneg) < 1e-6


@pytest.mark.slow  # ~20-40 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_fast_path_dense_solutions_fall_back(x64):
    # random signals and a small lam: large supports the guess cannot reach; still solved exactly
    rng = np.random.default_rng(5)
    D = rng.standard_normal((24, 64))
    D /= np.linalg.norm(D, axis=0)
    Y = rng.standard_normal((40, 24))
    lam = 0.02
    a = lasso_batch(D, Y, lam, tol=1e-10)
    b = lasso_batch(D, Y, lam, tol=1e-10, method="homotopy")
    assert np.mean(np.asarray(a.state.fast_path)) < 0.5
    # exactly the homotopy's outcome (incl. its FISTA fallback) on the signals the fast path rejects
    np.testing.assert_array_equal(a.converged, b.converged)
    assert np.mean(np.asarray(a.converged)) > 0.5
    c = np.asarray(a.converged)
    assert kkt(D, Y[c], np.asarray(a.codes)[c], lam) < 1e-6
    np.testing.assert_allclose(a.objective, b.objective, rtol=1e-9)


@pytest.mark.slow  # ~20-40 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_fast_path_float32_certified():
    D, Y = make(B=300, n=32, m=96, k=5, seed=4, dtype=np.float32)
    sol = lasso_batch(D, Y, 0.05)
    assert np.mean(np.asarray(sol.state.fast_path)) > 0.5 and bool(jnp.all(sol.converged))
    assert kkt(D.astype(np.float64), Y.astype(np.float64), np.asarray(sol.codes, np.float64), 0.05) < 1e-3
