"""Convolutional synthesis / adjoint and the Conv operator: the maths first.

Adjoint identities, FFT == direct, agreement with brute-force atom placement, scipy.signal.convolve and the
explicit banded circulant matrix, then the operator inside the existing pursuits (KKT, jit, vmap, grad).
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

import sparsejax as sj
from jax import lax

from sparsejax.conv._geometry import geometry as _geometry
from sparsejax.conv._geometry import resolve_method as _resolve_method
from sparsejax.conv.operator import (BOUNDARIES, Conv, _transposed_conv, conv_adjoint, conv_code_shape, conv_synthesis,
                                     normalize_filters)

from conftest import tol_for

# (spatial signal size, filter size) per dimensionality; sizes divisible by the strides used
GEOM = {1: ((12,), (3,)), 2: ((6, 8), (3, 2))}
CHANNELS = [(1, 1), (3, 2)]  # (M filters, C channels)


def reference_synthesis(d, G, N, s, boundary, lo):
    """Numpy atom placement: coefficient G_m[p] adds d_m with its first tap at s p - lo."""
    M, C = d.shape[:2]
    k = d.shape[2:]
    X = np.zeros((C,) + tuple(N))
    for m in range(M):
        for p in itertools.product(*[range(q) for q in G.shape[1:]]):
            for j in itertools.product(*[range(kk) for kk in k]):
                n = [s * pp - l + jj for pp, l, jj in zip(p, lo, j)]
                if boundary == "circular":
                    n = [nn % NN for nn, NN in zip(n, N)]
                elif any(nn < 0 or nn >= NN for nn, NN in zip(n, N)):
                    continue
                X[(slice(None),) + tuple(n)] += G[(m,) + p] * d[(m, slice(None)) + j]
    return X


def draw(dim, boundary, stride, MC, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    N, k = GEOM[dim]
    M, C = MC
    d = rng.standard_normal((M, C) + k).astype(dtype)
    g = _geometry(d.shape, N, stride, boundary)
    G = rng.standard_normal((M,) + g.P).astype(dtype)
    Y = rng.standard_normal((C,) + N).astype(dtype)
    return d, G, Y, g


CASES = list(itertools.product((1, 2), BOUNDARIES, (1, 2), CHANNELS))


@pytest.mark.parametrize("dim,boundary,stride,MC", CASES)
def test_synthesis_and_adjoint(dtype, dim, boundary, stride, MC):
    """Every combination, both methods: synthesis = numpy atom placement; <A x, y> = <x, A^T y>
    (relative 1e-10 in float64, 1e-4 in float32); FFT == direct."""
    d, G, Y, g = draw(dim, boundary, stride, MC, dtype, seed=1)
    tol = tol_for(dtype)

    @jax.jit  # one compilation per case (cheaper than many eager ops)
    def run(d, G, Y):
        return {m: (conv_synthesis(d, G, stride=stride, boundary=boundary, method=m, signal_size=g.N),
                    conv_adjoint(d, Y, stride=stride, boundary=boundary, method=m)) for m in ("fft", "direct")}

    out = jax.device_get(run(d, G, Y))
    ref = reference_synthesis(np.float64(d), np.float64(G), g.N, stride, boundary, g.lo)
    for method, (X, At) in out.items():
        assert X.dtype == dtype and At.dtype == dtype
        assert X.shape == ref.shape and At.shape == G.shape
        np.testing.assert_allclose(X, ref, atol=tol * 10 * np.abs(ref).max(), err_msg=method)
        lhs = np.sum(np.float64(X) * Y)
        rhs = np.sum(np.float64(At) * G)
        scale = np.linalg.norm(X) * np.linalg.norm(Y) + np.linalg.norm(At) * np.linalg.norm(G)
        assert abs(lhs - rhs) <= tol * scale, (method, lhs, rhs)
    for a, b in zip(out["fft"], out["direct"]):
        np.testing.assert_allclose(a, b, atol=tol * 10 * max(1.0, np.abs(b).max()))


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("mode", ["full", "valid", "same"])
def test_stride1_matches_scipy_convolve(x64, dim, mode):
    rng = np.random.default_rng(2)
    k = (4,) if dim == 1 else (3, 4)
    P = (11,) if dim == 1 else (7, 9)
    d = rng.standard_normal((2, 3) + k)
    G = rng.standard_normal((2,) + P)
    ref = np.stack([sum(scipy.signal.convolve(G[m], d[m, c], mode=mode, method="direct") for m in range(2))
                    for c in range(3)])
    for method in ("fft", "direct"):
        X = conv_synthesis(d, G, boundary=mode, method=method)
        np.testing.assert_allclose(np.asarray(X), ref, atol=1e-12)
        # the adjoint is the correlation with the same boundary
        A_T = conv_adjoint(d, jnp.asarray(ref), boundary=mode, method=method)
        assert A_T.shape == G.shape


@pytest.mark.parametrize("dim", [1, 2])
def test_circular_matches_fft_convolution(x64, dim):
    rng = np.random.default_rng(3)
    N, k = ((16,), (5,)) if dim == 1 else ((8, 10), (3, 4))
    d = rng.standard_normal((3, 2) + k)
    G = rng.standard_normal((3,) + N)
    ax = tuple(range(-dim, 0))
    ref = np.real(np.fft.ifftn(np.einsum("mc...,m...->c...", np.fft.fftn(d, s=N, axes=ax),
                                         np.fft.fftn(G, axes=ax)), axes=ax))
    X = conv_synthesis(d, G, boundary="circular")
    np.testing.assert_allclose(np.asarray(X), ref, atol=1e-12)


def test_full_adjoint_is_cnn_strided_valid_correlation(x64):
    """The 'full' adjoint is the CNN layer: G_m[p] = sum_c sum_j d_mc[j] Y_c[s p + j] (numpy loop)."""
    rng = np.random.default_rng(4)
    d = rng.standard_normal((4, 2, 3, 3))
    Y = rng.standard_normal((2, 11, 9))
    s = 2
    G = np.asarray(conv_adjoint(d, Y, stride=s, boundary="full"))
    P = ((11 - 3) // s + 1, (9 - 3) // s + 1)
    ref = np.zeros((4,) + P)
    for m, p, q in itertools.product(range(4), range(P[0]), range(P[1])):
        ref[m, p, q] = np.sum(d[m] * Y[:, s * p:s * p + 3, s * q:s * q + 3])
    np.testing.assert_allclose(G, ref, atol=1e-12)


def test_code_shapes_of_the_mnist_net():
    """28 -> 12 -> 4 -> 1 (6x6 s2, 6x6 s2, 4x4 s1, no padding): the MNIST network of Sulam, Aberdam, Beck & Elad,
    "On multi-layer basis pursuit, efficient algorithms and convolutional neural networks", IEEE TPAMI 2020."""
    assert conv_code_shape((32, 1, 6, 6), (1, 28, 28), stride=2, boundary="full") == (32, 12, 12)
    assert conv_code_shape((64, 32, 6, 6), (32, 12, 12), stride=2, boundary="full") == (64, 4, 4)
    assert conv_code_shape((512, 64, 4, 4), (64, 4, 4), stride=1, boundary="full") == (512, 1, 1)
    assert conv_code_shape((3, 1, 5), (1, 20), boundary="valid") == (3, 24)
    assert conv_code_shape((3, 1, 5), (1, 20), boundary="same", stride=3) == (3, 7)
    assert conv_code_shape((3, 1, 5), (1, 20), boundary="circular", stride=4) == (3, 5)


def test_dense_matrix_is_the_banded_circulant(x64):
    """X = D G with D = [C_1 ... C_M], C_i circulant with first column d_i padded (Papyan, Sulam & Elad, "Working
    locally thinking globally", IEEE TSP 2017, sec. II)."""
    rng = np.random.default_rng(5)
    M, n, N = 3, 4, 10
    d = rng.standard_normal((M, 1, n))
    blocks = []
    for m in range(M):
        col = np.zeros(N)
        col[:n] = d[m, 0]
        blocks.append(np.stack([np.roll(col, j) for j in range(N)], axis=1))
    ref = np.concatenate(blocks, axis=1)
    for method in ("fft", "direct"):
        A = np.asarray(Conv(d, (1, N), method=method).to_dense())
        np.testing.assert_allclose(A, ref, atol=1e-12)


def test_auto_cost_model():
    small = _geometry((4, 1, 3), (256,), 1, "circular")
    big = _geometry((4, 1, 64, 64), (128, 128), 1, "circular")
    assert _resolve_method(small, "auto") == "direct"
    assert _resolve_method(big, "auto") == "fft"
    assert _resolve_method(small, "fft") == "fft"
    D = Conv(jnp.ones((2, 1, 3)), (1, 16))
    assert D.resolved_method in ("fft", "direct")


def test_signal_size_argument(x64):
    d = jnp.ones((2, 1, 3))
    G = jnp.ones((2, 6))
    # stride 2, 'same': N in {11, 12} both give P = 6
    assert conv_synthesis(d, G, stride=2, boundary="same").shape == (1, 12)
    assert conv_synthesis(d, G, stride=2, boundary="same", signal_size=11).shape == (1, 11)
    with pytest.raises(ValueError, match="code size"):
        conv_synthesis(d, G, stride=2, boundary="same", signal_size=20)


@pytest.mark.parametrize("boundary,stride", [("circular", 2), ("valid", 2)])
def test_gradients_agree_between_methods(x64, boundary, stride):
    """d/d filters of <A(filters) G, Y>: FFT and direct paths give the same derivative."""
    d, G, Y, g = draw(2, boundary, stride, (3, 2), seed=11)
    grads = [jax.grad(lambda f: jnp.sum(conv_synthesis(f, G, stride=stride, boundary=boundary, method=m,
                                                        signal_size=g.N) * Y))(d) for m in ("fft", "direct")]
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-10)
    # and equals the gradient of <G, A^T Y> (the adjoint identity, differentiated)
    ga = jax.grad(lambda f: jnp.sum(conv_adjoint(f, Y, stride=stride, boundary=boundary, method="fft") * G))(d)
    np.testing.assert_allclose(ga, grads[1], atol=1e-10)


