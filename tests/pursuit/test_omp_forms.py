"""The OMP forms scikit-learn has: the Gram-only entry point (``omp_gram`` vs ``orthogonal_mp_gram``), the path
(``return_path``), k above rank(D) stopping at linear dependence, and the check that a supplied Gram matches D."""
import warnings

import jax
import numpy as np
import pytest

from sparsejax.pursuit.omp import check_gram_matches, least_squares_path, omp, omp_batch, omp_gram
from sparsejax.solve import Status

sklm = pytest.importorskip("sklearn.linear_model")


def _problem(n=12, m=20, B=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    Y = rng.standard_normal((B, n))
    return D.astype(dtype), Y.astype(dtype)


def test_omp_gram_matches_sklearn_orthogonal_mp_gram_and_omp_batch(x64):
    """omp_gram(G, D^T Y, ||y||^2) gives scikit-learn's orthogonal_mp_gram codes, the same result as omp_batch on
    D and Y, and its error is the true residual norm."""
    D, Y = _problem()
    G, DtY, yn2 = D.T @ D, Y @ D, np.sum(Y * Y, axis=1)
    ref = sklm.orthogonal_mp_gram(G, DtY.T, n_nonzero_coefs=4).T
    sol = omp_gram(G, DtY, yn2, k=4)
    np.testing.assert_allclose(np.asarray(sol.codes), ref, atol=1e-10)
    np.testing.assert_allclose(np.asarray(sol.codes), np.asarray(omp_batch(D, Y, k=4).codes), atol=1e-10)
    np.testing.assert_allclose(np.asarray(sol.error), np.linalg.norm(Y - ref @ D.T, axis=1), rtol=1e-8)


@pytest.mark.slow
def test_omp_gram_tol_and_single_signal(x64):
    """By tol (a norm here, scikit-learn's squared), and one signal given as (m,) and a scalar ||y||^2."""
    D, Y = _problem()
    G, DtY, yn2 = D.T @ D, Y @ D, np.sum(Y * Y, axis=1)
    ref = sklm.orthogonal_mp_gram(G, DtY.T, n_nonzero_coefs=4).T
    tol = 0.5                                                          # a residual norm; scikit-learn's tol is its square
    ref_t = sklm.orthogonal_mp_gram(G, DtY.T, tol=tol ** 2, norms_squared=yn2).T
    sol_t = omp_gram(G, DtY, yn2, tol=tol)
    np.testing.assert_allclose(np.asarray(sol_t.codes), ref_t, atol=1e-10)
    assert np.all(np.asarray(sol_t.error) <= tol) and np.all(np.asarray(sol_t.converged))
    one = omp_gram(G, DtY[1], yn2[1], k=4)                             # one signal: unbatched shapes
    assert one.codes.shape == (20,) and one.num_steps.shape == ()
    np.testing.assert_allclose(np.asarray(one.codes), ref[1], atol=1e-10)


def test_return_path_matches_sklearn(x64):
    """return_path: row j = least squares on the first j + 1 chosen atoms, as scikit-learn's path, for omp,
    omp_batch (unrolled kernel) and omp_gram; the last row is the codes."""
    D, Y = _problem(seed=1)
    k = 4
    ref = sklm.orthogonal_mp_gram(D.T @ D, D.T @ Y.T, n_nonzero_coefs=k, return_path=True)   # (m, B, k)
    ref = np.transpose(ref, (1, 2, 0))                                                       # (B, k, m)
    sb = omp_batch(D, Y, k=k, return_path=True)
    sg = omp_gram(D.T @ D, Y @ D, np.sum(Y * Y, 1), k=k, return_path=True)
    for path in (sb.state.path, sg.state.path):
        np.testing.assert_allclose(np.asarray(path), ref, atol=1e-10)
    np.testing.assert_allclose(np.asarray(sb.state.path[:, -1]), np.asarray(sb.codes), atol=1e-10)
    single = sklm.orthogonal_mp(D, Y[0], n_nonzero_coefs=k, return_path=True).T                 # (k, m)
    np.testing.assert_allclose(np.asarray(sb.state.path[0]), single, atol=1e-10)


@pytest.mark.slow
def test_path_rows_after_stop_repeat_final_codes_float32():
    """A signal that stops early (exact fit after 2 atoms) keeps its final codes in the later path rows; the
    single-signal omp gives the same path as scikit-learn."""
    Dr, Yr = _problem(seed=1)
    with jax.enable_x64(True):
        ref = sklm.orthogonal_mp(Dr, Yr[2], n_nonzero_coefs=4, return_path=True).T
        np.testing.assert_allclose(np.asarray(omp(Dr, Yr[2], k=4, return_path=True).state.path), ref, atol=1e-10)
    D = np.eye(4, dtype=np.float32)
    Y = np.array([[0.0, 2.0, 0.0, -1.0], [1.0, 1.0, 1.0, 1.0]], np.float32)
    path = np.asarray(omp_batch(D, Y, k=3, return_path=True).state.path)
    np.testing.assert_allclose(path[0, 1], Y[0])
    np.testing.assert_allclose(path[0, 2], Y[0])
    assert np.count_nonzero(path[1, 0]) == 1 and np.count_nonzero(path[1, 2]) == 3
    # closed form: G = [[1, .5], [.5, 1]], D^T y = (1, 1): one atom 1, both atoms G^{-1} (1, 1) = (2/3, 2/3);
    # an unused third slot changes nothing
    G = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
    lsp = least_squares_path(G, np.array([1.0, 1.0, 5.0], np.float32), np.array([True, True, False]))
    np.testing.assert_allclose(np.asarray(lsp), [[1, 0, 0], [2 / 3, 2 / 3, 0], [2 / 3, 2 / 3, 0]], atol=1e-6)


def test_k_above_n_stops_at_exact_fit(dtype=np.float32):
    """n < k <= m is allowed: after n atoms the fit is exact, the pursuit stops there (early_stop) and converged."""
    D, Y = _problem(n=4, m=7, B=2, seed=2, dtype=dtype)
    sb = omp_batch(D, Y, k=6)
    atol = 1e-4 if dtype == np.float32 else 1e-10
    assert np.all(np.asarray(sb.num_steps) == 4)
    assert np.all(np.asarray(sb.state.early_stop))
    assert np.all(np.asarray(sb.converged))
    assert np.all(np.asarray(sb.status) == Status.CONVERGED)
    np.testing.assert_allclose(np.asarray(sb.codes) @ D.T, Y, atol=atol)


@pytest.mark.slow
def test_rank_deficient_dictionary_stops_like_sklearn(x64):
    """D of rank 3 (n = 6), y outside its range, k = 5: the fourth atom is linearly dependent on the support, so
    the pursuit stops after 3 (scikit-learn warns and stops there too) with the same codes; the residual is not
    zero, so the status is MAX_STEPS and early_stop says why."""
    rng = np.random.default_rng(3)
    D = rng.standard_normal((6, 3)) @ rng.standard_normal((3, 9))
    D /= np.linalg.norm(D, axis=0)
    Y = rng.standard_normal((2, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = sklm.orthogonal_mp(D, Y.T, n_nonzero_coefs=5).T
    for sol in (omp_batch(D, Y, k=5), omp_gram(D.T @ D, Y @ D, np.sum(Y * Y, 1), k=5),
                jax.vmap(lambda y: omp(D, y, k=5))(Y)):
        np.testing.assert_allclose(np.asarray(sol.codes), ref, atol=1e-8)
        assert np.all(np.asarray(sol.num_steps) == 3)
        assert np.all(np.asarray(sol.state.early_stop))
        assert not np.any(np.asarray(sol.converged))
        assert np.all(np.asarray(sol.status) == Status.MAX_STEPS)


def test_supplied_gram_is_checked_against_D():
    """A Gram of another dictionary is refused before compilation, naming gram; D^T D in either precision passes."""
    D, Y = _problem(seed=4)
    D32, Y32 = D.astype(np.float32), Y.astype(np.float32)
    G_other = _problem(seed=5)[0].T @ _problem(seed=5)[0]
    with pytest.raises(ValueError, match="gram does not match"):
        omp_batch(D32, Y32, k=3, gram=G_other.astype(np.float32))
    with pytest.raises(ValueError, match="gram does not match"):
        omp(D32, Y32[0], k=3, gram=2.0 * (D32.T @ D32))
    check_gram_matches((D.T @ D).astype(np.float32), D32)             # a float64 Gram rounded to float32: fine
    sol = omp_batch(D32, Y32, k=3, gram=D.T @ D)
    np.testing.assert_allclose(np.asarray(sol.codes), np.asarray(omp_batch(D32, Y32, k=3).codes), atol=1e-5)


def test_omp_gram_rejects_bad_input():
    D, Y = _problem(seed=6, dtype=np.float32)
    G = D.T @ D
    with pytest.raises(ValueError, match="symmetric"):
        omp_gram(G + np.triu(np.ones_like(G), 1), Y @ D, np.sum(Y * Y, 1), k=2)
    with pytest.raises(ValueError, match="Dty"):
        omp_gram(G, Y @ D[:, :5], np.sum(Y * Y, 1), k=2)
    with pytest.raises(ValueError, match="ynorm2"):
        omp_gram(G, Y @ D, np.sum(Y * Y), k=2)
    with pytest.raises(ValueError, match="ynorm2"):
        omp_gram(G, Y @ D, -np.ones(3, np.float32), k=2)
    with pytest.raises(ValueError, match="k must be <= the number of atoms"):
        omp_gram(G, Y @ D, np.sum(Y * Y, 1), k=21)
    with pytest.raises(ValueError, match="return_path"):
        omp_batch(D, Y, k=2, prox="nonneg_soft", return_path=True)
