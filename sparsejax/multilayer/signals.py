"""Signal generators that truly obey the multi-layer sparse models.

Two-layer dense model of Aberdam, Sulam & Elad ("Multi-layer sparse coding: the holistic way",
SIAM J. Math. Data Sci. 2019): x = D_1 G_1, G_1 = D_2 G_2 with G_2 sparse (support L_2, |L_2| = s_2) and
G_1 *co*-sparse (it vanishes on a cosupport C, |C| = l_1 < s_2). The construction draws L_2 and C, takes
an orthonormal basis K of null(D_2[C, L_2]) (dimension s_2 - l_1 for generic D_2), G_2[L_2] = K alpha,
G_1 = D_2 G_2 (zero on C by construction; set to exactly 0 there), x = D_1 G_1, y = x + v.

Multi-layer (ML-CSC, Papyan, Romano & Elad, JMLR 2017): G_{i-1} = D_i G_i for i = K..1 (G_0 = x) from a
sparse deepest code G_K with a chosen number of nonzeros and contrast |G_K^min| / |G_K^max|. The deeper
dictionaries D_i (i >= 2) have sparse filters / atoms so that the intermediate codes stay sparse. The
measured stripe l0,inf (``sparsejax.conv.norms.stripe_l0_inf``; plain l0 for dense layers) and contrast of every
layer are returned with the signal.

All generators are pure functions of a PRNG key with static sizes: jittable and vmappable over keys.
"""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple, Tuple

import jax
import jax.numpy as jnp

from sparsejax import _validate as V
from sparsejax.conv.norms import stripe_l0_inf
from sparsejax.conv.operator import (
    Conv,
    conv_code_shape,
    conv_synthesis,
    normalize_filters,
)
from sparsejax.dictionary import normalize_atoms
from sparsejax.multilayer._checks import check_layers, dense_pair
from sparsejax.operators import Dense

__all__ = ["TwoLayerSignal", "MultiLayerSignal", "two_layer_dense_signal", "null_space",
           "random_conv_layers", "random_dense_layers", "conv_multilayer_signal", "dense_multilayer_signal"]


# ----------------------------------------------------------------------------------------------------
# two-layer dense model
# ----------------------------------------------------------------------------------------------------
class TwoLayerSignal(NamedTuple):
    """A signal of the two-layer dense model (``two_layer_dense_signal``).

    Attributes:
      x: the clean signal D_1 G_1, shape (n,).
      y: x + noise.
      G1: (m_1,), exactly zero on cosupport1.
      G2: (m_2,), supported on support2.
      support2: (s_2,) int32, sorted.
      cosupport1: (l_1,) int32, sorted.
      noise: (n,).

    Example:
      >>> import jax
      >>> import sparsejax as sj
      >>> D1 = sj.random_gaussian(jax.random.PRNGKey(0), 6, 8)
      >>> D2 = sj.random_gaussian(jax.random.PRNGKey(1), 8, 5)
      >>> sig = sj.multilayer.two_layer_dense_signal(jax.random.PRNGKey(2), D1, D2, 3, 1)
      >>> sig.support2.shape, sig.cosupport1.shape, float(sig.G1[sig.cosupport1[0]])
      ((3,), (1,), 0.0)
    """

    x: jax.Array
    y: jax.Array
    G1: jax.Array
    G2: jax.Array
    support2: jax.Array
    cosupport1: jax.Array
    noise: jax.Array


def null_space(A, dim: int) -> jax.Array:
    """Orthonormal basis of null(A) of static dimension ``dim`` (= cols - rank for a full-row-rank A).

    K = the last ``dim`` right singular vectors of A (SVD with ``full_matrices=True``), shape (cols, dim);
    A K = 0 and K^T K = I when rank(A) = cols - dim.

    Args:
      A: (rows, cols) matrix (rows may be 0: then K is the last ``dim`` columns of the identity).
      dim: the static dimension of the null space.

    Returns:
      K, shape (cols, dim).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> K = sj.multilayer.null_space(jnp.array([[1.0, 1.0, 0.0]]), 2)
      >>> K.shape, bool(jnp.allclose(jnp.array([[1.0, 1.0, 0.0]]) @ K, 0.0, atol=1e-6))
      ((3, 2), True)
    """
    cols = A.shape[-1]
    if A.shape[-2] == 0:
        return jnp.eye(cols, dtype=A.dtype)[:, cols - dim:]
    _, _, vh = jnp.linalg.svd(A, full_matrices=True)
    return vh[cols - dim:].T