# ----------------------------------------------------------------------------------------------------
# the polyphase transposed convolution (direct synthesis) against the lhs-dilation formula
# ----------------------------------------------------------------------------------------------------
def _transposed_conv_lhs_dilation(filters, codes, g):
    """The former direct synthesis, kept as a reference: full transposed convolution with s-dilated codes."""
    d = g.d
    rhs = jnp.swapaxes(jnp.flip(filters, axis=tuple(range(2, 2 + d))), 0, 1)
    dn = ("NCH", "OIH", "NCH") if d == 1 else ("NCHW", "OIHW", "NCHW")
    return lax.conv_general_dilated(codes[None], rhs, (1,) * d, [(kk - 1, kk - 1) for kk in g.k],
                                    lhs_dilation=(g.stride,) * d, dimension_numbers=dn,
                                    precision=lax.Precision.HIGHEST)[0]


def _reference_synthesis_direct(filters, codes, g):
    """Old synthesis for every boundary: lhs-dilation transposed convolution, then fold / place."""
    full = _transposed_conv_lhs_dilation(filters, codes, g)
    if g.boundary == "circular":
        return conv_synthesis(filters, codes, stride=g.stride, boundary="circular", method="fft",
                              signal_size=g.N)
    cfg = [(0, 0, 0)] + [(-lo, n + lo - f, 0) for lo, n, f in zip(g.lo, g.N, g.F)]
    return lax.pad(full, jnp.zeros((), full.dtype), cfg)


