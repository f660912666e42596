"""Unfolded networks: LISTA = T + 1 ISTA steps at init, T = 0 networks = CNN, parameter counts, ML-ISTA /
ML-FISTA / LBP networks = the library's pursuits for the same weights, training decreases the loss."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

from conftest import tol_for
from sparsejax import ista, ml_ista, normalize_atoms, shrink
from sparsejax.nn import unfolded as U
ARCH = ((4, 4, 2), (6, 3, 1))          # 12x12 -> 5x5 -> 3x3
INPUT = (1, 12, 12)


def _images(key, B, shape=INPUT, dtype=np.float32):
    return jax.random.uniform(key, (B,) + shape, dtype=dtype)


def _variables(net, x, key, dtype, bias=-0.05, scale=0.4):
    """Init, then unit-norm filters times ``scale`` (stable fixed steps) and constant bias (positive
    thresholds -bias)."""
    v = net.init(key, x)
    p = dict(v["params"])
    for name in list(p):
        if name[0] in "WA":
            W = p[name]
            p[name] = (scale * W / jnp.sqrt(jnp.sum(W * W, axis=(1, 2, 3), keepdims=True))).astype(dtype)
        elif name[0] == "b":
            p[name] = jnp.full_like(p[name], bias)
    return {"params": p}


# ----------------------------------------------------------------------------------------------------
# LISTA
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [0, 1, 4])
def test_lista_at_ista_values_is_T_plus_1_ista_steps(dtype, T):
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    D = normalize_atoms(jax.random.normal(k1, (16, 32), dtype))
    Y = jax.random.normal(k2, (5, 16), dtype)
    lam = 0.2
    v = U.lista_params(D, lam)
    L = 1.0 / v["params"]["theta"][0] * lam
    Z = U.LISTA(16, 32, T, param_dtype=dtype).apply(v, Y)
    ref = jax.vmap(lambda y: ista(D, y, lam, step=1.0 / L, max_iter=T + 1, mode="scan", tol=0.0).codes)(Y)
    assert Z.shape == (5, 32) and Z.dtype == dtype
    np.testing.assert_allclose(Z, ref, atol=10 * tol_for(dtype), rtol=0)
    assert float(jnp.mean(Z != 0)) < 0.9          # the shrinkage acts
    # a single signal (no batch axis) gives the same codes
    np.testing.assert_allclose(U.LISTA(16, 32, T, param_dtype=dtype).apply(v, Y[0]), Z[0], rtol=0,
                               atol=tol_for(dtype))


def test_lista_is_differentiable_and_trainable():
    k1, k2 = jax.random.split(jax.random.PRNGKey(2))
    D = normalize_atoms(jax.random.normal(k1, (12, 24)))
    Y = jax.random.normal(k2, (16, 12))
    target = jax.vmap(lambda y: ista(D, y, 0.1, max_iter=300).codes)(Y)
    net = U.LISTA(12, 24, 2)
    v = U.lista_params(D, 0.1)

    def loss(v):
        return jnp.mean(jnp.sum((net.apply(v, Y) - target) ** 2, axis=1))

    l0, g = jax.value_and_grad(loss)(v)
    gnorm = jnp.sqrt(sum(jnp.sum(d * d) for d in jax.tree_util.tree_leaves(g)))
    v1 = jax.tree_util.tree_map(lambda p, d: p - (0.05 / gnorm) * d, v, g)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(g))
    assert float(loss(v1)) < float(l0)


# ----------------------------------------------------------------------------------------------------
# T = 0 is the CNN; parameter counts
# ----------------------------------------------------------------------------------------------------
def _plain_cnn(params, x, arch):
    """An independent CNN: lax VALID strided convolutions, + bias, ReLU, dense classifier."""
    h = x
    for i, (_, _, s) in enumerate(arch):
        h = lax.conv_general_dilated(h, params[f"W{i + 1}"], (s, s), "VALID",
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                     precision=lax.Precision.HIGHEST)
        h = jax.nn.relu(h + params[f"b{i + 1}"][None])
    c = params["classifier"]
    return h.reshape(h.shape[0], -1) @ c["kernel"] + c["bias"][None]


def test_T0_networks_are_the_cnn(dtype):
    key = jax.random.PRNGKey(3)
    x = _images(key, 4, dtype=dtype)
    cnn = U.CNN(arch=ARCH, input_shape=INPUT, num_classes=3, param_dtype=dtype)
    v = _variables(cnn, x, key, dtype, bias=0.1)           # positive bias: ReLU(. + b) with b > 0 too
    logits, codes = jax.jit(lambda v, x: cnn.apply(v, x, return_codes=True))(v, x)
    np.testing.assert_allclose(logits, _plain_cnn(v["params"], x, ARCH), atol=tol_for(dtype), rtol=0)
    assert codes[0].shape == (4, 4, 5, 5) and codes[1].shape == (4, 6, 3, 3)
    if dtype == np.float64:
        return
    for name, cls in U.NETWORKS.items():
        net = cls(arch=ARCH, input_shape=INPUT, num_classes=3, T=0, param_dtype=dtype)
        p = dict(v["params"])
        if name == "ml_lista":   # its synthesis filters are unused at T = 0
            p.update({f"A{i + 1}": -p[f"W{i + 1}"] for i in range(len(ARCH))})
        np.testing.assert_array_equal(jax.jit(net.apply)({"params": p}, x), logits)


def _cnn_param_formula(arch, input_shape, num_classes):
    shapes = U.layer_shapes(arch, input_shape)
    n = sum(M * shapes[i][0] * k * k + M for i, (M, k, _) in enumerate(arch))
    return n + math.prod(shapes[-1]) * num_classes + num_classes


@pytest.mark.parametrize("arch,shape", [(U.MNIST_ARCH, (1, 28, 28)), (ARCH, INPUT)])
def test_parameter_counts(arch, shape):
    x = jnp.zeros((2,) + shape)
    key = jax.random.PRNGKey(0)

    def count(cls, **kw):
        return U.count_params(jax.eval_shape(lambda: cls(arch=arch, input_shape=shape, T=6, **kw).init(key, x)))

    n_cnn = count(U.CNN)
    assert n_cnn == _cnn_param_formula(arch, shape, 10)
    for cls in (U.MLISTANet, U.MLFISTANet, U.LBPNet):
        assert count(cls) == n_cnn                               # exactly the CNN's parameters
        assert count(cls, learn_steps=True) == n_cnn + len(arch)  # + one step per layer when learned
    shapes = U.layer_shapes(arch, shape)
    assert count(U.MLLISTANet) == n_cnn + sum(M * shapes[i][0] * k * k for i, (M, k, _) in enumerate(arch))


# ----------------------------------------------------------------------------------------------------
# the networks run the library's pursuits
# ----------------------------------------------------------------------------------------------------
def _layers_and_lams(v, dtype):
    p = v["params"]
    W = [p[f"W{i + 1}"] for i in range(len(ARCH))]
    layers = U.conv_layers(W, ARCH, INPUT)
    lams = tuple(-p[f"b{i + 1}"] for i in range(len(ARCH)))
    return layers, lams


@pytest.mark.parametrize("fista", [False, True])
def test_ml_ista_network_equals_library_ml_ista(dtype, fista):
    T = 2
    key = jax.random.PRNGKey(4)
    x = _images(key, 3, dtype=dtype)
    cls = U.MLFISTANet if fista else U.MLISTANet
    net = cls(arch=ARCH, input_shape=INPUT, T=T, param_dtype=dtype)
    v = _variables(net, x, key, dtype)
    _, codes = jax.jit(lambda v, x: net.apply(v, x, return_codes=True))(v, x)
    layers, lams = _layers_and_lams(v, dtype)
    one = jnp.ones((), dtype)
    ref = jax.vmap(lambda y: ml_ista(layers, y, lams, steps=(one, one), max_iter=T + 1, mode="scan",
                                     tol=0.0, prox="nonneg_soft", fista=fista).state.G)(x)
    for G, R in zip(codes, ref):
        np.testing.assert_allclose(G, R, atol=10 * tol_for(dtype), rtol=0)
    # the unfolding changes the codes (it is not the CNN)
    cnn = U.CNN(arch=ARCH, input_shape=INPUT, param_dtype=dtype)
    _, cnn_codes = jax.jit(lambda v, x: cnn.apply(v, x, return_codes=True))(v, x)
    assert float(jnp.max(jnp.abs(codes[-1] - cnn_codes[-1]))) > 1e-3


def test_lbp_network_equals_layerwise_ista(dtype):
    T = 2
    key = jax.random.PRNGKey(5)
    x = _images(key, 2, dtype=dtype)
    net = U.LBPNet(arch=ARCH, input_shape=INPUT, T=T, param_dtype=dtype)
    v = _variables(net, x, key, dtype)
    _, codes = jax.jit(lambda v, x: net.apply(v, x, return_codes=True))(v, x)
    layers, lams = _layers_and_lams(v, dtype)
    prev = x
    for D, lam, G in zip(layers, lams, codes):
        R = jax.vmap(lambda y: ista(D, y, lam, step=1.0, max_iter=T + 1, mode="scan", tol=0.0,
                                    prox="nonneg_soft").codes)(prev)
        np.testing.assert_allclose(G, R, atol=10 * tol_for(dtype), rtol=0)
        prev = G


def test_ml_lista_at_init_is_ml_ista_and_learns_untied_filters():
    key = jax.random.PRNGKey(6)
    x = _images(key, 3)
    lista = U.MLLISTANet(arch=ARCH, input_shape=INPUT, T=2)
    v = lista.init(key, x)
    p = v["params"]
    for i in range(len(ARCH)):
        np.testing.assert_array_equal(p[f"A{i + 1}"], p[f"W{i + 1}"])
    ista_v = {"params": {k: val for k, val in p.items() if not k.startswith("A")}}
    mlista = U.MLISTANet(arch=ARCH, input_shape=INPUT, T=2)
    np.testing.assert_array_equal(jax.jit(lista.apply)(v, x), jax.jit(mlista.apply)(ista_v, x))
    g = jax.jit(jax.grad(lambda v: jnp.sum(lista.apply(v, x) ** 2)))(v)["params"]
    assert float(jnp.max(jnp.abs(g["A1"] - g["W1"]))) > 0    # the two banks get different gradients


def test_jit_and_learned_steps():
    key = jax.random.PRNGKey(7)
    x = _images(key, 2)
    net = U.MLISTANet(arch=ARCH, input_shape=INPUT, T=2, learn_steps=True)
    v = _variables(net, x, key, np.float32)
    f = jax.jit(net.apply)
    out = f(v, x)
    # step r = 1 reproduces the fixed-step network; another step changes the output
    fixed = U.MLISTANet(arch=ARCH, input_shape=INPUT, T=2)
    pf = {k: val for k, val in v["params"].items() if not k.startswith("r")}
    np.testing.assert_allclose(out, jax.jit(fixed.apply)({"params": pf}, x), atol=1e-6, rtol=0)
    v2 = {"params": {**v["params"], "r2": jnp.asarray(0.5, jnp.float32)}}
    assert float(jnp.max(jnp.abs(f(v2, x) - out))) > 1e-6
    # gradients with respect to the learned steps exist and are finite
    g = jax.jit(jax.grad(lambda v: jnp.sum(net.apply(v, x) ** 2)))(v)["params"]
    assert all(bool(jnp.isfinite(g[f"r{i + 1}"])) and float(jnp.abs(g[f"r{i + 1}"])) > 0
               for i in range(len(ARCH)))


def test_one_sgd_step_decreases_the_loss():
    from sparsejax.datasets.mnist import load_mnist

    x, y = load_mnist("test", limit=16)
    x = x[:, :, ::2, ::2]                            # 14 x 14 digits: 14 -> 6 -> 4
    net = U.MLISTANet(arch=ARCH, input_shape=(1, 14, 14), T=1)
    v = net.init(jax.random.PRNGKey(0), x[:2])
    opt = optax.sgd(0.05, momentum=0.9)
    st = opt.init(v)

    def loss(v):
        return optax.softmax_cross_entropy_with_integer_labels(net.apply(v, x), y).mean()

    l0, g = jax.jit(jax.value_and_grad(loss))(v)
    upd, st = opt.update(g, st, v)
    v1 = optax.apply_updates(v, upd)
    assert float(jax.jit(loss)(v1)) < float(l0)


def test_errors_before_tracing():
    x = jnp.zeros((2,) + INPUT)
    with pytest.raises(ValueError, match="x must be a batch"):
        U.CNN(arch=ARCH, input_shape=INPUT).init(jax.random.PRNGKey(0), x[0])
    with pytest.raises(ValueError, match="T"):
        U.MLISTANet(arch=ARCH, input_shape=INPUT, T=-1).init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="arch"):
        U.layer_shapes(((4, 13, 1),), INPUT)
    with pytest.raises(ValueError, match="arch"):
        U.layer_shapes(((4, 3),), INPUT)
    with pytest.raises(ValueError, match="x must have shape"):
        U.LISTA(4, 8, 1).init(jax.random.PRNGKey(0), jnp.zeros((2, 5)))


@pytest.mark.parametrize("prox", ["soft", "hard", shrink.soft])
def test_prox_names_the_shrinkage(prox):
    """prox= (a name or a callable) is the shrinkage of every layer: the ML-ISTA network with prox equals the
    library's ML-ISTA with the same prox; the default S+ gives non-negative codes."""
    T = 2
    key = jax.random.PRNGKey(8)
    x = _images(key, 2) - 0.5
    net = U.MLISTANet(arch=ARCH, input_shape=INPUT, T=T, prox=prox)
    v = _variables(net, x, key, np.float32)
    _, codes = jax.jit(lambda v, x: net.apply(v, x, return_codes=True))(v, x)
    layers, lams = _layers_and_lams(v, np.float32)
    one = jnp.ones((), np.float32)
    ref = jax.vmap(lambda y: ml_ista(layers, y, lams, steps=(one, one), max_iter=T + 1, mode="scan",
                                     tol=0.0, prox=prox).state.G)(x)
    for G, R in zip(codes, ref):
        np.testing.assert_allclose(G, R, atol=1e-5, rtol=0)
    assert float(jnp.min(codes[-1])) < 0                     # signed codes
    _, plus = U.LBPNet(arch=ARCH, input_shape=INPUT, T=T).apply(v, x, return_codes=True)
    assert float(jnp.min(plus[-1])) >= 0                     # default: S+
    with pytest.raises(ValueError, match="prox"):
        U.CNN(arch=ARCH, input_shape=INPUT, prox="relu").init(key, x)