def _random_subset(key, n: int, k: int) -> jax.Array:
    """k distinct indices of range(n), sorted (static k)."""
    return jnp.sort(jax.random.permutation(key, n)[:k]).astype(jnp.int32)


@partial(jax.jit, static_argnames=("s2", "l1"))
def _two_layer(key, D1, D2, amplitude, sigma, *, s2, l1):
    dtype = D1.dtype
    k_s, k_c, k_a, k_v = jax.random.split(key, 4)
    L2 = _random_subset(k_s, D2.shape[1], s2)
    C = _random_subset(k_c, D2.shape[0], l1)
    K = null_space(D2[C][:, L2], s2 - l1)                       # (s2, s2 - l1)
    alpha = jax.random.normal(k_a, (s2 - l1,), dtype)
    g = K @ alpha
    G2 = jnp.zeros(D2.shape[1], dtype).at[L2].set(g)
    G1 = (D2 @ G2).at[C].set(0.0)
    x = D1 @ G1
    scale = amplitude / jnp.maximum(jnp.linalg.norm(x), jnp.finfo(dtype).tiny)
    G2, G1, x = scale * G2, scale * G1, scale * x
    noise = sigma * jax.random.normal(k_v, x.shape, dtype)
    return TwoLayerSignal(x, x + noise, G1, G2, L2, C, noise)


def two_layer_dense_signal(key, D1, D2, s2: int, l1: int, *, amplitude=1.0, sigma=0.0) -> TwoLayerSignal:
    """Draw a signal of the two-layer dense model with a sparse G_2 and a co-sparse G_1 (Aberdam, Sulam, Elad,
    "Multi-layer sparse coding: the holistic way", SIAM J. Math. Data Sci. 2019).

    L_2: s_2 random atoms of D_2; C: l_1 random entries of G_1; K = null(D_2[C, L_2]) (orthonormal,
    s_2 x (s_2 - l_1)); alpha ~ N(0, I); G_2[L_2] = K alpha; G_1 = D_2 G_2 (set exactly to 0 on C);
    x = D_1 G_1, all scaled so that ||x||_2 = ``amplitude``; y = x + v, v ~ N(0, sigma^2 I).

    Args:
      key: PRNG key (vmap over keys for a batch).
      D1: (n, m_1) array or ``Dense``; D2: (m_1, m_2) array or ``Dense``.
      s2: cardinality of G_2 (static int, l_1 < s_2 <= m_2).
      l1: cocardinality of G_1 (static int, 0 <= l_1 < s_2, l_1 <= m_1).
      amplitude: ||x||_2 (traced). The published script of the paper uses 10^(snr/10) sqrt(n) sigma.
      sigma: noise standard deviation (traced).

    Returns:
      ``TwoLayerSignal(x, y, G1, G2, support2, cosupport1, noise)``.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D1 = sj.random_gaussian(jax.random.PRNGKey(0), 6, 8)
      >>> D2 = sj.random_gaussian(jax.random.PRNGKey(1), 8, 5)
      >>> sig = sj.multilayer.two_layer_dense_signal(jax.random.PRNGKey(2), D1, D2, 3, 1, amplitude=2.0)
      >>> int(jnp.sum(sig.G2 != 0)), round(float(jnp.linalg.norm(sig.x)), 4)
      (3, 2.0)
    """
    D1, D2 = dense_pair(D1, D2)
    m1, m2 = D2.shape
    s2 = V.check_positive_int("s2", s2, m2, "number of atoms of D2")
    l1 = V.check_int("l1", l1, 0, m1, "m_1, the number of atoms of D1")
    if l1 >= s2:
        raise ValueError(f"l1 (cocardinality of G_1) must be < s2 = {s2} so that the null space is nonzero, got {l1}")
    V.check_nonnegative("amplitude", amplitude, strict=True)
    V.check_nonnegative("sigma", sigma)
    amplitude = jnp.asarray(amplitude, D1.dtype)
    sigma = jnp.asarray(sigma, D1.dtype)
    return _two_layer(key, D1, D2, amplitude, sigma, s2=s2, l1=l1)