# (spatial signal size, filter size): kernel sizes divisible and not divisible by the strides 2 and 3,
# filters larger than the code map (the swapped form |P| < |K|)
POLY_GEOM = {1: [((12,), (4,)), ((12,), (5,)), ((6,), (6,))], 2: [((6, 12), (3, 5)), ((6, 6), (6, 4))]}
POLY_CASES = [(dim, N, k, s) for dim in (1, 2) for N, k in POLY_GEOM[dim] for s in (2, 3)]


@pytest.mark.parametrize("dim,N,k,stride", POLY_CASES)
def test_polyphase_synthesis_equals_lhs_dilation(dtype, dim, N, k, stride):
    """Direct synthesis (polyphase, no input dilation) == the lhs-dilation transposed convolution, for
    strides 2, 3, k divisible or not by s, multichannel, every boundary; the dot-product test with the
    direct adjoint holds; the un-cropped transposed convolution agrees as well."""
    rng = np.random.default_rng(20)
    M, C = 3, 2
    f = rng.standard_normal((M, C) + k).astype(dtype)
    tol = tol_for(dtype)
    geoms = [_geometry(f.shape, N, stride, b) for b in BOUNDARIES
             if b != "circular" or all(n % stride == 0 and kk <= n for n, kk in zip(N, k))]
    Gs = [rng.standard_normal((M,) + g.P).astype(dtype) for g in geoms]
    Y = rng.standard_normal((C,) + N).astype(dtype)

    @jax.jit  # one compilation for all boundaries
    def run(f, Gs, Y):
        return [(conv_synthesis(f, G, stride=stride, boundary=g.boundary, method="direct", signal_size=N),
                 _reference_synthesis_direct(f, G, g),
                 conv_adjoint(f, Y, stride=stride, boundary=g.boundary, method="direct"),
                 _transposed_conv(f, G, g), _transposed_conv_lhs_dilation(f, G, g)) for g, G in zip(geoms, Gs)]

    for g, G, (X, ref, At, full_new, full_old) in zip(geoms, Gs, jax.device_get(run(f, Gs, Y))):
        np.testing.assert_allclose(X, ref, atol=10 * tol * max(1.0, np.abs(ref).max()), err_msg=g.boundary)
        np.testing.assert_allclose(full_new, full_old, atol=10 * tol * max(1.0, np.abs(full_old).max()))
        lhs, rhs = np.sum(np.float64(X) * Y), np.sum(np.float64(At) * G)
        scale = np.linalg.norm(X) * np.linalg.norm(Y) + np.linalg.norm(At) * np.linalg.norm(G)
        assert abs(lhs - rhs) <= tol * scale, (g.boundary, lhs, rhs)


