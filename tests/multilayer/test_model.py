"""The multi-layer model: chained effective dictionaries, explicit matrices, molecules, synthesis."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax.conv.operator import Conv
from sparsejax.multilayer.model import Chain, MLModel, effective_dictionary, molecules, synthesize, to_dense
from sparsejax.operators import Dense


def _unit(a, axes):
    return a / np.sqrt(np.sum(a * a, axis=axes, keepdims=True))


def _dense_layers(dtype, sizes=(10, 16, 24, 30), seed=1):
    """Unit-norm Gaussian atoms (numpy, seeded: nothing to compile)."""
    rng = np.random.default_rng(seed)
    return tuple(Dense(jnp.asarray(_unit(rng.standard_normal((a, b)), 0), dtype))
                 for a, b in zip(sizes[:-1], sizes[1:]))


def _conv_layers(dtype, seed=0, boundaries=("full", "full"), strides=(2, 2)):
    """(1, 20, 20) -k4-> (4, *) -k3-> (6, *)."""
    rng = np.random.default_rng(seed)
    f1 = jnp.asarray(_unit(rng.standard_normal((4, 1, 4, 4)), (1, 2, 3)), dtype)
    f2 = jnp.asarray(_unit(rng.standard_normal((6, 4, 3, 3)), (1, 2, 3)), dtype)
    D1 = Conv(f1, (1, 20, 20), stride=strides[0], boundary=boundaries[0])
    D2 = Conv(f2, D1.code_shape, stride=strides[1], boundary=boundaries[1])
    return D1, D2


def _mnist_like(dtype, seed=3):
    """The MNIST net geometry of Sulam, Aberdam, Beck, Elad (IEEE TPAMI 2020), fewer filters: 6x6 s2, 6x6 s2, 4x4 s1
    on 28x28."""
    rng = np.random.default_rng(seed)
    f1, f2, f3 = (jnp.asarray(rng.standard_normal(s), dtype)
                  for s in ((3, 1, 6, 6), (4, 3, 6, 6), (5, 4, 4, 4)))
    D1 = Conv(f1, (1, 28, 28), stride=2, boundary="full")
    D2 = Conv(f2, D1.code_shape, stride=2, boundary="full")
    D3 = Conv(f3, D2.code_shape, stride=1, boundary="full")
    return D1, D2, D3


def _rand(seed, shape, dtype):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def _rel(dtype):
    return 1e-11 if np.dtype(dtype) == np.float64 else 2e-5


# ----------------------------------------------------------------------------------------------------
# Chain: the adjoint, the explicit matrix and the operator norm
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dense", "conv_full", "conv_mixed"])
def test_chain_dot_product_adjoint(dtype, kind):
    """<D_1 D_2 ... G, x> = <G, ... D_2^T D_1^T x> for random G, x."""
    if kind == "dense":
        layers = _dense_layers(dtype)
    elif kind == "conv_full":
        layers = _conv_layers(dtype)
    else:   # strided 'valid' then 'same', then a circular layer
        D1, D2 = _conv_layers(dtype, boundaries=("valid", "same"), strides=(2, 1))
        f3 = _rand(5, (3, 6, 2, 2), dtype)
        layers = (D1, D2, Conv(f3, D2.code_shape, stride=1, boundary="circular"))
    C = Chain(layers)
    assert C.code_shape == layers[-1].code_shape and C.signal_shape == layers[0].signal_shape
    assert C.dtype == dtype
    G = _rand(1, C.code_shape, dtype)
    x = _rand(2, C.signal_shape, dtype)
    lhs = jnp.sum(C.apply(G) * x)
    rhs = jnp.sum(G * C.adjoint(x))
    scale = float(jnp.linalg.norm(C.apply(G)) * jnp.linalg.norm(x))
    assert abs(float(lhs - rhs)) <= _rel(dtype) * scale
    np.testing.assert_allclose(C.normal(G), C.adjoint(C.apply(G)), rtol=1e-6, atol=1e-6 * scale)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_to_dense_chain_is_product_of_layer_matrices(x64, kind):
    layers = _dense_layers(np.float64) if kind == "dense" else _conv_layers(np.float64)
    mats = [to_dense(D) for D in layers]
    prod = mats[0]
    for M in mats[1:]:
        prod = prod @ M
    np.testing.assert_allclose(to_dense(Chain(layers)), prod, atol=1e-12)
    # effective_dictionary is 1-based and inclusive: D^{(2,K)} and D^{(i,i)} = D_i
    K = len(layers)
    sub = mats[1]
    for M in mats[2:]:
        sub = sub @ M
    np.testing.assert_allclose(to_dense(effective_dictionary(layers, 2, K)), sub, atol=1e-12)
    assert effective_dictionary(layers, 2, 2) is layers[1]
    np.testing.assert_allclose(to_dense(effective_dictionary(layers, 1, K)), prod, atol=1e-12)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_chain_lipschitz_is_squared_spectral_norm(x64, kind):
    layers = _dense_layers(np.float64) if kind == "dense" else _conv_layers(np.float64)
    C = Chain(layers)
    s_max = np.linalg.norm(np.asarray(to_dense(C)), 2)
    L = float(C.lipschitz(num_iter=500))
    assert L <= s_max ** 2 * (1 + 1e-10)              # power iteration converges from below
    assert L >= s_max ** 2 * (1 - 1e-6)


def test_chain_is_a_dictionary_for_fista(x64):
    """FISTA on the chained operator and on its explicit matrix solve the same Lasso."""
    layers = _conv_layers(np.float64)
    C = Chain(layers)
    y = _rand(4, C.signal_shape, np.float64)
    lam = 0.2 * float(jnp.max(jnp.abs(C.adjoint(y))))
    a = sj.fista(C, y, lam, max_iter=5000, tol=1e-13)
    b = sj.fista(Dense(to_dense(C)), y.reshape(-1), lam, max_iter=5000, tol=1e-13)
    assert bool(a.converged) and bool(b.converged)
    assert 0 < int(jnp.sum(a.codes != 0)) < a.codes.size
    np.testing.assert_allclose(a.codes.reshape(-1), b.codes, atol=1e-8)
    # and jit / pytree: the chain passes through jit as an argument
    f = jax.jit(lambda op, g: op.apply(g))
    np.testing.assert_allclose(f(C, a.codes), C.apply(a.codes), atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# molecules
# ----------------------------------------------------------------------------------------------------
def _window_check(Dmat, mol, code_shape, signal_shape, starts_fn):
    """Every column of Dmat (for code index (m, p...)) is molecule m placed at starts_fn(p), zero elsewhere."""
    E = mol.shape[2:]
    cols = np.asarray(Dmat).T.reshape(code_shape + signal_shape)
    checked = 0
    for idx in np.ndindex(*code_shape):
        m, p = idx[0], idx[1:]
        st = starts_fn(p)
        if any(s < 0 or s + e > n for s, e, n in zip(st, E, signal_shape[1:])):
            continue          # partly outside the signal (zero boundaries): not a whole molecule
        col = cols[idx]
        win = (slice(None),) + tuple(slice(s, s + e) for s, e in zip(st, E))
        np.testing.assert_allclose(col[win], mol[m], atol=1e-12)
        rest = col.copy()
        rest[win] = 0
        assert np.all(rest == 0)
        checked += 1
    return checked


def test_molecules_of_two_conv_layers_are_the_chain_columns(x64):
    """Code coefficient (m, p) of D_1 D_2 ('full', strides s1 = s2 = 2) synthesises molecule m at
    position s1 s2 p; the molecule has size E = s1 (k2 - 1) + k1 = 8."""
    D1, D2 = _conv_layers(np.float64)
    mol = np.asarray(molecules((D1, D2), 2))
    assert mol.shape == (6, 1, 2 * (3 - 1) + 4, 2 * (3 - 1) + 4)
    n = _window_check(to_dense(Chain((D1, D2))), mol, D2.code_shape, D1.signal_shape,
                      lambda p: tuple(4 * q for q in p))
    assert n == int(np.prod(D2.code_shape))              # all 6 x 4 x 4 columns are whole molecules
    # first layer molecules are the filters themselves
    np.testing.assert_allclose(molecules((D1, D2), 1), D1.filters, atol=0)


def test_molecules_do_not_depend_on_the_boundary(x64):
    """'same' boundary (centred atoms): the molecules are the same effective filters; the columns of
    to_dense show them at the offset s1 (s2 p - lo2) - lo1."""
    D1, D2 = _conv_layers(np.float64, boundaries=("same", "same"))
    F1, F2 = _conv_layers(np.float64)
    np.testing.assert_allclose(molecules((D1, D2), 2), molecules((F1, F2), 2), atol=0)
    lo1, lo2 = (4 - 1) // 2, (3 - 1) // 2
    n = _window_check(to_dense(Chain((D1, D2))), np.asarray(molecules((D1, D2), 2)), D2.code_shape,
                      D1.signal_shape, lambda p: tuple(2 * (2 * q - lo2) - lo1 for q in p))
    assert n > 0


def test_molecules_mnist_geometry_fill_the_image(x64):
    """6x6 s2, 6x6 s2, 4x4 s1: molecules 6 -> 16 -> 28 (= the image); deepest code is 1x1, so the deepest
    molecules are exactly the columns of D_1 D_2 D_3; and molecules of D^{(2,3)} live in G_1 space."""
    layers = _mnist_like(np.float64)
    assert [molecules(layers, j).shape[2:] for j in (1, 2, 3)] == [(6, 6), (16, 16), (28, 28)]
    mol3 = molecules(layers, 3)
    cols = to_dense(Chain(layers)).T.reshape((5, 1, 28, 28))
    np.testing.assert_allclose(mol3, cols, atol=1e-12)
    mol23 = np.asarray(molecules(layers, 3, i=2))
    assert mol23.shape == (5, 3, 2 * 3 + 6, 2 * 3 + 6)
    assert _window_check(to_dense(Chain(layers[1:])), mol23, layers[2].code_shape, layers[1].signal_shape,
                         lambda p: (0, 0)) == 5


def test_molecules_dense(x64):
    layers = _dense_layers(np.float64)
    A = layers[0].atoms @ layers[1].atoms
    np.testing.assert_allclose(molecules(layers, 2), A.T, atol=1e-12)
    np.testing.assert_allclose(molecules(layers, 3, i=2), (layers[1].atoms @ layers[2].atoms).T, atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# synthesis and the MLModel wrapper
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_synthesize_obeys_the_model(dtype, kind):
    layers = _dense_layers(dtype) if kind == "dense" else _conv_layers(dtype)
    mask = np.random.default_rng(8).uniform(size=layers[-1].code_shape) < 0.2
    GK = _rand(7, layers[-1].code_shape, dtype) * jnp.asarray(mask, dtype)
    codes, x = synthesize(layers, GK)
    assert len(codes) == len(layers) - 1
    full = codes + (GK,)
    tol = _rel(dtype) * 10
    for i in range(len(layers) - 1):       # G_{i} = D_{i+1} G_{i+1}
        np.testing.assert_allclose(full[i], layers[i + 1].apply(full[i + 1]), rtol=tol, atol=tol)
    np.testing.assert_allclose(x, Chain(layers).apply(GK), rtol=tol, atol=tol)
    np.testing.assert_allclose(x, layers[0].apply(codes[0]), rtol=tol, atol=tol)
    # the MLModel wrapper is a pytree and delegates
    model = MLModel(layers)
    assert model.depth == len(layers)
    _, x2 = jax.jit(lambda m, g: m.synthesize(g))(model, GK)
    np.testing.assert_allclose(x2, x, rtol=tol, atol=tol)


def test_synthesize_single_layer(x64):
    (D,) = _dense_layers(np.float64, sizes=(5, 8))
    g = _rand(0, (8,), np.float64)
    codes, x = synthesize((D,), g)
    assert codes == ()
    np.testing.assert_allclose(x, D.atoms @ g, atol=1e-13)


# ----------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    D1, D2 = _dense_layers(np.float32, sizes=(10, 16, 24))
    with pytest.raises(ValueError, match="layers do not chain"):
        Chain((D2, D1))
    with pytest.raises(TypeError, match="layers"):
        Chain(D1)
    with pytest.raises(ValueError, match="j must satisfy"):
        effective_dictionary((D1, D2), 1, 3)
    with pytest.raises(ValueError, match="i must satisfy"):
        effective_dictionary((D1, D2), 2, 1)
    with pytest.raises(TypeError, match="j must be a Python int"):
        molecules((D1, D2), 2.0)
    with pytest.raises(TypeError, match="op must be a LinearOperator"):
        to_dense(np.eye(3))
    with pytest.raises(ValueError, match="GK must have shape"):
        synthesize((D1, D2), jnp.zeros(16))
    with pytest.raises(TypeError, match="GK"):
        synthesize((D1, D2), jnp.zeros(24, jnp.int32))