# ----------------------------------------------------------------------------------------------------
# random multi-layer dictionaries with sparse deeper layers
# ----------------------------------------------------------------------------------------------------
def _per_layer_ints(name, v, K, *, allow_none=False):
    """One positive int per layer (one value for every layer, or a length-K sequence; None entries kept when
    ``allow_none``)."""
    if v is None and allow_none:
        return (None,) * K
    if not isinstance(v, (tuple, list)):
        v = (v,) * K
    if len(v) != K:
        raise ValueError(f"{name} must have one entry per layer ({K}), got {len(v)}")
    return tuple(None if (x is None and allow_none) else V.check_positive_int(f"{name}[{i}]", x)
                 for i, x in enumerate(v))


@partial(jax.jit, static_argnames=("shapes", "nnz", "dtype"))
def _weights(key, *, shapes, nnz, dtype):
    """One Gaussian (M, F) weight array per entry of ``shapes``; rows of array i keep ``nnz[i]`` random
    entries (all when None). One compilation for all layers."""
    out = []
    for (M, F), k in zip(shapes, nnz):
        key, k_w, k_m = jax.random.split(key, 3)
        w = jax.random.normal(k_w, (M, F), dtype)
        if k is not None and k < F:
            u = jax.random.uniform(k_m, (M, F))
            kth = jax.lax.top_k(u, k)[0][:, k - 1:k]          # the k largest scores of each row are kept
            w = jnp.where(u >= kth, w, jnp.zeros_like(w))
        out.append(w)
    return tuple(out)


def random_conv_layers(key, signal_shape, num_filters, filter_sizes, *, filter_nnz=None, stride=1,
                       boundary: str = "circular", dtype=jnp.float32) -> Tuple[Conv, ...]:
    """Random ML-CSC dictionaries (D_1, ..., D_K) as ``Conv`` operators with unit-norm filters.

    Layer i has ``num_filters[i]`` filters over the M_{i-1} channels of the previous layer (C for i = 1);
    filters of layers i >= 2 keep only ``filter_nnz[i]`` random nonzero taps (over all channels), so that
    G_{i-1} = D_i G_i stays sparse. Filters are Gaussian, then normalised. ``method="direct"`` (exact zeros).

    Args:
      key: PRNG key.
      signal_shape: (C, N) (1-D) or (C, H, W) (2-D).
      num_filters: sequence (M_1, ..., M_K).
      filter_sizes: one int for all layers, or a length-K sequence of ints or (h, w) tuples.
      filter_nnz: nonzero taps per filter for layers >= 2 (int or per-layer sequence; entry 0 ignored);
        None keeps dense filters.
      stride: int (all layers) or per-layer sequence.
      boundary: "circular" (periodic, the CSC theory) or "full" / "valid" / "same".
      dtype: float dtype of the filters.

    Returns:
      Tuple of ``Conv`` whose shapes chain (``layers[i].signal_shape == layers[i-1].code_shape``).

    Example:
      >>> import jax
      >>> import sparsejax as sj
      >>> L = sj.multilayer.random_conv_layers(jax.random.PRNGKey(0), (1, 32), (4, 6), (5, 3), filter_nnz=2)
      >>> [D.code_shape for D in L], int((L[1].filters[0] != 0).sum())
      ([(4, 32), (6, 32)], 2)
    """
    signal_shape = tuple(int(v) for v in signal_shape)
    if len(signal_shape) not in (2, 3):
        raise ValueError(f"signal_shape must be (C, N) or (C, H, W), got {signal_shape}")
    d = len(signal_shape) - 1
    if not isinstance(num_filters, (tuple, list)) or not num_filters:
        raise TypeError(f"num_filters must be a non-empty sequence (M_1, ..., M_K), got {num_filters!r}")
    K = len(num_filters)
    Ms = _per_layer_ints("num_filters", tuple(num_filters), K)
    if not isinstance(filter_sizes, (tuple, list)):
        filter_sizes = (filter_sizes,) * K
    if len(filter_sizes) != K:
        raise ValueError(f"filter_sizes must have one entry per layer ({K}), got {len(filter_sizes)}")
    ks = []
    for i, k in enumerate(filter_sizes):
        k = (k,) * d if isinstance(k, int) else tuple(k)
        if len(k) != d:
            raise ValueError(f"filter_sizes[{i}] must have {d} entries for a {d}-D signal, got {k}")
        ks.append(tuple(V.check_positive_int(f"filter_sizes[{i}]", v) for v in k))
    nnz = _per_layer_ints("filter_nnz", filter_nnz, K, allow_none=True) if filter_nnz is not None else (None,) * K
    strides = _per_layer_ints("stride", stride, K)
    shapes, shape = [], signal_shape
    for M, k, s in zip(Ms, ks, strides):
        shapes.append((shape, (M, shape[0]) + k, s))
        fshape = (M, shape[0]) + k
        shape = tuple(conv_code_shape(fshape, shape, stride=s, boundary=boundary))
    ws = _weights(key, shapes=tuple((f[0], math.prod(f[1:])) for _, f, _ in shapes),
                  nnz=(None,) + tuple(nnz[1:]), dtype=jnp.dtype(dtype))
    layers = [Conv(normalize_filters(w.reshape(f)), sh, stride=s, boundary=boundary, method="direct")
              for w, (sh, f, s) in zip(ws, shapes)]
    return tuple(layers)