@pytest.mark.parametrize("N,k,stride", [((12, 12), (6, 6), 2), ((7, 7), (4, 5), 3), ((5, 5), (5, 5), 1)])
def test_polyphase_vmap_and_gradients(x64, N, k, stride):
    """Under vmap over a batch of codes the new path equals the per-example old one; the gradients with
    respect to the filters and the codes of <A(filters) G, Y> equal those of the lhs-dilation formula."""
    rng = np.random.default_rng(21)
    f = jnp.asarray(rng.standard_normal((4, 3) + k))
    D = Conv(f, (3,) + N, stride=stride, boundary="full", method="direct")
    g = D._geom()
    Gb = jnp.asarray(rng.standard_normal((5,) + D.code_shape))
    Yf = jnp.asarray(rng.standard_normal((3,) + tuple((p - 1) * stride + kk for p, kk in zip(g.P, k))))
    Xb = jax.jit(jax.vmap(D.apply))(Gb)
    ref = jax.vmap(lambda G: _reference_synthesis_direct(f, G, g))(Gb)
    np.testing.assert_allclose(Xb, ref, atol=1e-12)

    def loss(fn, f, G):
        return jnp.sum(fn(f, G, g) * Yf)

    new, old = jax.jit(lambda f, G: [jax.grad(lambda f, G: loss(fn, f, G), argnums=(0, 1))(f, G)
                                     for fn in (_transposed_conv, _transposed_conv_lhs_dilation)])(f, Gb[0])
    for a, b in zip(new, old):
        np.testing.assert_allclose(a, b, atol=1e-11)
    # d/dG <A G, Y> = A^T Y (the adjoint: the CNN layer's VALID strided correlation)
    np.testing.assert_allclose(new[1], conv_adjoint(f, Yf, stride=stride, boundary="full", method="direct"),
                               atol=1e-11)


