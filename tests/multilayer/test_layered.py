"""Multi-layer CSC: layered thresholding (Papyan, Romano, Elad, JMLR 2017) and ML-ISTA / ML-FISTA (Sulam, Aberdam,
Beck, Elad, IEEE TPAMI 2020)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax.conv.operator import Conv
from sparsejax.multilayer.layered import layered_thresholding, layered_thresholding_codes, ml_bp_objective, ml_ista
from sparsejax.operators import Dense


def _tol(dtype):
    return 1e-10 if np.dtype(dtype) == np.float64 else 2e-5


def _conv_layers(dtype, method="auto", key=0):
    """Two strided 'full' conv layers: (1, 20, 20) -s2-> (4, 9, 9) -s2-> (6, 4, 4)."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(key), 3)
    f1 = sj.normalize_filters(jax.random.normal(k1, (4, 1, 4, 4), dtype))
    f2 = sj.normalize_filters(jax.random.normal(k2, (6, 4, 3, 3), dtype))
    D1 = Conv(f1, (1, 20, 20), stride=2, boundary="full", method=method)
    D2 = Conv(f2, (4, 9, 9), stride=2, boundary="full", method=method)
    y = jax.random.normal(k3, (1, 20, 20), dtype)
    return (D1, D2), y


def _dense_layers(dtype, key=1, sizes=(10, 16, 24)):
    ks = jax.random.split(jax.random.PRNGKey(key), len(sizes))
    layers = tuple(Dense(sj.normalize_atoms(jax.random.normal(k, (a, b), dtype)))
                   for k, a, b in zip(ks[1:], sizes[:-1], sizes[1:]))
    y = jax.random.normal(ks[0], (sizes[0],), dtype)
    return layers, y


def _scaled(D, r):
    if isinstance(D, Dense):
        return Dense(r * D.atoms)
    return Conv(r * D.filters, D.signal_shape, stride=D.stride, boundary=D.boundary, method=D.method)


# ----------------------------------------------------------------------------------------------------
# (a) layered nonneg soft thresholding == a Flax CNN / MLP forward pass
# ----------------------------------------------------------------------------------------------------
class _CNN(nn.Module):
    feats: tuple
    kernels: tuple
    strides: tuple

    @nn.compact
    def __call__(self, x):
        outs = []
        for f, k, s in zip(self.feats, self.kernels, self.strides):
            x = nn.relu(nn.Conv(f, k, strides=s, padding="VALID", precision="highest")(x))
            outs.append(x)
        return outs


class _MLP(nn.Module):
    feats: tuple

    @nn.compact
    def __call__(self, x):
        outs = []
        for f in self.feats:
            x = nn.relu(nn.Dense(f, precision="highest")(x))
            outs.append(x)
        return outs


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_layered_thresholding_equals_flax_cnn(dtype, method):
    layers, y = _conv_layers(dtype, method)
    kb = jax.random.split(jax.random.PRNGKey(7), 2)
    thr = tuple(0.3 * jax.random.uniform(k, (D.num_filters, 1, 1), dtype) for k, D in zip(kb, layers))
    G = layered_thresholding(layers, y, thr, prox="nonneg_soft").codes

    net = _CNN(feats=(4, 6), kernels=((4, 4), (3, 3)), strides=(2, 2))
    params = {"params": {
        f"Conv_{i}": {"kernel": jnp.transpose(D.filters, (2, 3, 1, 0)),  # (M, C, h, w) -> HWIO
                      "bias": -b.reshape(-1)}
        for i, (D, b) in enumerate(zip(layers, thr))}}
    outs = net.apply(params, jnp.transpose(y, (1, 2, 0))[None])          # NHWC
    assert [g.shape for g in G] == [(4, 9, 9), (6, 4, 4)]
    for g, o in zip(G, outs):
        o = jnp.transpose(o[0], (2, 0, 1))
        assert g.dtype == dtype
        assert 0 < int(jnp.sum(g > 0)) < g.size          # the ReLU is active somewhere, not everywhere
        np.testing.assert_allclose(g, o, rtol=_tol(dtype), atol=_tol(dtype))