def random_dense_layers(key, dims, *, atom_nnz=None, dtype=jnp.float32) -> Tuple[Dense, ...]:
    """Random multi-layer dense dictionaries D_i of shape (dims[i], dims[i+1]) with unit-norm atoms.

    Atoms of layers i >= 2 keep ``atom_nnz[i]`` random nonzeros (int or per-layer sequence; None: dense).

    Args:
      key: PRNG key.
      dims: (n, m_1, ..., m_K).
      atom_nnz: nonzeros per atom of layers >= 2.
      dtype: float dtype.

    Returns:
      Tuple of ``Dense`` (D_1, ..., D_K).

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> L = sj.multilayer.random_dense_layers(jax.random.PRNGKey(0), (8, 12, 16), atom_nnz=3)
      >>> [D.atoms.shape for D in L], int(jnp.sum(L[1].atoms[:, 0] != 0))
      ([(8, 12), (12, 16)], 3)
    """
    if not isinstance(dims, (tuple, list)) or len(dims) < 2:
        raise TypeError(f"dims must be a sequence (n, m_1, ..., m_K) with K >= 1, got {dims!r}")
    dims = tuple(V.check_positive_int(f"dims[{i}]", v) for i, v in enumerate(dims))
    K = len(dims) - 1
    nnz = _per_layer_ints("atom_nnz", atom_nnz, K, allow_none=True) if atom_nnz is not None else (None,) * K
    ws = _weights(key, shapes=tuple((dims[i + 1], dims[i]) for i in range(K)), nnz=(None,) + tuple(nnz[1:]),
                  dtype=jnp.dtype(dtype))
    layers = [Dense(normalize_atoms(w.T)) for w in ws]      # one row of w per atom
    return tuple(layers)


# ----------------------------------------------------------------------------------------------------
# multi-layer signals
# ----------------------------------------------------------------------------------------------------
class MultiLayerSignal(NamedTuple):
    """A signal of the multi-layer model (``conv_multilayer_signal``, ``dense_multilayer_signal``).

    Attributes:
      x: the clean signal D_1 G_1.
      y: x + noise.
      codes: (G_1, ..., G_K).
      noise: y - x.
      l0_inf: (K,) stripe l0,inf per layer (Conv) or ||G_i||_0 (Dense).
      contrast: (K,) |G_i^min| / |G_i^max| over the nonzeros of G_i.
      max_abs: (K,) |G_i^max|.

    Example:
      >>> import jax
      >>> import sparsejax as sj
      >>> L = sj.multilayer.random_dense_layers(jax.random.PRNGKey(0), (8, 12, 16), atom_nnz=2)
      >>> sig = sj.multilayer.dense_multilayer_signal(jax.random.PRNGKey(1), L, 2)
      >>> len(sig.codes), sig.l0_inf.shape, int(sig.l0_inf[-1])
      (2, (2,), 2)
    """

    x: jax.Array
    y: jax.Array
    codes: Tuple[jax.Array, ...]
    noise: jax.Array
    l0_inf: jax.Array
    contrast: jax.Array
    max_abs: jax.Array


def _synth_exact(D, G):
    """D G with exact zeros where no atom contributes (direct convolution for Conv)."""
    if isinstance(D, Conv):
        return conv_synthesis(D.filters, G, stride=D.stride, boundary=D.boundary, method="direct",
                              signal_size=D.signal_shape[1:])
    return D.apply(G)


