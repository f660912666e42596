"""OMP and Batch-OMP (Pati et al. 1993; Rubinstein, Zibulevsky & Elad 2008): agreement with scikit-learn,
LS optimality, exact recovery, jit/vmap, no retracing, errors raised before tracing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import orthogonal_mp_gram

from sparsejax.pursuit.omp import omp, omp_batch


def _problem(dtype, n=24, m=48, B=40, s=4, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    A = np.zeros((B, m))
    for i in range(B):
        S = rng.choice(m, s, replace=False)
        A[i, S] = rng.choice([-1, 1], s) * rng.uniform(0.5, 1.5, s)
    Y = A @ D.T + noise * rng.standard_normal((B, n))
    return D.astype(dtype), Y.astype(dtype), A


def _sk(D, Y, **kw):
    D64, Y64 = D.astype(np.float64), Y.astype(np.float64)
    return orthogonal_mp_gram(D64.T @ D64, (Y64 @ D64).T, norms_squared=(Y64 ** 2).sum(1), **kw).T


def _vomp(D, Y, **kw):
    return jax.vmap(lambda y: omp(D, y, **kw))(jnp.asarray(Y))


def _tols(dtype):
    return 2e-4 if dtype == np.float32 else 1e-9


def test_k_stop_matches_sklearn(dtype):
    D, Y, _ = _problem(dtype)
    k = 6
    ref = _sk(D, Y, n_nonzero_coefs=k)
    for sol in (omp_batch(D, Y, k=k), _vomp(D, Y, k=k), _vomp(D, Y, k=k, gram=D.T @ D)):
        codes = np.asarray(sol.codes)
        assert codes.dtype == dtype
        np.testing.assert_array_equal(codes != 0, ref != 0)
        np.testing.assert_allclose(codes, ref, atol=_tols(dtype) * 10)
        assert np.all(np.asarray(sol.num_steps) == k) and np.all(np.asarray(sol.converged))
        # least-squares optimality on the support: D_S^T (y - D_S a_S) = 0
        R = Y.astype(np.float64) - codes.astype(np.float64) @ D.T.astype(np.float64)
        G = (R @ D.astype(np.float64)) * (codes != 0)
        assert np.abs(G).max() < (1e-4 if dtype == np.float32 else 1e-10)
        np.testing.assert_allclose(np.asarray(sol.error), np.linalg.norm(R, axis=1), rtol=1e-2, atol=1e-3)


def test_tol_stop_matches_sklearn(dtype):
    # noise 0.01 * sqrt(24) ~ 0.05: tol = 0.15 sits well above the noise and below the signal atoms
    D, Y, _ = _problem(dtype, seed=1)
    tol = 0.15
    ref = _sk(D, Y, tol=tol ** 2)
    kmax = int((ref != 0).sum(1).max())
    for sol in (omp_batch(D, Y, tol=tol), omp_batch(D, Y, tol=tol, k=kmax), _vomp(D, Y, tol=tol)):
        codes = np.asarray(sol.codes)
        np.testing.assert_array_equal(codes != 0, ref != 0)
        np.testing.assert_allclose(codes, ref, atol=_tols(dtype) * 10)
        assert np.all(np.asarray(sol.converged))
        assert np.all(np.asarray(sol.error) <= tol * (1 + 1e-5))
        np.testing.assert_array_equal(np.asarray(sol.num_steps), (ref != 0).sum(1))


def test_omp_equals_omp_batch_and_chunks():
    D, Y, _ = _problem(np.float32, B=37, seed=2)
    a = omp_batch(D, Y, k=5)
    b = _vomp(D, Y, k=5)
    c = omp_batch(D, Y, k=5, chunk=8)       # 37 = 4 * 8 + 5: padded last chunk
    d = omp_batch(D, Y, k=5, gram=D.T @ D)
    for other in (b, c, d):
        np.testing.assert_allclose(np.asarray(a.codes), np.asarray(other.codes), atol=1e-5)
        np.testing.assert_array_equal(np.asarray(a.num_steps), np.asarray(other.num_steps))
    np.testing.assert_array_equal(np.asarray(a.state.support), np.asarray(b.state.support))


def test_large_k_float64(x64):
    # k close to n: long supports stay accurate (inverse-Cholesky update)
    D, Y, _ = _problem(np.float64, n=24, m=48, B=10, s=3, noise=0.02, seed=3)
    ref = _sk(D, Y, n_nonzero_coefs=20)
    sol = omp_batch(D, Y, k=20)
    np.testing.assert_array_equal(np.asarray(sol.codes) != 0, ref != 0)
    np.testing.assert_allclose(np.asarray(sol.codes), ref, atol=1e-8)


def test_exact_recovery_below_coherence_bound(dtype):
    """Noiseless recovery (Tropp 2004, theorem 3.5): ||a||_0 < (1 + 1/mu)/2 => OMP finds a exactly."""
    rng = np.random.default_rng(4)
    from scipy.linalg import hadamard
    n = 16
    D = np.concatenate([np.eye(n), hadamard(n) / np.sqrt(n)], 1)      # mu = 1/sqrt(n)
    m = 2 * n
    mu = np.abs(D.T @ D - np.eye(m)).max()
    s = int(np.ceil((1 + 1 / mu) / 2)) - 1
    assert s >= 2
    B = 20
    A = np.zeros((B, m))
    for i in range(B):
        S = rng.choice(m, s, replace=False)
        A[i, S] = rng.choice([-1, 1], s) * rng.uniform(0.2, 1.0, s)
    D, Y = D.astype(dtype), (A @ D.T).astype(dtype)
    tol = 1e-3 if dtype == np.float32 else 1e-7
    for sol in (omp_batch(D, Y, k=s), _vomp(D, Y, tol=tol)):
        np.testing.assert_array_equal(np.asarray(sol.codes) != 0, A != 0)
        np.testing.assert_allclose(np.asarray(sol.codes), A, atol=10 * tol)


def test_exact_fit_and_zero_signal_never_repeat_atoms():
    # identity dictionary: y has 2 nonzeros, ask for 5 atoms -> stops after the exact fit
    D = np.eye(6, dtype=np.float32)
    y = np.array([0, 2.0, 0, -1.0, 0, 0], np.float32)
    for sol in (omp(D, y, k=5), jax.tree_util.tree_map(lambda x: x[0], omp_batch(D, y[None], k=5))):
        np.testing.assert_allclose(np.asarray(sol.codes), y)
        sup = np.asarray(sol.state.support)
        assert len(set(sup[sup >= 0])) == (sup >= 0).sum() == int(sol.num_steps) <= 5
        assert bool(sol.converged) and float(sol.error) == 0.0
    # exact ties go to the lowest index (as numpy.argmax)
    y2 = np.array([0, 1.0, 0, 1.0, 0, 0], np.float32)
    assert int(omp_batch(D, y2[None], k=1).state.support[0, 0]) == 1
    assert int(omp(D, y2, k=1).state.support[0]) == 1
    z = omp_batch(D, np.zeros((2, 6), np.float32), k=3)
    assert np.all(np.asarray(z.codes) == 0) and np.all(np.asarray(z.num_steps) == 0)
    assert np.all(np.asarray(omp(D, np.zeros(6, np.float32), k=3).codes) == 0)


def test_nonneg_omp():
    D, _, _ = _problem(np.float64, seed=5)
    a = np.zeros(48)
    a[[3, 17, 30]] = [1.0, 0.7, 1.3]
    y = D @ a
    sol = omp(D.astype(np.float32), y.astype(np.float32), k=3, prox="nonneg_soft")
    codes = np.asarray(sol.codes)
    assert codes.min() >= 0
    np.testing.assert_allclose(codes, a, atol=1e-4)


def test_jit_vmap_and_no_retrace():
    D, Y, _ = _problem(np.float32, B=8, seed=6)
    traces = []

    @jax.jit
    def f(D, y, tol):
        traces.append(1)
        return omp(D, y, k=6, tol=tol).codes

    out = f(D, Y[0], 0.1)
    np.testing.assert_allclose(np.asarray(out), np.asarray(omp(D, Y[0], k=6, tol=0.1).codes), atol=1e-6)
    f(D + 0.01, Y[1], 0.2)                        # new dictionary values, signal and tol: same trace
    assert len(traces) == 1
    # the library's own jitted cores do not retrace either
    import importlib
    omp_mod = importlib.import_module("sparsejax.pursuit.omp")   # the package re-exports the function omp
    omp_batch(D, Y, k=4)
    n0 = omp_mod._omp_batch_jit._cache_size()
    omp_batch(D * 1.01, Y[::-1], k=4)
    assert omp_mod._omp_batch_jit._cache_size() == n0
    omp(D, Y[0], k=4, tol=0.1)
    n1 = omp_mod._omp_jit._cache_size()
    omp(D * 0.99, Y[1], k=4, tol=0.3)
    assert omp_mod._omp_jit._cache_size() == n1
    # vmap over dictionaries as well as signals
    Ds = jnp.stack([D, D[::-1]])
    codes = jax.vmap(lambda D, y: omp(D, y, k=3).codes)(Ds, Y[:2])
    np.testing.assert_allclose(np.asarray(codes[1]), np.asarray(omp(D[::-1], Y[1], k=3).codes), atol=1e-6)


def test_bad_inputs_raise_before_tracing():
    D, Y, _ = _problem(np.float32, B=3)
    with pytest.raises(ValueError, match="k"):
        omp(D, Y[0], k=49)                         # more than m atoms
    with pytest.raises(ValueError, match="k"):
        omp_batch(D, Y, k=0)
    with pytest.raises(TypeError, match="k"):
        omp(D, Y[0], k=2.0)
    with pytest.raises(ValueError, match="tol"):
        omp(D, Y[0], tol=-0.1)
    with pytest.raises(ValueError, match="tol"):
        omp_batch(D, Y, tol=-1.0)
    with pytest.raises(TypeError, match="y"):
        omp(D, np.arange(24), k=2)
    with pytest.raises(TypeError, match="Y"):
        omp_batch(D, np.ones((3, 24), np.int32), k=2)
    with pytest.raises(TypeError):
        omp(D.astype(np.int32), Y[0], k=2)
    with pytest.raises(ValueError, match="y"):
        omp(D, Y[0, :10], k=2)
    with pytest.raises(ValueError, match="Y"):
        omp_batch(D, Y[:, :10], k=2)
    with pytest.raises(ValueError, match="gram"):
        omp(D, Y[0], k=2, gram=np.eye(5, dtype=np.float32))
    with pytest.raises(ValueError, match="chunk"):
        omp_batch(D, Y, k=2, chunk=0)


def test_default_k_clipped_to_the_dictionary():
    """Default k = max(1, n // 10) is clipped to min(n, m): a 2-atom dictionary in 40 dims runs (k = 2, an exact
    fit of a 2-atom signal); an explicit k above m still raises, before tracing."""
    from sparsejax.pursuit.encode import encode
    rng = np.random.default_rng(7)
    D = rng.standard_normal((40, 2)).astype(np.float32)
    D /= np.linalg.norm(D, axis=0)
    A = np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0]], np.float32)
    Y = A @ D.T
    for sol in (omp_batch(D, Y), _vomp(D, Y), encode(D, Y, method="omp")):
        np.testing.assert_allclose(np.asarray(sol.codes), A, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(sol.num_steps), [2, 1, 1])
        assert np.all(np.asarray(sol.converged))
    assert omp(D, Y[0]).state.support.shape == (2,)          # k = min(40 // 10, m) = 2 slots
    with pytest.raises(ValueError, match="k must be <= the number of atoms"):
        omp_batch(D, Y, k=3)
    with pytest.raises(ValueError, match="k must be <= the number of atoms"):
        omp(D, Y[0], k=3)