def test_layered_thresholding_equals_flax_mlp(dtype):
    layers, y = _dense_layers(dtype)
    thr = (jnp.asarray(0.2, dtype), 0.1 * jnp.arange(24, dtype=dtype) / 24)   # scalar and per-atom
    G = layered_thresholding_codes(layers, y, thr)
    params = {"params": {"Dense_0": {"kernel": layers[0].atoms, "bias": -jnp.full((16,), 0.2, dtype)},
                         "Dense_1": {"kernel": layers[1].atoms, "bias": -thr[1]}}}
    outs = _MLP(feats=(16, 24)).apply(params, y)
    for g, o in zip(G, outs):
        assert 0 < int(jnp.sum(g > 0)) < g.size
        np.testing.assert_allclose(g, o, rtol=_tol(dtype), atol=_tol(dtype))


@pytest.mark.parametrize("prox", ["soft", "hard"])
def test_layered_thresholding_other_prox(x64, prox):
    layers, y = _dense_layers(np.float64)
    P = {"soft": sj.shrink.soft, "hard": sj.shrink.hard}[prox]
    G = layered_thresholding(layers, y, (0.3, 0.2), prox=prox).codes
    g1 = P(layers[0].atoms.T @ y, 0.3)
    g2 = P(layers[1].atoms.T @ g1, 0.2)
    np.testing.assert_allclose(G[0], g1, atol=1e-12)
    np.testing.assert_allclose(G[1], g2, atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# (b) the first ML-ISTA sweep from G = 0 is the CNN
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_first_ml_ista_sweep_is_layered_thresholding(x64, kind):
    """From G = 0 all back-projections vanish, so one sweep gives
        G_1 = P_{r_1 lam_1}(r_1 D_1^T y),  G_i = P_{r_i lam_i}(r_i D_i^T G_{i-1}):
    layered thresholding with the layers r_i D_i and thresholds r_i lam_i (any prox). For S+ (positively
    homogeneous) this is G_i = c_i LT_i(D, y; lam_j / prod_{l<j} r_l), c_i = prod_{j<=i} r_j; with r_i = 1
    exactly the CNN with thresholds lam_i."""
    layers, y = _dense_layers(np.float64) if kind == "dense" else _conv_layers(np.float64)
    lams = (0.05, jnp.linspace(0.0, 0.1, layers[1].code_shape[0]).reshape(
        (-1,) + (1,) * (len(layers[1].code_shape) - 1)))
    steps = tuple(float(1.0 / D.lipschitz()) for D in layers)

    for st in (steps, (1.0, 1.0)):
        sol = ml_ista(layers, y, lams, steps=st, max_iter=1, mode="scan", prox="nonneg_soft")
        ref = layered_thresholding(tuple(_scaled(D, r) for D, r in zip(layers, st)), y,
                                   tuple(r * l for r, l in zip(st, lams))).codes
        assert len(sol.state.G) == 2
        for g, rf in zip(sol.state.G, ref):
            assert float(jnp.max(jnp.abs(rf))) > 0
            np.testing.assert_allclose(g, rf, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(sol.codes[-1], ref[-1], rtol=1e-12, atol=1e-12)

    # homogeneity form with the default steps r_i = 1/L_i (computed inside ml_ista)
    sol = ml_ista(layers, y, lams, max_iter=1, mode="scan", prox="nonneg_soft")
    r1, r2 = steps
    cnn = layered_thresholding(layers, y, (lams[0], lams[1] / r1)).codes
    np.testing.assert_allclose(sol.state.G[0], r1 * cnn[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sol.state.G[1], r1 * r2 * cnn[1], rtol=1e-9, atol=1e-12)
    # unit steps: literally the CNN with thresholds lam_i
    sol = ml_ista(layers, y, lams, steps=(1.0, 1.0), max_iter=1, mode="scan", prox="nonneg_soft")
    cnn = layered_thresholding(layers, y, lams).codes
    for g, c in zip(sol.state.G, cnn):
        np.testing.assert_allclose(g, c, rtol=1e-12, atol=1e-12)


def test_zero_iterations_gives_zero(x64):
    layers, y = _dense_layers(np.float64)
    sol = ml_ista(layers, y, (0.1, 0.1), max_iter=0, mode="scan")
    assert int(sol.num_steps) == 0 and float(jnp.max(jnp.abs(sol.codes[-1]))) == 0.0


# ----------------------------------------------------------------------------------------------------
# (c) lam_1 = 0, soft prox: ML-ISTA on (D_1, D_2) == ISTA on D_1 D_2 (ML-FISTA == FISTA)
# ----------------------------------------------------------------------------------------------------
def _product(layers):
    A = [D.atoms if isinstance(D, Dense) else D.to_dense() for D in layers]
    return A[0] @ A[1]


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("fista", [False, True])
def test_lam1_zero_reduces_to_ista_on_product(x64, kind, fista):
    """lam_1 = 0 => P_1 = S_0 = identity, G_1 = D_2 G_2 - r_1 D_1^T(D_1 D_2 G_2 - y), so
        G_2 <- S_{r_2 lam_2}(G_2 - r_2 D_2^T(D_2 G_2 - G_1)) = S_{r_2 lam_2}(G_2 - r_1 r_2 (D_1 D_2)^T(D_1 D_2 G_2 - y)),
    ISTA on D_1 D_2 with step r_1 r_2 and weight lam_2 / r_1 (FISTA likewise: the momentum acts on G_2 only)."""
    if kind == "dense":
        layers, y = _dense_layers(np.float64)
    else:
        k1, k2, k3 = jax.random.split(jax.random.PRNGKey(3), 3)
        D1 = Conv(sj.normalize_filters(jax.random.normal(k1, (3, 1, 4, 4))), (1, 12, 12), stride=2,
                  boundary="full")
        D2 = Conv(sj.normalize_filters(jax.random.normal(k2, (4, 3, 3, 3))), (3, 5, 5), boundary="full")
        layers, y = (D1, D2), jax.random.normal(k3, (1, 12, 12))
    A = _product(layers)
    r1, r2 = (float(0.9 / D.lipschitz()) for D in layers)
    lam2 = 0.02
    T = 40
    sol = ml_ista(layers, y, (0.0, lam2), steps=(r1, r2), max_iter=T, mode="scan", fista=fista)
    solver = sj.fista if fista else sj.ista
    ref = solver(A, y.reshape(-1), lam2 / r1, step=r1 * r2, max_iter=T, mode="scan")
    assert float(jnp.max(jnp.abs(ref.codes))) > 0
    np.testing.assert_allclose(sol.codes[-1].reshape(-1), ref.codes, rtol=1e-9, atol=1e-11)
    # the reported objective is the ML-BP objective the iteration targets: weights (0, lam2 / r1), the Lasso's
    np.testing.assert_allclose(sol.objective, ml_bp_objective(layers, y, sol.codes[-1], (0.0, lam2 / r1)), rtol=1e-12)
    lasso = 0.5 * jnp.sum((A @ ref.codes - y.reshape(-1)) ** 2) + (lam2 / r1) * jnp.sum(jnp.abs(ref.codes))
    np.testing.assert_allclose(sol.objective, lasso, rtol=1e-9)
    np.testing.assert_allclose(ref.objective, lasso, rtol=1e-9)


def test_nonneg_lam1_zero_is_not_ista(x64):
    """The reduction needs P_1 = identity; the non-negative P_1 = ReLU is not, so it must not hold."""
    layers, y = _dense_layers(np.float64)
    r1, r2 = (float(1.0 / D.lipschitz()) for D in layers)
    sol = ml_ista(layers, y, (0.0, 0.02), steps=(r1, r2), max_iter=20, mode="scan", prox="nonneg_soft")
    ref = sj.ista(_product(layers), y, 0.02 / r1, step=r1 * r2, max_iter=20, mode="scan", prox="nonneg_soft")
    assert float(jnp.max(jnp.abs(sol.codes[-1] - ref.codes))) > 1e-6


def test_ml_ista_and_fista_converge_to_same_point(x64):
    layers, y = _dense_layers(np.float64)
    lams = (0.05, 0.05)
    a = ml_ista(layers, y, lams, max_iter=20000, tol=1e-11)
    b = ml_ista(layers, y, lams, max_iter=20000, tol=1e-11, fista=True)
    assert bool(a.converged) and bool(b.converged) and not bool(a.diverged | b.diverged)
    assert int(b.num_steps) < int(a.num_steps)
    np.testing.assert_allclose(a.codes[-1], b.codes[-1], atol=1e-5)
    np.testing.assert_allclose(a.objective, b.objective, rtol=1e-7)
    assert len(a.state.G) == 2 and a.state.G[0].shape == (16,)


# ----------------------------------------------------------------------------------------------------
# (d) transformations and bad input
# ----------------------------------------------------------------------------------------------------
@pytest.mark.slow  # 12-30 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_jit_vmap_grad():
    layers, y = _conv_layers(np.float32)
    Y = jnp.stack([y, 2.0 * y, -y])
    lams = (0.1, 0.05)

    f = jax.jit(lambda L, yy, lam: ml_ista(L, yy, lam, max_iter=5, mode="scan", prox="nonneg_soft").codes[-1])
    batched = jax.vmap(f, in_axes=(None, 0, None))(layers, Y, lams)
    for i in range(3):
        np.testing.assert_allclose(batched[i], f(layers, Y[i], lams), rtol=1e-5, atol=1e-6)
        ref = ml_ista(layers, Y[i], lams, max_iter=5, mode="scan", prox="nonneg_soft").codes[-1]
        np.testing.assert_allclose(batched[i], ref, rtol=1e-5, atol=1e-6)

    lt = jax.jit(jax.vmap(lambda yy, b: layered_thresholding(layers, yy, b).codes[-1], in_axes=(0, None)))
    out = lt(Y, (0.1, 0.1))
    np.testing.assert_allclose(out[1], layered_thresholding_codes(layers, Y[1], (0.1, 0.1))[-1], rtol=1e-5,
                               atol=1e-6)

    # thresholds are traced and differentiable (CNN bias)
    g = jax.grad(lambda b: jnp.sum(layered_thresholding(layers, y, (b, 0.05)).codes[-1]))(jnp.float32(0.1))
    assert np.isfinite(float(g)) and float(g) < 0
    # ML-ISTA differentiable in the filters (scan mode)
    def loss(f1):
        L = (Conv(f1, (1, 20, 20), stride=2, boundary="full"), layers[1])
        return jnp.sum(ml_ista(L, y, lams, steps=(0.1, 0.1), max_iter=3, mode="scan").codes[-1] ** 2)
    gf = jax.grad(loss)(layers[0].filters)
    assert gf.shape == layers[0].filters.shape and bool(jnp.all(jnp.isfinite(gf)))


def test_bad_input():
    layers, y = _dense_layers(np.float32)
    bad = (layers[0], Dense(jnp.ones((15, 4))))
    with pytest.raises(ValueError, match="layers"):
        layered_thresholding(bad, y, 0.1)
    with pytest.raises(ValueError, match="layers"):
        ml_ista(bad, y, 0.1)
    cl, cy = _conv_layers(np.float32)
    with pytest.raises(ValueError, match="layers"):
        ml_ista((cl[1], cl[0]), cy, 0.1)
    with pytest.raises(TypeError, match="layers"):
        ml_ista(layers[0], y, 0.1)
    with pytest.raises(ValueError, match="y"):
        ml_ista(layers, jnp.ones(11), 0.1)
    with pytest.raises(ValueError, match="lams"):
        ml_ista(layers, y, (0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="lams"):
        ml_ista(layers, y, (-0.1, 0.1))
    with pytest.raises(ValueError, match="thresholds"):
        layered_thresholding(layers, y, (0.1, jnp.ones(5)))
    with pytest.raises(ValueError, match="steps"):
        ml_ista(layers, y, 0.1, steps=(0.1, 0.0))
    with pytest.raises(ValueError, match="prox"):
        layered_thresholding(layers, y, 0.1, prox="top_k")
