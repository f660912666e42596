"""Layered BP (Papyan, Romano, Elad, JMLR 2017), its unfolded form, and projection pursuit (Sulam, Papyan, Romano,
Elad, IEEE TSP 2018): optimality conditions and reductions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.conv.operator import Conv
from sparsejax.multilayer.layered import layered_thresholding
from sparsejax.multilayer.layered_bp import layered_bp, layered_bp_unfolded, projection_pursuit
from sparsejax.multilayer.model import Chain
from sparsejax.operators import Dense


def _unit(a, axes):
    return a / np.sqrt(np.sum(a * a, axis=axes, keepdims=True))


def _dense_layers(dtype, sizes=(12, 20, 30), seed=1):
    """Unit-norm Gaussian atoms (numpy, seeded: nothing to compile)."""
    rng = np.random.default_rng(seed)
    layers = tuple(Dense(jnp.asarray(_unit(rng.standard_normal((a, b)), 0), dtype))
                   for a, b in zip(sizes[:-1], sizes[1:]))
    return layers, jnp.asarray(rng.standard_normal(sizes[0]), dtype)


def _conv_layers(dtype, seed=0):
    """(1, 16, 16) -k4 s2-> (4, 7, 7) -k3 s2-> (6, 3, 3), boundary 'full' (the CNN geometry)."""
    rng = np.random.default_rng(seed)
    f1 = jnp.asarray(_unit(rng.standard_normal((4, 1, 4, 4)), (1, 2, 3)), dtype)
    f2 = jnp.asarray(_unit(rng.standard_normal((6, 4, 3, 3)), (1, 2, 3)), dtype)
    D1 = Conv(f1, (1, 16, 16), stride=2, boundary="full")
    D2 = Conv(f2, D1.code_shape, stride=2, boundary="full")
    return (D1, D2), jnp.asarray(rng.standard_normal((1, 16, 16)), dtype)


def _layers(kind, dtype):
    return _dense_layers(dtype) if kind == "dense" else _conv_layers(dtype)


def _xis(layers, y, frac=(0.3, 0.3)):
    """xi_i = frac_i * max|D_i^T G_{i-1}| along the thresholding path (keeps every layer non-trivial)."""
    out, g = [], y
    for D, f in zip(layers, frac):
        c = np.asarray(D.adjoint(g))
        xi = f * float(np.max(np.abs(c)))
        out.append(xi)
        g = jnp.asarray(np.sign(c) * np.maximum(np.abs(c) - xi, 0))
    return tuple(out)


def _assert_lasso_kkt(D, target, g, xi, atol, nonneg=False):
    """0 in D^T(D g - target) + xi d||g||_1 (+ normal cone of g >= 0):
    c = D^T(target - D g) equals xi sign(g) on the support and |c| <= xi (nonneg: c <= xi) off it."""
    c = np.asarray(D.adjoint(target - D.apply(g)))
    g = np.asarray(g)
    on = g != 0
    assert 0 < on.sum() < g.size                    # a non-trivial support
    np.testing.assert_allclose(c[on], xi * np.sign(g[on]), atol=atol)
    off = c[~on] if nonneg else np.abs(c[~on])
    assert np.all(off <= xi + atol)
    if nonneg:
        assert np.all(g >= 0)


def _kkt_tol(dtype, xi):
    return (1e-8 if np.dtype(dtype) == np.float64 else 2e-3) * max(xi, 1.0)


# ----------------------------------------------------------------------------------------------------
# layered BP: every layer is a solved Lasso
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_layered_bp_kkt_per_layer(dtype, kind):
    layers, y = _layers(kind, dtype)
    xis = _xis(layers, y)
    tol = 1e-13 if np.dtype(dtype) == np.float64 else 1e-6
    sol = layered_bp(layers, y, xis, max_iter=20000, tol=tol)
    assert bool(sol.converged) and not bool(sol.diverged)
    prev = y
    for D, g, xi, s in zip(layers, sol.codes, xis, sol.layers):
        assert g.dtype == dtype and g.shape == tuple(D.code_shape)
        assert int(s.num_steps) > 0
        _assert_lasso_kkt(D, prev, g, xi, _kkt_tol(dtype, xi))
        r = prev - D.apply(g)
        np.testing.assert_allclose(s.objective, 0.5 * jnp.sum(r * r) + xi * jnp.sum(jnp.abs(g)),
                                   rtol=1e-4 if dtype == np.float32 else 1e-10)
        prev = g


def test_layered_bp_nonneg_kkt(x64):
    layers, y = _dense_layers(np.float64)
    xis = (0.2, jnp.linspace(0.05, 0.15, 30))           # a per-atom weight on the second layer
    sol = layered_bp(layers, y, xis, max_iter=20000, tol=1e-13, prox="nonneg_soft")
    assert bool(sol.converged)
    _assert_lasso_kkt(layers[0], y, sol.codes[0], 0.2, 1e-8, nonneg=True)
    c = np.asarray(layers[1].adjoint(sol.codes[0] - layers[1].apply(sol.codes[1])))
    g, w = np.asarray(sol.codes[1]), np.asarray(xis[1])
    on = g > 0
    assert 0 < on.sum() < g.size
    np.testing.assert_allclose(c[on], w[on], atol=1e-8)
    assert np.all(c[~on] <= w[~on] + 1e-8)


def test_layered_bp_reports_non_convergence(x64):
    layers, y = _dense_layers(np.float64)
    sol = layered_bp(layers, y, _xis(layers, y), max_iter=3, tol=1e-14)
    assert not bool(sol.converged)
    assert all(int(s.num_steps) == 3 and not bool(s.converged) for s in sol.layers)


# ----------------------------------------------------------------------------------------------------
# unfolded layered BP
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_unfolded_large_T_agrees_with_layered_bp(x64, kind):
    layers, y = _layers(kind, np.float64)
    xis = _xis(layers, y)
    ref = layered_bp(layers, y, xis, max_iter=20000, tol=1e-14)
    assert bool(ref.converged)
    unf = layered_bp_unfolded(layers, y, xis, 3000)
    for a, b in zip(unf.codes, ref.codes):
        np.testing.assert_allclose(a, b, atol=1e-7)
    for s, r in zip(unf.layers, ref.layers):
        assert int(s.num_steps) == 3000 and not bool(s.diverged)
        np.testing.assert_allclose(s.objective, r.objective, rtol=1e-9)


@pytest.mark.parametrize("prox", ["soft", "nonneg_soft", "hard"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_unfolded_T0_is_layered_thresholding_with_scaled_layers(dtype, kind, prox):
    """T = 0: G_i = P_{r_i xi_i}(r_i D_i^T G_{i-1}) = layered thresholding with the layers r_i D_i."""
    layers, y = _layers(kind, dtype)
    xis = _xis(layers, y, (0.2, 0.1))
    steps = (0.7, 1.3)
    out = layered_bp_unfolded(layers, y, xis, 0, steps=steps, prox=prox)

    def scaled(D, r):
        if isinstance(D, Dense):
            return Dense(r * D.atoms)
        return Conv(r * D.filters, D.signal_shape, stride=D.stride, boundary=D.boundary, method=D.method)

    ref = layered_thresholding(tuple(scaled(D, r) for D, r in zip(layers, steps)), y,
                               tuple(r * x for r, x in zip(steps, xis)), prox=prox).codes
    tol = 1e-12 if np.dtype(dtype) == np.float64 else 2e-5
    for a, b in zip(out.codes, ref):
        assert a.dtype == dtype and float(jnp.max(jnp.abs(b))) > 0
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    assert all(int(s.num_steps) == 0 for s in out.layers)


def test_unfolded_grad_wrt_filters_matches_finite_differences(x64):
    layers, y = _conv_layers(np.float64)
    xis = _xis(layers, y, (0.2, 0.1))
    rng = np.random.default_rng(11)
    w = jnp.asarray(rng.standard_normal(layers[1].code_shape))

    def loss(f1, f2):
        D1 = Conv(f1, layers[0].signal_shape, stride=2, boundary="full")
        D2 = Conv(f2, layers[1].signal_shape, stride=2, boundary="full")
        sol = layered_bp_unfolded((D1, D2), y, xis, 4)      # default steps 1/L_i: also differentiated
        return jnp.sum(w * sol.codes[1]) + 0.5 * jnp.sum(sol.codes[0] ** 2)

    f1, f2 = layers[0].filters, layers[1].filters
    g1, g2 = jax.jit(jax.grad(loss, argnums=(0, 1)))(f1, f2)
    assert np.all(np.isfinite(g1)) and np.all(np.isfinite(g2))
    assert float(jnp.linalg.norm(g1)) > 0 and float(jnp.linalg.norm(g2)) > 0
    v1 = jnp.asarray(rng.standard_normal(f1.shape))
    v2 = jnp.asarray(rng.standard_normal(f2.shape))
    h = 1e-6
    lj = jax.jit(loss)
    fd = (lj(f1 + h * v1, f2 + h * v2) - lj(f1 - h * v1, f2 - h * v2)) / (2 * h)
    ad = jnp.sum(g1 * v1) + jnp.sum(g2 * v2)
    np.testing.assert_allclose(float(ad), float(fd), rtol=1e-5)


# ----------------------------------------------------------------------------------------------------
# projection pursuit
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_projection_pursuit_kkt_on_the_chain_and_back_projection(dtype, kind):
    layers, y = _layers(kind, dtype)
    C = Chain(layers)
    lam = 0.2 * float(jnp.max(jnp.abs(C.adjoint(y))))
    tol = 1e-13 if np.dtype(dtype) == np.float64 else 1e-6
    out = projection_pursuit(layers, y, lam, max_iter=20000, tol=tol)
    assert bool(out.converged) and not bool(out.diverged)
    GK = out.codes[-1]
    _assert_lasso_kkt(C, y, GK, lam, _kkt_tol(dtype, lam))
    # back-projection: G_{i} = D_{i+1} G_{i+1}
    t = 1e-12 if np.dtype(dtype) == np.float64 else 1e-5
    for i in range(len(layers) - 1):
        np.testing.assert_allclose(out.codes[i], layers[i + 1].apply(out.codes[i + 1]), rtol=t, atol=t)


def test_projection_pursuit_nonneg_and_single_layer(x64):
    layers, y = _dense_layers(np.float64)
    C = Chain(layers)
    out = projection_pursuit(layers, y, 0.1, max_iter=20000, tol=1e-13, prox="nonneg_soft")
    _assert_lasso_kkt(C, y, out.codes[-1], 0.1, 1e-8, nonneg=True)
    one = projection_pursuit(layers[:1], y, 0.3, max_iter=20000, tol=1e-13)
    assert len(one.codes) == 1
    _assert_lasso_kkt(layers[0], y, one.codes[0], 0.3, 1e-8)


# ----------------------------------------------------------------------------------------------------
# batching
# ----------------------------------------------------------------------------------------------------
def test_vmap_over_a_batch_equals_a_loop(x64):
    layers, _ = _dense_layers(np.float64)
    Y = jnp.asarray(np.random.default_rng(5).standard_normal((3, 12)))
    xis = (0.4, 0.2)
    runs = {
        "lbp": lambda y: layered_bp(layers, y, xis, max_iter=5000, tol=1e-12),
        "unf": lambda y: layered_bp_unfolded(layers, y, xis, 5),
        "proj": lambda y: projection_pursuit(layers, y, 0.2, max_iter=5000, tol=1e-12),
    }
    for name, f in runs.items():
        batch = jax.vmap(f)(Y)
        for b in range(Y.shape[0]):
            single = f(Y[b])
            for a, s in zip(batch.codes, single.codes):
                np.testing.assert_allclose(a[b], s, atol=1e-10, err_msg=name)
    steps = jax.vmap(runs["lbp"])(Y).layers[0].num_steps
    assert steps.shape == (3,)                          # each signal stops on its own


# ----------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    layers, y = _dense_layers(np.float32)
    bad = (layers[1], layers[0])
    for f in (lambda L, y: layered_bp(L, y, 0.1), lambda L, y: layered_bp_unfolded(L, y, 0.1, 2),
              lambda L, y: projection_pursuit(L, y, 0.1)):
        with pytest.raises(ValueError, match="layers do not chain"):
            f(bad, y)
        with pytest.raises(ValueError, match="y must have the first layer's signal shape"):
            f(layers, jnp.zeros(13))
        with pytest.raises(TypeError, match="y must be a real floating-point"):
            f(layers, jnp.zeros(12, jnp.int32))
    with pytest.raises(ValueError, match=r"xis\[1\] must be >= 0"):
        layered_bp(layers, y, (0.1, -0.2))
    with pytest.raises(ValueError, match=r"xis\[0\] must be >= 0"):
        layered_bp_unfolded(layers, y, -1.0, 2)
    with pytest.raises(ValueError, match="xis must have one entry per layer"):
        layered_bp(layers, y, (0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="lam must be >= 0"):
        projection_pursuit(layers, y, -0.1)
    with pytest.raises(ValueError, match="lam of shape"):
        projection_pursuit(layers, y, jnp.ones(7))
    with pytest.raises(ValueError, match="T must be a non-negative"):
        layered_bp_unfolded(layers, y, 0.1, -1)
    with pytest.raises(TypeError, match="nonneg"):          # nonneg= is gone: prox="nonneg_soft"
        layered_bp_unfolded(layers, y, 0.1, 1, nonneg=True, prox="hard")
    with pytest.raises(ValueError, match="prox must be one of"):
        layered_bp_unfolded(layers, y, 0.1, 1, prox="firm")
    with pytest.raises(ValueError, match=r"steps\[1\] must be > 0"):
        layered_bp_unfolded(layers, y, 0.1, 1, steps=(0.5, 0.0))
    with pytest.raises(ValueError, match="max_iter must be"):
        layered_bp(layers, y, 0.1, max_iter=-1)
    with pytest.raises(ValueError, match="tol must be >= 0"):
        projection_pursuit(layers, y, 0.1, tol=-1.0)