def test_auto_prefers_direct_on_the_mnist_net():
    """With the polyphase synthesis the direct flop count of the MNIST-net layers is below the FFT's."""
    for (M, C, k, s, H) in [(32, 1, 6, 2, 28), (64, 32, 6, 2, 12), (512, 64, 4, 1, 4)]:
        g = _geometry((M, C, k, k), (H, H), s, "full")
        assert _resolve_method(g, "auto") == "direct"


# ----------------------------------------------------------------------------------------------------
# the operator
# ----------------------------------------------------------------------------------------------------
def test_operator_is_a_pytree_and_jits(x64):
    rng = np.random.default_rng(6)
    D = Conv(rng.standard_normal((3, 2, 3, 3)), (2, 8, 8), stride=2, boundary="same", method="direct")
    leaves, tree = jax.tree_util.tree_flatten(D)
    assert len(leaves) == 1 and leaves[0].shape == (3, 2, 3, 3)
    D2 = jax.tree_util.tree_unflatten(tree, leaves)
    assert (D2.signal_shape, D2.stride, D2.boundary, D2.method) == ((2, 8, 8), 2, "same", "direct")
    assert D.code_shape == (3, 4, 4) and D.dtype == np.float64
    G = jnp.asarray(rng.standard_normal(D.code_shape))
    np.testing.assert_allclose(jax.jit(lambda op, g: op.apply(g))(D, G), D.apply(G), atol=1e-12)
    Y = jnp.asarray(rng.standard_normal(D.signal_shape))
    np.testing.assert_allclose(jax.jit(lambda op, y: op.adjoint(y))(D, Y), D.adjoint(Y), atol=1e-12)
    np.testing.assert_allclose(D.T.apply(Y), D.adjoint(Y))


@pytest.mark.parametrize("shape,sig", [((3, 1, 5), (1, 16)), ((2, 3, 4), (3, 12)), ((4, 2, 3, 3), (2, 6, 6))])
def test_lipschitz_exact_for_circular(x64, shape, sig):
    D = Conv(np.random.default_rng(7).standard_normal(shape), sig)
    ref = np.linalg.norm(np.asarray(D.to_dense()), 2) ** 2
    assert float(D.lipschitz()) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("boundary,stride", [("circular", 2), ("full", 1), ("valid", 2), ("same", 1)])
def test_lipschitz_power_iteration_otherwise(x64, boundary, stride):
    D = Conv(np.random.default_rng(8).standard_normal((3, 2, 3)), (2, 12), stride=stride, boundary=boundary)
    ref = np.linalg.norm(np.asarray(D.to_dense()), 2) ** 2
    L = float(D.lipschitz(num_iter=500))
    assert L <= ref * (1 + 1e-10) and L == pytest.approx(ref, rel=1e-4)


def test_normalize_filters(x64):
    f = np.random.default_rng(9).standard_normal((4, 2, 3, 3))
    f[1] = 0.0
    D = Conv(f, (2, 8, 8)).normalize_filters()
    norms = np.sqrt(np.sum(np.asarray(D.filters) ** 2, axis=(1, 2, 3)))
    np.testing.assert_allclose(norms, [1, 0, 1, 1], atol=1e-12)
    # circular atoms are then unit-norm columns (except the zero filter)
    cols = np.linalg.norm(np.asarray(D.to_dense()), axis=0).reshape(4, 64)
    np.testing.assert_allclose(cols[[0, 2, 3]], 1.0, atol=1e-12)


