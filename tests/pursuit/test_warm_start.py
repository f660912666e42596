"""Warm starts of the batched Lasso (``lasso_batch(..., x0=)``) and of ``encode``: the same certified solution as a
cold start, in fewer steps from a good start (the codes at a nearby lam)."""
import numpy as np
import pytest

from sparsejax.pursuit.encode import encode
from sparsejax.pursuit.lasso_batch import PATHS, lasso_batch, path_counts


def _problem(B=6, n=12, m=24, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m)).astype(np.float32)
    D /= np.linalg.norm(D, axis=0)
    return D, rng.standard_normal((B, n)).astype(np.float32)


def test_lasso_batch_warm_start_fewer_steps_same_solution():
    D, Y = _problem()
    cold = lasso_batch(D, Y, 0.3, method="homotopy")                 # the path from lam_max
    near = lasso_batch(D, Y, 0.33, method="homotopy").codes
    warm = lasso_batch(D, Y, 0.3, x0=near)
    assert np.all(np.asarray(cold.converged)) and np.all(np.asarray(warm.converged))
    np.testing.assert_allclose(np.asarray(warm.codes), np.asarray(cold.codes), atol=1e-5)
    assert path_counts(warm) == {"warm_start": 6} and warm.state.plan.method == "warm_start"
    assert np.all(np.asarray(warm.num_steps) <= 3)
    assert np.sum(np.asarray(warm.num_steps)) < np.sum(np.asarray(cold.num_steps))
    # a poor start (random codes) changes nothing but the route: the homotopy takes over and certifies
    bad = lasso_batch(D, Y, 0.3, x0=np.random.default_rng(1).standard_normal((6, 24)).astype(np.float32))
    assert np.all(np.asarray(bad.converged))
    np.testing.assert_allclose(np.asarray(bad.codes), np.asarray(cold.codes), atol=1e-5)
    assert set(np.asarray(bad.state.path).tolist()) <= {PATHS.index("warm_start"), PATHS.index("homotopy"),
                                                         PATHS.index("fallback")}


def test_encode_warm_start_fista_fewer_iterations():
    """encode passes x0 row by row to the vmapped pursuit: FISTA from the solution at a nearby lam stops sooner
    at the same objective (to its tolerance)."""
    D, Y = _problem(B=4, seed=2)
    cold = encode(D, Y, "fista", lam=0.3, tol=1e-6, max_iter=3000)
    near = encode(D, Y, "fista", lam=0.33, tol=1e-6, max_iter=3000).codes
    warm = encode(D, Y, "fista", lam=0.3, tol=1e-6, max_iter=3000, x0=near)
    assert np.all(np.asarray(cold.converged)) and np.all(np.asarray(warm.converged))
    assert np.all(np.asarray(warm.num_steps) < np.asarray(cold.num_steps))
    np.testing.assert_allclose(np.asarray(warm.objective), np.asarray(cold.objective), rtol=1e-4)


@pytest.mark.slow
def test_encode_lasso_and_fista_method_warm_start():
    D, Y = _problem(B=5, seed=3)
    cold = encode(D, Y, "lasso", lam=0.2)
    near = encode(D, Y, "lasso", lam=0.22).codes
    warm = encode(D, Y, "lasso", lam=0.2, x0=near)
    assert warm.state.route.solver == "lasso_batch" and "warm_start" in warm.state.route.reason
    np.testing.assert_allclose(np.asarray(warm.codes), np.asarray(cold.codes), atol=1e-5)
    assert np.sum(np.asarray(warm.num_steps)) < np.sum(np.asarray(cold.num_steps))
    fc = lasso_batch(D, Y, 0.2, method="fista")
    fw = lasso_batch(D, Y, 0.2, method="fista", x0=near)
    assert np.all(np.asarray(fw.converged))
    assert np.sum(np.asarray(fw.num_steps)) < np.sum(np.asarray(fc.num_steps))
    np.testing.assert_allclose(np.asarray(fw.objective), np.asarray(fc.objective), rtol=1e-4)


def test_warm_start_arguments_are_checked():
    D, Y = _problem(B=2)
    with pytest.raises(ValueError, match="x0"):
        lasso_batch(D, Y, 0.3, x0=np.zeros((3, 24), np.float32))
    with pytest.raises(ValueError, match="x0"):
        lasso_batch(D, Y, 0.3, x0=np.full((2, 24), np.nan, np.float32))
    with pytest.raises(ValueError, match="x0"):
        lasso_batch(D, Y, 0.3, prox="nonneg_soft", x0=-np.ones((2, 24), np.float32))
    with pytest.raises(ValueError, match="x0"):
        encode(D, Y, "omp", k=2, x0=np.zeros((2, 24), np.float32))
    with pytest.raises(ValueError, match="x0"):
        encode(D, Y, "fista", lam=0.3, x0=np.zeros((2, 23), np.float32))