def _layer_l0_inf(D, G):
    if isinstance(D, Conv):
        # codes overlapping one patch: |s p - i| < k, at most 2 ceil(k / s) - 1 positions per axis
        window = tuple(-(-k // D.stride) for k in D.filter_shape)
        return stripe_l0_inf(G, window, periodic=D.boundary == "circular").astype(jnp.int32)
    return jnp.sum(G != 0).astype(jnp.int32)


def _contrast(G):
    a = jnp.abs(G)
    amax = jnp.max(a)
    amin = jnp.min(jnp.where(a > 0, a, jnp.inf))
    return jnp.where(amax > 0, amin / jnp.maximum(amax, jnp.finfo(G.dtype).tiny), 0.0), amax


def _draw_deepest(key, code_shape, nnz, sep, contrast, scale, dtype):
    """G_K: ``nnz`` nonzeros on a random sub-lattice of spacing ``sep`` (one filter per site), magnitudes
    uniform in [contrast, 1] * scale, random signs."""
    M, P = code_shape[0], code_shape[1:]
    k_off, k_pick, k_m, k_mag, k_sgn = jax.random.split(key, 5)
    if not P:                                   # dense codes: nnz distinct atoms
        where = (jax.random.permutation(k_pick, M)[:nnz],)
    else:
        sites = tuple(p // s for p, s in zip(P, sep))
        offsets = [jax.random.randint(kk, (), 0, s) for kk, s in zip(jax.random.split(k_off, len(P)), sep)]
        idx = jax.random.permutation(k_pick, math.prod(sites))[:nnz]
        coords = jnp.unravel_index(idx, sites)
        pos = tuple(o + s * c for o, s, c in zip(offsets, sep, coords))
        where = (jax.random.randint(k_m, (nnz,), 0, M),) + pos
    mag = scale * jax.random.uniform(k_mag, (nnz,), dtype, contrast, 1.0)
    # pin the extremes so that the contrast is exactly the requested one
    mag = mag.at[0].set(scale).at[nnz - 1].set(scale * contrast) if nnz > 1 else mag.at[0].set(scale)
    sgn = jnp.where(jax.random.bernoulli(k_sgn, 0.5, (nnz,)), 1.0, -1.0).astype(dtype)
    return jnp.zeros(code_shape, dtype).at[where].set(sgn * mag)


@partial(jax.jit, static_argnames=("nnz", "sep"))
def _multilayer(key, layers, contrast, scale, sigma, *, nnz, sep):
    dtype = layers[0].dtype
    k_g, k_v = jax.random.split(key)
    GK = _draw_deepest(k_g, tuple(layers[-1].code_shape), nnz, sep, contrast, scale, dtype)
    codes = [GK]
    for D in reversed(layers[1:]):
        codes.insert(0, _synth_exact(D, codes[0]))
    x = _synth_exact(layers[0], codes[0])
    noise = sigma * jax.random.normal(k_v, x.shape, dtype)
    l0 = jnp.stack([_layer_l0_inf(D, G) for D, G in zip(layers, codes)])
    cm = [_contrast(G) for G in codes]
    return MultiLayerSignal(x, x + noise, tuple(codes), noise, l0, jnp.stack([c for c, _ in cm]),
                            jnp.stack([a for _, a in cm]))


def _check_common(layers, nnz_K, contrast, scale, sigma, kind):
    layers = check_layers(layers)
    for i, D in enumerate(layers):
        if not isinstance(D, kind):
            raise TypeError(f"layers[{i}] must be a {kind.__name__} operator, got {type(D).__name__}")
    nnz_K = V.check_positive_int("nnz_K", nnz_K)
    V.check_nonnegative("contrast", contrast, strict=True)
    if V.is_concrete(contrast) and float(contrast) > 1:
        raise ValueError(f"contrast |G_K^min| / |G_K^max| must be in (0, 1], got {contrast}")
    V.check_nonnegative("scale", scale, strict=True)
    V.check_nonnegative("sigma", sigma)
    dtype = jnp.result_type(*[D.dtype for D in layers])
    return layers, nnz_K, *(jnp.asarray(v, dtype) for v in (contrast, scale, sigma))


def conv_multilayer_signal(key, layers, nnz_K: int, *, contrast=0.5, scale=1.0, sigma=0.0,
                           separation=None) -> MultiLayerSignal:
    """Draw an ML-CSC signal: G_K with ``nnz_K`` well-separated nonzeros, G_{i-1} = D_i G_i, x = D_1 G_1.

    G_K: nonzero positions form a random subset of a lattice of spacing ``separation`` (random offset; one
    random filter per chosen site), so that ||G_K||^s_{0,inf} stays small; magnitudes uniform in
    [contrast, 1] * scale with the two extremes attained (|G_K^min| / |G_K^max| = contrast exactly), random
    signs. Intermediate codes are computed by direct convolution (exact zeros), y = x + N(0, sigma^2 I).

    Args:
      key: PRNG key (vmap over keys for a batch).
      layers: tuple of ``Conv`` (D_1, ..., D_K) whose shapes chain (e.g. from ``random_conv_layers``;
        sparse filters for i >= 2 keep G_{i-1} sparse).
      nnz_K: number of nonzeros of G_K (static).
      contrast: |G_K^min| / |G_K^max| in (0, 1].
      scale: |G_K^max|.
      sigma: noise standard deviation.
      separation: lattice spacing of G_K's nonzeros per spatial axis (static int or tuple; default the
        filter size of D_K, so that a stripe of G_K holds at most 2 sites per axis).

    Returns:
      ``MultiLayerSignal(x, y, codes, noise, l0_inf, contrast, max_abs)``; l0_inf[i] = ||G_{i+1}||^s_{0,inf}
      measured with ``conv_norms.stripe_l0_inf`` (window ceil(k/s) per axis for stride s: codes whose atoms
      overlap one patch), contrast[i] = |G_{i+1}^min| / |G_{i+1}^max|.

    The model: V. Papyan, Y. Romano, M. Elad, "Convolutional neural networks analyzed via convolutional
    sparse coding", JMLR 18, 2017.

    Example:
      >>> import jax
      >>> import sparsejax as sj
      >>> L = sj.multilayer.random_conv_layers(jax.random.PRNGKey(0), (1, 64), (4, 6), (5, 3), filter_nnz=2)
      >>> sig = sj.multilayer.conv_multilayer_signal(jax.random.PRNGKey(1), L, 3, contrast=0.5)
      >>> [G.shape for G in sig.codes], round(float(sig.contrast[-1]), 4)
      ([(4, 64), (6, 64)], 0.5)
    """
    layers, nnz_K, contrast, scale, sigma = _check_common(layers, nnz_K, contrast, scale, sigma, Conv)
    DK = layers[-1]
    P = tuple(DK.code_shape[1:])
    if separation is None:
        separation = DK.filter_shape
    sep = (separation,) * len(P) if isinstance(separation, int) else tuple(separation)
    if len(sep) != len(P):
        raise ValueError(f"separation must have {len(P)} entries, got {separation!r}")
    sep = tuple(V.check_positive_int("separation", s) for s in sep)
    if any(s > p for s, p in zip(sep, P)):
        raise ValueError(f"separation {sep} exceeds the code size {P} of the last layer")
    n_sites = math.prod(p // s for p, s in zip(P, sep))
    if nnz_K > n_sites:
        raise ValueError(f"nnz_K = {nnz_K} exceeds the {n_sites} lattice sites of spacing {sep} in codes of "
                         f"spatial size {P}; lower nnz_K or separation")
    return _multilayer(key, layers, contrast, scale, sigma, nnz=nnz_K, sep=sep)


def dense_multilayer_signal(key, layers, nnz_K: int, *, contrast=0.5, scale=1.0, sigma=0.0) -> MultiLayerSignal:
    """Dense multi-layer analogue of ``conv_multilayer_signal``: G_K with ``nnz_K`` random nonzeros
    (magnitudes in [contrast, 1] * scale, extremes attained, random signs), G_{i-1} = D_i G_i, x = D_1 G_1.

    Args:
      key: PRNG key.
      layers: tuple of ``Dense`` (D_1, ..., D_K) that chain (e.g. ``random_dense_layers`` with sparse atoms
        for i >= 2).
      nnz_K, contrast, scale, sigma: as in ``conv_multilayer_signal``.

    Returns:
      ``MultiLayerSignal``; l0_inf[i] = ||G_{i+1}||_0.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> L = sj.multilayer.random_dense_layers(jax.random.PRNGKey(0), (8, 12, 16), atom_nnz=2)
      >>> sig = sj.multilayer.dense_multilayer_signal(jax.random.PRNGKey(1), L, 2, scale=3.0)
      >>> round(float(sig.max_abs[-1]), 4), bool(jnp.allclose(L[0].apply(sig.codes[0]), sig.x))
      (3.0, True)
    """
    layers, nnz_K, contrast, scale, sigma = _check_common(layers, nnz_K, contrast, scale, sigma, Dense)
    mK = layers[-1].code_shape[0]
    if nnz_K > mK:
        raise ValueError(f"nnz_K must be <= m_K = {mK}, got {nnz_K}")
    return _multilayer(key, layers, contrast, scale, sigma, nnz=nnz_K, sep=())