def test_validation_before_tracing():
    f = jnp.ones((2, 1, 3))
    with pytest.raises(ValueError, match="filters"):
        Conv(jnp.ones((2, 3)), (1, 8))
    with pytest.raises(ValueError, match="filters"):
        Conv(jnp.ones((2, 1, 3, 3, 3)), (1, 8, 8, 8))
    with pytest.raises(TypeError, match="filters"):
        Conv(jnp.ones((2, 1, 3), jnp.int32), (1, 8))
    with pytest.raises(ValueError, match="signal_shape.*channel"):
        Conv(f, (2, 8))
    with pytest.raises(ValueError, match="signal_shape"):
        Conv(f, (1, 8, 8))
    with pytest.raises(ValueError, match="stride"):
        Conv(f, (1, 8), stride=0)
    with pytest.raises(TypeError, match="stride"):
        Conv(f, (1, 8), stride=1.5)
    with pytest.raises(ValueError, match=r"boundary.*'circular', 'full', 'valid', 'same'"):
        Conv(f, (1, 8), boundary="reflect")
    with pytest.raises(ValueError, match=r"method.*'auto', 'fft', 'direct'"):
        Conv(f, (1, 8), method="winograd")
    with pytest.raises(ValueError, match="divide"):
        Conv(f, (1, 9), stride=2)
    with pytest.raises(ValueError, match="codes"):
        conv_synthesis(f, jnp.ones((3, 8)))
    with pytest.raises(ValueError, match="signal"):
        conv_adjoint(f, jnp.ones((2, 8)))
    with pytest.raises(ValueError, match="'full'.*filter size"):
        conv_adjoint(f, jnp.ones((1, 2)), boundary="full")


# ----------------------------------------------------------------------------------------------------
# inside the existing pursuits
# ----------------------------------------------------------------------------------------------------
def conv_problem(dim, seed=0):
    rng = np.random.default_rng(seed)
    if dim == 1:
        D = Conv(normalize_filters(rng.standard_normal((3, 1, 5))), (1, 32))
    else:
        D = Conv(normalize_filters(rng.standard_normal((2, 2, 3, 3))), (2, 10, 10), boundary="same")
    g = rng.standard_normal(D.code_shape) * (rng.random(D.code_shape) < 0.08)
    y = D.apply(jnp.asarray(g)) + 0.01 * jnp.asarray(rng.standard_normal(D.signal_shape))
    return D, y


def kkt_violation(D, y, a, lam):
    c = np.asarray(D.adjoint(y - D.apply(a)), np.float64)
    a = np.asarray(a, np.float64)
    on = a != 0
    v_on = np.abs(c[on] - lam * np.sign(a[on]))
    v_off = np.maximum(np.abs(c[~on]) - lam, 0)
    return max(v_on.max(initial=0), v_off.max(initial=0))


@pytest.mark.parametrize("dim", [1, 2])
def test_fista_with_conv_meets_kkt_jit_and_vmap(x64, dim):
    D, y = conv_problem(dim)
    lam = 0.05
    sol = sj.fista(D, y, lam, tol=1e-12, max_iter=20000)
    assert bool(sol.converged) and sol.codes.shape == D.code_shape
    assert np.count_nonzero(np.asarray(sol.codes)) > 0
    assert kkt_violation(D, y, sol.codes, lam) < 1e-7
    # under jit (the operator an argument: filters traced) and vmap over a batch of signals
    Y = jnp.stack([y, 0.5 * y, -y])
    batched = jax.jit(jax.vmap(lambda op, yy: sj.fista(op, yy, lam, tol=1e-12, max_iter=20000).codes,
                               in_axes=(None, 0)))
    codes = batched(D, Y)
    assert codes.shape == (3,) + D.code_shape
    np.testing.assert_allclose(codes[0], sol.codes, atol=1e-8)
    for i in range(3):
        assert kkt_violation(D, Y[i], codes[i], lam) < 1e-7


def test_grad_through_fista_scan_matches_finite_differences(x64):
    D, y = conv_problem(2, seed=1)
    lam, f0 = 0.05, D.filters

    def loss(filters):
        op = Conv(filters, D.signal_shape, boundary="same")
        a = sj.fista(op, y, lam, max_iter=15, mode="scan", L=4.0).codes
        return jnp.sum((op.apply(a) - y) ** 2)

    g = jax.grad(loss)(f0)
    assert g.shape == f0.shape and bool(jnp.all(jnp.isfinite(g)))
    v = jnp.asarray(np.random.default_rng(2).standard_normal(f0.shape))
    eps = 1e-6
    fd = (loss(f0 + eps * v) - loss(f0 - eps * v)) / (2 * eps)
    assert float(jnp.sum(g * v)) == pytest.approx(float(fd), rel=1e-5, abs=1e-8)
    # also through the exact circular Lipschitz constant (eigvalsh) and the signal
    D1, y1 = conv_problem(1, seed=1)
    gy = jax.grad(lambda yy: jnp.sum(sj.fista(D1, yy, lam, max_iter=10, mode="scan").codes ** 2))(y1)
    assert gy.shape == y1.shape and bool(jnp.all(jnp.isfinite(gy)))


