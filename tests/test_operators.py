"""The operator interface (sparsejax.operators) on every operator: the adjoint identity <D a, y> = <a, D^T y>,
normal = adjoint(apply), ||D||_2^2 against the dense matrix, the one power iteration (both start vectors) and the
shifted normal solver against a direct solve."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax.operators import STARTS, shifted_normal_solver

# (boundary, stride, signal spatial size): every boundary, with and without stride, 1-D and 2-D
CONV_CASES = [
    ("circular", 1, (12,)), ("circular", 2, (12,)), ("full", 1, (12,)), ("full", 2, (13,)), ("valid", 1, (12,)),
    ("valid", 2, (12,)), ("same", 1, (12,)), ("same", 2, (11,)),
    ("circular", 1, (8, 10)), ("full", 2, (11, 9)), ("valid", 1, (7, 8)), ("same", 2, (9, 8)),
]


def _conv(boundary, stride, N, M=3, C=2, seed=0):
    rng = np.random.default_rng(seed)
    k = (4,) if len(N) == 1 else (3, 4)
    return sj.Conv(jnp.asarray(rng.standard_normal((M, C) + k)), (C,) + N, stride=stride, boundary=boundary)


def _dense(n, m, seed=0):
    return sj.Dense(jnp.asarray(np.random.default_rng(seed).standard_normal((n, m))))


def _operators():
    ops = [pytest.param(lambda: _dense(6, 9), id="dense-6x9"), pytest.param(lambda: _dense(9, 6), id="dense-9x6")]
    ops += [pytest.param(lambda b=b, s=s, N=N: _conv(b, s, N), id=f"conv-{b}-s{s}-{len(N)}d") for b, s, N in CONV_CASES]
    ops += [pytest.param(lambda: sj.BatchConv(_conv("full", 2, (13,)), 3), id="batchconv-full-s2"),
            pytest.param(lambda: _dense(6, 9).T, id="adjoint-of-dense"),
            pytest.param(lambda: _conv("valid", 2, (12,)).T, id="adjoint-of-conv")]
    return ops


def _matrix(op):
    """The explicit matrix of an operator: its columns are apply(e_j)."""
    n = int(np.prod(op.code_shape))
    eye = jnp.eye(n, dtype=op.dtype).reshape((n,) + tuple(op.code_shape))
    return np.asarray(jax.vmap(op.apply)(eye)).reshape(n, -1).T


@pytest.mark.parametrize("make", _operators())
def test_adjoint_identity(x64, make):
    op = make()
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    a = jax.random.normal(k1, op.code_shape, op.dtype)
    y = jax.random.normal(k2, op.signal_shape, op.dtype)
    lhs = float(jnp.sum(op.apply(a) * y))
    rhs = float(jnp.sum(a * op.adjoint(y)))
    assert op.apply(a).shape == tuple(op.signal_shape) and op.adjoint(y).shape == tuple(op.code_shape)
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("make", _operators())
def test_normal_is_adjoint_of_apply(x64, make):
    op = make()
    a = jax.random.normal(jax.random.PRNGKey(2), op.code_shape, op.dtype)
    np.testing.assert_allclose(np.asarray(op.normal(a)), np.asarray(op.adjoint(op.apply(a))), rtol=1e-12, atol=1e-12)
    A = _matrix(op)
    np.testing.assert_allclose(np.asarray(op.normal(a)).ravel(), A.T @ A @ np.asarray(a).ravel(), rtol=1e-9,
                               atol=1e-9)


@pytest.mark.parametrize("make", _operators())
def test_lipschitz_is_largest_singular_value_squared(x64, make):
    op = make()
    exact = np.linalg.norm(_matrix(op), 2) ** 2
    assert float(op.lipschitz(num_iter=2000)) == pytest.approx(exact, rel=1e-6)


def test_power_iteration_both_starts(x64):
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    A = jnp.asarray(Q @ np.diag([5.0, 2.0, 1.0, 0.5, 0.1, 0.0]) @ Q.T)
    normal = lambda v: A @ v  # noqa: E731
    assert set(STARTS) == {"random", "fixed"}
    rand = sj.power_iteration(normal, (6,), jnp.float64, num_iter=200)
    fixed = sj.power_iteration(normal, (6,), jnp.float64, num_iter=200, start="fixed")
    other_key = sj.power_iteration(normal, (6,), jnp.float64, num_iter=200, key=jax.random.PRNGKey(5))
    for est in (rand, fixed, other_key):
        assert float(est) == pytest.approx(5.0, rel=1e-12)
    # from below, step by step
    few = [float(sj.power_iteration(normal, (6,), jnp.float64, num_iter=t, start="fixed")) for t in (1, 2, 4)]
    assert few[0] <= few[1] <= few[2] <= 5.0 + 1e-12
    # the fixed start needs no PRNG: jittable with the iteration count static, and differentiable
    jitted = jax.jit(lambda B: sj.power_iteration(lambda v: B @ v, (6,), jnp.float64, 200, start="fixed"))
    assert float(jitted(2.0 * A)) == pytest.approx(10.0, rel=1e-12)
    g = jax.grad(lambda s: sj.power_iteration(lambda v: s * (A @ v), (6,), jnp.float64, 200, start="fixed"))(1.0)
    assert float(g) == pytest.approx(5.0, rel=1e-8)
    with pytest.raises(ValueError, match="start"):
        sj.power_iteration(normal, (6,), jnp.float64, start="ones")
    with pytest.raises(ValueError, match="key"):
        sj.power_iteration(normal, (6,), jnp.float64, key=jax.random.PRNGKey(0), start="fixed")


def test_conv_lipschitz_uses_both_starts(x64):
    D = _conv("full", 2, (13,))
    exact = np.linalg.norm(_matrix(D), 2) ** 2
    fixed = float(D.lipschitz(num_iter=2000))
    rand = float(D.lipschitz(num_iter=2000, key=jax.random.PRNGKey(4)))
    assert fixed == pytest.approx(exact, rel=1e-6) and rand == pytest.approx(exact, rel=1e-6)
    start = sj.power_iteration(D.normal, D.code_shape, D.dtype, 2000, start="fixed")
    assert fixed == float(start)                      # Conv's default is the library's fixed start


@pytest.mark.parametrize("n,m", [(9, 6), (6, 9)])
def test_shifted_normal_solver_dense(x64, n, m):
    """m <= n: Cholesky of D^T D + sigma I; m > n: Woodbury with D D^T + sigma I; both exact."""
    D = _dense(n, m, seed=5)
    q = jax.random.normal(jax.random.PRNGKey(6), (m,), jnp.float64)
    A = np.asarray(D.atoms)
    for sigma in (0.3, 4.0):
        x = shifted_normal_solver(D, sigma, cg_iter=1)(q, jnp.zeros(m))
        ref = np.linalg.solve(A.T @ A + sigma * np.eye(m), np.asarray(q))
        np.testing.assert_allclose(np.asarray(x), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("boundary,stride,N", [("circular", 1, (12,)), ("full", 2, (13,)), ("valid", 1, (7, 8))])
def test_shifted_normal_solver_conv_cg(x64, boundary, stride, N):
    """A matrix-free operator: conjugate gradients, exact after as many steps as unknowns, warm start kept."""
    D = _conv(boundary, stride, N, seed=7)
    A = _matrix(D)
    n = A.shape[1]
    q = jax.random.normal(jax.random.PRNGKey(8), D.code_shape, jnp.float64)
    sigma = 0.5
    ref = np.linalg.solve(A.T @ A + sigma * np.eye(n), np.asarray(q).ravel())
    x = shifted_normal_solver(D, sigma, cg_iter=n)(q, jnp.zeros(D.code_shape))
    np.testing.assert_allclose(np.asarray(x).ravel(), ref, rtol=1e-8, atol=1e-8)
    # started at the solution, zero steps leave it there
    x0 = jnp.asarray(ref.reshape(D.code_shape))
    np.testing.assert_allclose(np.asarray(shifted_normal_solver(D, sigma, cg_iter=0)(q, x0)), np.asarray(x0))
