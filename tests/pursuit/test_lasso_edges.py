"""Edges of the batched Lasso front door and the dense learners (issue 13): tiny dictionaries, lam = 0, large
supports, the path report, encode's own cost and spellings, NumPy input and dtype-independent initialisation."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax import _validate as V
from sparsejax.learn import dense as L
from sparsejax.pursuit.lasso_batch import PATHS, lasso_batch, path_counts, reason_counts


def unit_atoms(rng, n, m, dtype=np.float32):
    D = rng.standard_normal((n, m))
    return (D / np.linalg.norm(D, axis=0)).astype(dtype)


def lasso_kkt(D, Y, A, lam):
    """Largest violation of the Lasso KKT conditions (float64), in units of max(lam, 1)."""
    D, Y, A = (np.asarray(x, np.float64) for x in (D, Y, A))
    G = (Y - A @ D.T) @ D
    on = A != 0
    off = np.where(on, 0.0, np.abs(G) - lam)
    onv = np.where(on, np.abs(G - lam * np.sign(A)), 0.0)
    return max(off.max(), onv.max(), 0.0) / max(lam, 1.0)


# -- valid input that used to raise or never certify ------------------------------------------------------------

def test_small_dictionaries_every_front_door():
    # fewer than 6 atoms: the default max_new (6) used to be checked against m and raise
    rng = np.random.default_rng(0)
    D, Y = unit_atoms(rng, 8, 4), rng.standard_normal((5, 8)).astype(np.float32)
    sol = lasso_batch(D, Y, 0.1)
    assert bool(jnp.all(sol.converged)) and lasso_kkt(D, Y, sol.codes, 0.1) < 1e-4
    enc = sj.encode(D, Y, method="lasso", lam=0.1)
    np.testing.assert_allclose(np.asarray(enc.codes), np.asarray(sol.codes), atol=1e-6)
    with pytest.raises(ValueError, match="max_new"):          # an explicit value out of range still raises
        lasso_batch(D, Y, 0.1, max_new=5)
    # online learning with Lasso codes over a 3-atom dictionary
    res = L.learn_dictionary(rng.standard_normal((40, 6)).astype(np.float32), 3, method="online", lam=0.1,
                             n_steps=2, batch_size=8, progress=False, return_codes=False)
    assert res.dictionary.shape == (6, 3) and res.loop.status == "completed"


# shapes shared with the tests above and below (B, n, m): one compilation of lasso_batch each
@pytest.mark.parametrize("B, n, m", [(5, 8, 4), (12, 16, 32)])
def test_lam_zero_least_squares(B, n, m):
    # lam = 0: the Lasso is least squares. Tall D: the unique LS fit, certified (the gap's dual scaling used to
    # divide by lam and report the exact answer unconverged). Wide D: an exact fit (P* = 0), reported honestly.
    rng = np.random.default_rng(1)
    D, Y = unit_atoms(rng, n, m), rng.standard_normal((B, n)).astype(np.float32)
    sol = lasso_batch(D, Y, 0.0)
    assert not bool(jnp.any(sol.diverged))
    A = np.asarray(sol.codes, np.float64)
    R = np.asarray(Y, np.float64) - A @ np.asarray(D, np.float64).T
    if n > m:
        ls = np.linalg.lstsq(np.asarray(D, np.float64), np.asarray(Y, np.float64).T, rcond=None)[0].T
        np.testing.assert_allclose(A, ls, atol=1e-3)
        assert bool(jnp.all(sol.converged)) and not bool(jnp.any(sol.state.fallback))
        assert np.all(np.asarray(sol.error) == 0.0)
    else:
        # P* = 0: "converged" must mean P(a) = P(a) - P* within what the certificate claims (tol, float32:
        # 3e-5 relative, above the gap's rounding level gap_floor), and an (almost) exact fit
        P = 0.5 * np.sum(R * R, axis=1)
        conv = np.asarray(sol.converged)
        floor = np.asarray(sol.state.gap_floor, np.float64)
        assert np.all(P[conv] <= floor[conv] + 3e-5 * P[conv] + 1e-6)
        fit = np.linalg.norm(R, axis=1) / np.linalg.norm(np.asarray(Y, np.float64), axis=1)
        assert np.all(fit[conv] < 1e-2)
        assert np.all(np.asarray(sol.state.gap)[~conv] > floor[~conv])


def test_large_supports_take_the_homotopy_and_report_it():
    # Gaussian-noise signals: Lasso supports near n atoms. The old default max_active = min(32, 3n/4, m) sent every
    # such signal to the FISTA fallback; the exact homotopy now holds them, and the result says so.
    rng = np.random.default_rng(2)
    D, Y = unit_atoms(rng, 16, 32), rng.standard_normal((12, 16)).astype(np.float32)
    sol = lasso_batch(D, Y, 0.05)
    nnz = np.sum(np.asarray(sol.codes) != 0, axis=1)
    assert nnz.max() > (3 * 16) // 4                           # beyond the old max_active
    assert bool(jnp.all(sol.converged)) and lasso_kkt(D, Y, sol.codes, 0.05) < 1e-4
    counts = path_counts(sol)
    assert sum(counts.values()) == 12 and counts.get("fallback", 0) == 0
    assert set(np.asarray(sol.state.path).tolist()) <= {PATHS.index("guess"), PATHS.index("homotopy")}
    assert sol.state.plan.method == "guess" and "max_active=16" in sol.state.plan.reason
    assert reason_counts(sol) == {"certified": 12}
    # every signal's gap is reported and bounded by its certificate
    gap, obj = np.asarray(sol.state.gap), np.asarray(sol.objective)
    assert np.all(np.isfinite(gap)) and np.all(gap <= 3e-5 * obj + np.asarray(sol.state.gap_floor))


@pytest.mark.slow  # a second compilation (another max_active): kept out of CI
def test_over_max_active_reported():
    rng = np.random.default_rng(2)
    D, Y = unit_atoms(rng, 16, 32), rng.standard_normal((12, 16)).astype(np.float32)
    small = lasso_batch(D, Y, 0.05, max_active=4, fallback_iter=50)
    assert path_counts(small).get("fallback", 0) > 0 and reason_counts(small).get("over_max_active", 0) > 0
    assert bool(jnp.all(small.state.fallback == (np.asarray(small.state.path) == PATHS.index("fallback"))))


# -- encode: the same work as the solver, documented spellings, the route ----------------------------------------

def test_encode_adds_no_work_and_reports_route(monkeypatch):
    rng = np.random.default_rng(3)
    D, Y = unit_atoms(rng, 8, 4), rng.standard_normal((5, 8)).astype(np.float32)
    calls = []
    real = V.check_finite
    monkeypatch.setattr(V, "check_finite", lambda name, x: (calls.append(name), real(name, x))[1])
    sol = sj.encode(D, Y, method="lasso", lam=0.2)
    assert calls.count("Y") == 1                               # one host round trip for Y, not two
    ref = lasso_batch(D, Y, 0.2)
    np.testing.assert_array_equal(np.asarray(sol.codes), np.asarray(ref.codes))
    route = sol.state.route
    assert (route.method, route.solver) == ("lasso", "lasso_batch") and "guess" in route.reason
    assert np.array_equal(np.asarray(sol.state.fallback), np.asarray(ref.state.fallback))   # solver state reachable
    assert path_counts(sol) == path_counts(ref)
    assert sj.encode(D, Y, method="threshold", lam=0.2).state.route.solver == "vmap(thresholding)"


def test_encode_nonneg_spelling():
    rng = np.random.default_rng(4)
    D, Y = unit_atoms(rng, 6, 10), rng.standard_normal((3, 6)).astype(np.float32)
    with pytest.warns(DeprecationWarning, match="prox='nonneg_soft'"):
        th = sj.encode(D, Y, method="threshold", lam=0.1, nonneg=True)
    ref = sj.encode(D, Y, method="threshold", lam=0.1, prox="nonneg_soft")
    np.testing.assert_array_equal(np.asarray(th.codes), np.asarray(ref.codes))
    assert float(jnp.min(th.codes)) >= 0 and float(jnp.max(th.codes)) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        off = sj.encode(D, Y, method="threshold", lam=0.1, nonneg=False, prox="soft")
        assert float(jnp.min(off.codes)) < 0
        with pytest.raises(ValueError, match="nonneg"):
            sj.encode(D, Y, method="threshold", lam=0.1, nonneg=True, prox="soft")


# -- dense learners: NumPy input, dtype-independent initialisation -----------------------------------------------

def test_online_update_numpy_and_init_dtype_independent(x64):
    rng = np.random.default_rng(5)
    D0 = unit_atoms(rng, 5, 3, np.float64)
    T = unit_atoms(rng, 5, 3, np.float64)
    stats = L.OnlineStats(np.eye(3), T, np.float64(1.0))      # NumPy statistics used to crash under fori_loop
    np.testing.assert_allclose(np.asarray(L.online_dictionary_update(D0, stats)), T, atol=1e-12)
    Y = rng.standard_normal((30, 6))
    Y[[0, 4]] = 0.0                                             # zero signals are never picked
    key = jax.random.PRNGKey(0)
    for init in ("data", "random"):
        a = np.asarray(L.init_dictionary(Y.astype(np.float32), 5, key, init))
        b = np.asarray(L.init_dictionary(Y, 5, key, init))
        np.testing.assert_allclose(a, b, atol=1e-6)
    picked = np.asarray(L.init_dictionary(Y, 5, key))
    Yn = Y / np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-300)
    assert np.all(np.max(np.abs(Yn @ picked), axis=0) > 1 - 1e-12)   # every atom is a (nonzero) signal