# ----------------------------------------------------------------------------------------------------
# BatchConv: B images through one Conv, with hand-written VJPs
# ----------------------------------------------------------------------------------------------------
BATCH_CASES = [(d, boundary, s) for d in (1, 2) for boundary in BOUNDARIES for s in (1, 2)]


@pytest.mark.parametrize("d,boundary,s", BATCH_CASES)
def test_batch_conv_equals_vmapped_conv_and_its_gradients(d, boundary, s, x64):
    """BatchConv maps = vmap of the Conv maps, and its custom VJPs (adjoint identities: d/dG <X, D G> = D^T X,
    d/dY <Z, D^T Y> = D Z, filter gradient of the correlation) = JAX's derivatives of the vmapped Conv."""
    rng = np.random.default_rng(7)
    N = (12,) if d == 1 else (8, 6)
    k = (4,) if d == 1 else (3, 4)
    M, C, B = 3, 2, 4
    f = jnp.asarray(rng.standard_normal((M, C) + k))
    make = lambda f: Conv(f, (C,) + N, stride=s, boundary=boundary, method="direct")  # noqa: E731
    D = make(f)
    Db = sj.conv.BatchConv(D, B)
    assert Db.code_shape == (B,) + D.code_shape and Db.signal_shape == (B,) + D.signal_shape
    G = jnp.asarray(rng.standard_normal(Db.code_shape))
    Y = jnp.asarray(rng.standard_normal(Db.signal_shape))
    np.testing.assert_allclose(Db.apply(G), jax.vmap(D.apply)(G), atol=1e-12)
    np.testing.assert_allclose(Db.adjoint(Y), jax.vmap(D.adjoint)(Y), atol=1e-12)
    np.testing.assert_allclose(jnp.vdot(Y, Db.apply(G)), jnp.vdot(Db.adjoint(Y), G), rtol=1e-12)

    def loss(f, G, Y, batched):
        # nonlinear in both outputs so that every cotangent is a generic array
        if batched:
            op = sj.conv.BatchConv(make(f), B)
            return jnp.sum(jnp.sin(op.apply(G)) * Y) + jnp.sum(jnp.cos(op.adjoint(Y)) * G)
        op = make(f)
        return jnp.sum(jnp.sin(jax.vmap(op.apply)(G)) * Y) + jnp.sum(jnp.cos(jax.vmap(op.adjoint)(Y)) * G)

    ours = jax.grad(loss, (0, 1, 2))(f, G, Y, True)
    ref = jax.grad(loss, (0, 1, 2))(f, G, Y, False)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, atol=1e-10)


def test_batch_conv_float32_jit_and_bad_input():
    D = Conv(jax.random.normal(jax.random.PRNGKey(0), (4, 1, 6, 6)), (1, 28, 28), stride=2, boundary="full")
    Db = sj.conv.BatchConv(D, 3)
    G = jax.random.normal(jax.random.PRNGKey(1), Db.code_shape)
    out = jax.jit(lambda op, G: op.apply(G))(Db, G)       # a pytree: passes through jit
    assert out.dtype == jnp.float32 and out.shape == (3, 1, 28, 28)
    np.testing.assert_allclose(out, jax.vmap(D.apply)(G), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(Db.lipschitz(), D.lipschitz(), rtol=1e-6)
    with pytest.raises(ValueError, match="batch must be a positive int"):
        sj.conv.BatchConv(D, 0)
    with pytest.raises(TypeError, match="conv must be a sparsejax.conv.operator.Conv"):
        sj.conv.BatchConv(jnp.ones((3, 3)), 2)
