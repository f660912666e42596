"""Convolutional synthesis and its adjoint (the convolutional sparse coding model), and the ``Conv`` operator.

Shapes (d = 1 or 2 spatial dimensions):

    filters  (M, C, *k)     M filters, C signal channels, k = (h,) or (h, w)
    codes    (M, *P)        one feature map per filter
    signal   (C, *N)        C channels

Synthesis (a sum of true convolutions, as in SPORCO / CSC) with stride s, per spatial axis:

    X_c[n] = sum_m sum_p G_m[p] d_{m,c}[n + lo - s p]                (d zero outside [0, k))

i.e. code coefficient p places atom d_m with its first sample at signal position s p - lo. For s = 1 and
lo = 0 this is X_c = sum_m d_{m,c} * G_m. The adjoint is the (strided) correlation

    (A^T Y)_m[p] = sum_c sum_j d_{m,c}[j] Y_c[s p - lo + j]           (Y zero outside [0, N)).

Boundary modes (sizes per spatial axis; k filter size, s stride, N signal size, P code size):

* ``"circular"``: periodic, indices mod N; s must divide N and k <= N; P = N / s, lo = 0.
  X = D G with D = [C_1 ... C_M] banded circulant for C = 1, s = 1.
* ``"full"``: zero boundary, every atom lies wholly inside the signal (conv-transpose with VALID padding;
  the adjoint is the CNN layer's VALID strided convolution). N >= k; P = floor((N - k) / s) + 1, lo = 0;
  from codes the default N = (P - 1) s + k (for s = 1 the full linear convolution, N = P + k - 1).
* ``"valid"``: zero boundary, the code map holds every atom that overlaps the signal (atoms may hang over
  the edges; the signal is the *valid* part of the convolution). P = floor((N + k - 2) / s) + 1, lo = k - 1;
  default N = (P - 1) s - k + 2 (for s = 1, N = P - k + 1 like ``scipy.signal.convolve(..., "valid")``).
* ``"same"``: zero boundary, P = ceil(N / s), lo = floor((k - 1) / 2) (centred atoms; for s = 1 equal to
  ``scipy.signal.convolve(..., "same")`` and the adjoint is a SAME-padded correlation); default N = P s.

Two implementations, equal to float precision:

* ``"fft"``: ``jnp.fft.rfftn`` over the spatial axes; circular: size N; zero boundary: a fast size
  >= (P - 1) s + k (the linear-convolution size), then crop. Stride: zero-insertion (synthesis) and
  decimation (adjoint).
* ``"direct"``: ``lax.conv_general_dilated`` (adjoint: strided correlation; synthesis: the transposed
  convolution in polyphase form, one stride-1 convolution with the s^d phase sub-filters of size
  K = ceil(k / s) as extra output channels followed by a pixel shuffle, never an s-dilated input; see
  ``_transposed_conv``); circular mode wraps/folds the edges.
* ``"auto"``: a flop count. Direct: the larger of the analysis M C |k| |P| and the synthesis
  M C s^d |P + K - 1| min(|P|, |K|) multiply-adds. FFT: (M + C + M C) L log2 L for the transforms (filters
  are transformed on every call) plus M C L for the per-frequency products, L the FFT size, weighted by 2
  (complex arithmetic; measured on CPU). FFT is used when it is cheaper, i.e. roughly when the filter area
  |k| exceeds 2 (1 + 1/M + 1/C) s^d log2 L.

References: B. Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 2016;
V. Papyan, J. Sulam, M. Elad, "Working locally thinking globally", IEEE TSP 2017.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sparsejax import _validate as V
from sparsejax.conv._geometry import (
    BOUNDARIES,
    METHODS,
    Geom,
    check_filters,
    check_stride,
    conv_code_shape,
    default_signal_size,
    fast_len,
    geometry,
    normalize_filters,
    resolve_method,
)
from sparsejax.conv.fourier import irfft, rfft
from sparsejax.conv.norms import conv_coherence
from sparsejax.operators import LinearOperator, power_iteration

__all__ = [
    "BOUNDARIES",
    "METHODS",
    "conv_synthesis",
    "conv_adjoint",
    "conv_code_shape",
    "normalize_filters",
    "Conv",
    "BatchConv",
]


_HI = lax.Precision.HIGHEST


# ----------------------------------------------------------------------------------------------------
# array helpers
# ----------------------------------------------------------------------------------------------------
def _dn(d: int):
    return ("NCH", "OIH", "NCH") if d == 1 else ("NCHW", "OIHW", "NCHW")


def _pad(x, cfg):
    """lax.pad on the trailing len(cfg) axes with (lo, hi, interior); negative lo/hi crop."""
    full = [(0, 0, 0)] * (x.ndim - len(cfg)) + list(cfg)
    return lax.pad(x, jnp.zeros((), x.dtype), full)


def _place(full, g: Geom):
    """Signal = window [lo, lo + N) of the un-cropped output (zero outside [0, F))."""
    return _pad(full, [(-lo, n + lo - f, 0) for lo, n, f in zip(g.lo, g.N, g.F)])


def _unplace(y, g: Geom):
    """Adjoint of ``_place``: embed the signal at offset lo in a zero array of size F."""
    return _pad(y, [(lo, f - n - lo, 0) for lo, n, f in zip(g.lo, g.N, g.F)])


def _decimate(z, g: Geom):
    """z[..., ::s] restricted to the first P samples per axis."""
    d = g.d
    start = (0,) * z.ndim
    limit = z.shape[:-d] + tuple((p - 1) * g.stride + 1 for p in g.P)
    strides = (1,) * (z.ndim - d) + (g.stride,) * d
    return lax.slice(z, start, limit, strides)


def _fold(x, N: Tuple[int, ...]):
    """Periodic fold of the trailing axes onto sizes N: out[n] = sum_{q = n mod N} x[q]."""
    d = len(N)
    for a, n in enumerate(N):
        ax = x.ndim - d + a
        L = x.shape[ax]
        r = -(-L // n)
        cfg = [(0, 0, 0)] * x.ndim
        cfg[ax] = (0, r * n - L, 0)
        x = lax.pad(x, jnp.zeros((), x.dtype), cfg)
        x = x.reshape(x.shape[:ax] + (r, n) + x.shape[ax + 1:]).sum(axis=ax)
    return x


# ----------------------------------------------------------------------------------------------------
# the two implementations
# ----------------------------------------------------------------------------------------------------
def _phase_filters(filters, g: Geom):
    """Polyphase split of the filters: (C * s^d, M, *K), K = ceil(k / s), the phases in row-major order
    (c, r_1, .., r_d) along the first axis, entry [(c, r), m, j] = d_{m,c}[s j + r] (zero for s j + r >= k)."""
    d, s = g.d, g.stride
    K = tuple(-(-kk // s) for kk in g.k)
    f = _pad(filters, [(0, KK * s - kk, 0) for KK, kk in zip(K, g.k)])
    f = f.reshape((g.M, g.C) + sum(((KK, s) for KK in K), ()))           # (M, C, K_1, s, .., K_d, s)
    perm = (1,) + tuple(3 + 2 * a for a in range(d)) + (0,) + tuple(2 + 2 * a for a in range(d))
    return jnp.transpose(f, perm).reshape((g.C * s ** d, g.M) + K), K


def _pixel_shuffle(out, g: Geom):
    """Interleave the phase outputs (B, C * s^d, *Q) into (B, C, *(Q s)), out[b, c, s q + r] = phase r at q, and
    crop to the transposed-convolution size (P - 1) s + k (also for "circular", whose F is N)."""
    d, s = g.d, g.stride
    B, Q = out.shape[0], out.shape[2:]
    out = out.reshape((B, g.C) + (s,) * d + Q)
    perm = (0, 1) + sum(((2 + d + a, 2 + a) for a in range(d)), ())     # (B, C, Q_1, s, .., Q_d, s)
    out = jnp.transpose(out, perm).reshape((B, g.C) + tuple(q * s for q in Q))
    return out[(slice(None), slice(None)) + tuple(slice(0, (p - 1) * s + kk) for p, kk in zip(g.P, g.k))]


def _transposed_conv_batch(filters, codes, g: Geom):
    """Direct: full transposed convolution, codes (B, M, *P) -> (B, C, *((P-1)s + k)), without input dilation.

    Polyphase (sub-pixel) form: with n = s q + r (0 <= r < s per axis) and the phase filters
    d^r_{m,c}[j] = d_{m,c}[s j + r] of size K = ceil(k / s),

        X_c[s q + r] = sum_m sum_p G_m[p] d^r_{m,c}[q - p],

    i.e. s^d ordinary stride-1 full convolutions of the (undilated) codes, one per phase, computed as ONE
    convolution with the C s^d phases as output channels, then interleaved ("pixel shuffle") and cropped
    to (P - 1) s + k <= (P + K - 1) s. This costs M C |k| |P| multiply-adds instead of the M C |k| |F| of a convolution
    with s-dilated input. When the code map is smaller than the phase filters (|P| < |K|, e.g. a 1x1 code
    of a last layer) the roles swap: the phase filters are the input (the C s^d phases as its batch) and
    the flipped codes the kernel, M C s^d |P| |P + K - 1| multiply-adds instead of M C s^d |K| |P + K - 1|.
    The batch B is the input batch (first form) or the output features (second form) of the one convolution.

    Reference: W. Shi et al., "Real-time single image and video super-resolution using an efficient
    sub-pixel convolutional neural network", CVPR 2016 (the sub-pixel / polyphase identity).
    """
    d = g.d
    phases, K = _phase_filters(filters, g)                                # (C s^d, M, *K)
    if math.prod(g.P) < math.prod(K):
        rhs = jnp.flip(codes, axis=tuple(range(2, 2 + d)))                 # (B, M, *P)
        out = lax.conv_general_dilated(
            phases, rhs, window_strides=(1,) * d, padding=[(p - 1, p - 1) for p in g.P],
            dimension_numbers=_dn(d), precision=_HI)                       # (C s^d, B, *Q)
        out = jnp.swapaxes(out, 0, 1)
    else:
        rhs = jnp.flip(phases, axis=tuple(range(2, 2 + d)))               # (C s^d, M, *K)
        out = lax.conv_general_dilated(
            codes, rhs, window_strides=(1,) * d, padding=[(KK - 1, KK - 1) for KK in K],
            dimension_numbers=_dn(d), precision=_HI)                       # (B, C s^d, *Q)
    return _pixel_shuffle(out, g)                                          # (B, C, *((P-1)s + k))


def _strided_corr_batch(filters, t, g: Geom):
    """Direct: VALID strided correlation of a (B, C, *T) array with the filters -> (B, M, *P')."""
    return lax.conv_general_dilated(t, filters, window_strides=(g.stride,) * g.d, padding="VALID",
                                    dimension_numbers=_dn(g.d), precision=_HI)


def _transposed_conv(filters, codes, g: Geom):
    """One image: (M, *P) -> (C, *((P-1)s + k)); see ``_transposed_conv_batch``."""
    return _transposed_conv_batch(filters, codes[None], g)[0]


def _strided_corr(filters, t, g: Geom):
    """One image: VALID strided correlation of a (C, *T) array with the filters -> (M, *P')."""
    return _strided_corr_batch(filters, t[None], g)[0]


# The batched pair with hand-written VJPs. JAX differentiates a strided correlation with respect to its input
# by an lhs-dilated convolution and the polyphase synthesis with respect to its filters by a convolution
# with the batch as features; on XLA:CPU both run 10-20x slower than the mathematically equal kernels below:
#   d/dcodes   <X_bar, D G>  = D^T X_bar            (the strided correlation)
#   d/dsignal  <G_bar, D^T Y> = D G_bar             (the polyphase transposed convolution)
#   d/dfilters of either: d_bar[m, c, j] = sum_b sum_p G[b, m, p] Y[b, c, s p + j], the filter gradient of
#   the correlation, which JAX computes well (the CNN's own weight gradient).
def _filter_cotangent(filters, y, codes, g: Geom):
    return jax.vjp(lambda f: _strided_corr_batch(f, y, g), filters)[1](codes)[0]


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _synthesis_batch(filters, codes, g: Geom):
    return _transposed_conv_batch(filters, codes, g)


def _synthesis_batch_fwd(filters, codes, g):
    return _transposed_conv_batch(filters, codes, g), (filters, codes)


def _synthesis_batch_bwd(g, res, x_bar):
    filters, codes = res
    return _filter_cotangent(filters, x_bar, codes, g), _strided_corr_batch(filters, x_bar, g)


_synthesis_batch.defvjp(_synthesis_batch_fwd, _synthesis_batch_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _analysis_batch(filters, t, g: Geom):
    return _strided_corr_batch(filters, t, g)


def _analysis_batch_fwd(filters, t, g):
    return _strided_corr_batch(filters, t, g), (filters, t)


def _analysis_batch_bwd(g, res, z_bar):
    filters, t = res
    x = _transposed_conv_batch(filters, z_bar, g)                          # (B, C, *((P-1)s + k)), inside T
    x = _pad(x, [(0, n - f, 0) for n, f in zip(t.shape[2:], x.shape[2:])])
    return _filter_cotangent(filters, t, z_bar, g), x


_analysis_batch.defvjp(_analysis_batch_fwd, _analysis_batch_bwd)


def _wrap_pad(y, g: Geom):
    """Circular boundary: extend the trailing d axes periodically by k - 1 (the correlation's input)."""
    return jnp.pad(y, [(0, 0)] * (y.ndim - g.d) + [(0, kk - 1) for kk in g.k], mode="wrap")


def _synthesis_direct(filters, codes, g: Geom, transposed=_transposed_conv):
    full = transposed(filters, codes, g)
    if g.boundary == "circular":
        return _fold(full, g.N)
    return _place(full, g)


def _adjoint_direct(filters, y, g: Geom, corr=_strided_corr):
    return corr(filters, _wrap_pad(y, g) if g.boundary == "circular" else _unplace(y, g), g)


def _fft_sizes(g: Geom):
    return g.N if g.boundary == "circular" else tuple(fast_len(f) for f in g.F)


def _synthesis_fft(filters, codes, g: Geom):
    L = _fft_sizes(g)
    s = g.stride
    if g.boundary == "circular":  # zero insertion up to size P s = N
        up = _pad(codes, [(0, s - 1, s - 1)] * g.d)
    else:
        up = _pad(codes, [(0, 0, s - 1)] * g.d)
    Dh = rfft(filters, L)
    Gh = rfft(up, L)
    Xh = jnp.einsum("mc...,m...->c...", Dh, Gh, precision=_HI)
    x = irfft(Xh, L)
    if g.boundary == "circular":
        return x
    x = x[(slice(None),) + tuple(slice(0, f) for f in g.F)]
    return _place(x, g)


def _adjoint_fft(filters, y, g: Geom):
    L = _fft_sizes(g)
    t = y if g.boundary == "circular" else _unplace(y, g)
    Dh = rfft(filters, L)
    Th = rfft(t, L)
    Zh = jnp.einsum("mc...,c...->m...", jnp.conj(Dh), Th, precision=_HI)
    return _decimate(irfft(Zh, L), g)


def _synthesis(filters, codes, g, method):
    dtype = jnp.result_type(filters.dtype, codes.dtype)
    filters, codes = filters.astype(dtype), codes.astype(dtype)
    out = (_synthesis_fft if method == "fft" else _synthesis_direct)(filters, codes, g)
    return out.astype(dtype)


def _adjoint(filters, y, g, method):
    dtype = jnp.result_type(filters.dtype, y.dtype)
    filters, y = filters.astype(dtype), y.astype(dtype)
    out = (_adjoint_fft if method == "fft" else _adjoint_direct)(filters, y, g)
    return out.astype(dtype)


# ----------------------------------------------------------------------------------------------------
# public functions
# ----------------------------------------------------------------------------------------------------
def conv_synthesis(filters, codes, *, stride: int = 1, boundary: str = "circular", method: str = "auto",
                   signal_size=None) -> jax.Array:
    """Convolutional synthesis X_c = sum_m d_{m,c} * G_m (transposed convolution for stride s > 1).

    X_c[n] = sum_m sum_p G_m[p] d_{m,c}[n + lo - s p]; boundary modes, sizes and the method choice are
    defined in the module docstring.

    Args:
      filters: (M, C, h) or (M, C, h, w) float array.
      codes: (M, *P) float array, P the code size (1 or 2 spatial dimensions, as the filters).
      stride: positive int s (the same on every spatial axis).
      boundary: "circular" | "full" | "valid" | "same".
      method: "auto" | "fft" | "direct".
      signal_size: the signal's spatial size N (int or tuple); default from the code size as in the module
        docstring. It must map back to the code size P.

    Returns:
      The signal, shape (C, *N), dtype ``result_type(filters, codes)``.

    Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 2016 (the model, sec. I).

    Example: one spike places the filter; "full" is ``numpy.convolve``.
      >>> import jax.numpy as jnp
      >>> import numpy as np
      >>> import sparsejax as sj
      >>> d = jnp.array([[[1.0, 2.0, 3.0]]])                          # M = 1 filter, C = 1 channel, k = 3
      >>> g = jnp.array([[0.0, 1.0, 0.0, -1.0]])                      # codes (M, P)
      >>> sj.conv_synthesis(d, g, boundary="full").round(4).tolist()
      [[0.0, 1.0, 2.0, 2.0, -2.0, -3.0]]
      >>> np.convolve([0.0, 1.0, 0.0, -1.0], [1.0, 2.0, 3.0]).tolist()
      [0.0, 1.0, 2.0, 2.0, -2.0, -3.0]
      >>> sj.conv_synthesis(d, g, stride=2, boundary="full").shape    # atoms every 2 samples: N = (P - 1) 2 + k
      (1, 9)
    """
    filters = check_filters(filters)
    codes = V.as_float_array("codes", codes)
    d = filters.ndim - 2
    M = filters.shape[0]
    if codes.ndim != d + 1 or codes.shape[0] != M:
        raise ValueError(f"codes must have shape (M={M}, *spatial) with {d} spatial dimension(s) to match "
                         f"filters of shape {tuple(filters.shape)}, got {tuple(codes.shape)}")
    V.check_choice("boundary", boundary, BOUNDARIES)
    s = check_stride(stride)
    P = tuple(codes.shape[1:])
    if signal_size is None:
        N = tuple(default_signal_size(p, kk, s, boundary) for p, kk in zip(P, filters.shape[2:]))
    else:
        N = (signal_size,) * d if isinstance(signal_size, (int, np.integer)) else tuple(signal_size)
        if len(N) != d:
            raise ValueError(f"signal_size must have {d} entries, got {signal_size!r}")
    if any(n < 1 for n in N):
        raise ValueError(f"codes of spatial size {P} are too small for filters of size "
                         f"{tuple(filters.shape[2:])} with boundary={boundary!r}, stride={s} "
                         f"(signal size {N})")
    g = geometry(filters.shape, N, s, boundary)
    if g.P != P:
        raise ValueError(f"codes of spatial size {P} do not match signal_size {N} (expected code size "
                         f"{g.P} for boundary={boundary!r}, stride={s})")
    return _synthesis(filters, codes, g, resolve_method(g, method))


def conv_adjoint(filters, signal, *, stride: int = 1, boundary: str = "circular",
                 method: str = "auto") -> jax.Array:
    """Adjoint of ``conv_synthesis``: the (strided) correlation G_m = sum_c d_{m,c} (star) X_c.

    (A^T Y)_m[p] = sum_c sum_j d_{m,c}[j] Y_c[s p - lo + j]   (periodic or zero outside the signal).
    With boundary "full" this is the CNN layer: a VALID-padded strided convolution (cross-correlation).

    Args:
      filters: (M, C, h) or (M, C, h, w) float array.
      signal: (C, *N) float array.
      stride, boundary, method: as in ``conv_synthesis``.

    Returns:
      Codes of shape (M, *P) (P from the module docstring), dtype ``result_type(filters, signal)``.

    Example: <D g, y> = <g, D^T y>.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
      >>> d = jax.random.normal(k1, (3, 2, 4, 4))
      >>> y = jax.random.normal(k2, (2, 12, 12))
      >>> z = sj.conv_adjoint(d, y, stride=2, boundary="full")
      >>> g = jax.random.normal(k3, z.shape)
      >>> lhs = jnp.sum(sj.conv_synthesis(d, g, stride=2, boundary="full", signal_size=12) * y)
      >>> z.shape, bool(jnp.allclose(lhs, jnp.sum(g * z), rtol=1e-4))
      ((3, 5, 5), True)
    """
    filters = check_filters(filters)
    signal = V.as_float_array("signal", signal)
    d = filters.ndim - 2
    C = filters.shape[1]
    if signal.ndim != d + 1 or signal.shape[0] != C:
        raise ValueError(f"signal must have shape (C={C}, *spatial) with {d} spatial dimension(s) to match "
                         f"filters of shape {tuple(filters.shape)}, got {tuple(signal.shape)}")
    g = geometry(filters.shape, signal.shape[1:], stride, boundary)
    return _adjoint(filters, signal, g, resolve_method(g, method))


def _circular_lipschitz(filters, N):
    """max_f ||D(f)||_2^2 over the DFT grid, D(f) the M x C matrix of filter transforms."""
    M, C = filters.shape[:2]
    Dh = rfft(filters, N)                                  # (M, C, *freq)
    Dh = jnp.moveaxis(Dh.reshape(M, C, -1), -1, 0)          # (F, M, C)
    if min(M, C) == 1:
        return jnp.max(jnp.sum(jnp.abs(Dh) ** 2, axis=(1, 2)))
    if C <= M:
        G = jnp.einsum("fmc,fmd->fcd", jnp.conj(Dh), Dh, precision=_HI)
    else:
        G = jnp.einsum("fmc,fnc->fmn", Dh, jnp.conj(Dh), precision=_HI)
    return jnp.max(jnp.linalg.eigvalsh(G)[:, -1])


# ----------------------------------------------------------------------------------------------------
# the operator
# ----------------------------------------------------------------------------------------------------
@jax.tree_util.register_pytree_node_class
class Conv(LinearOperator):
    """Convolutional dictionary D: codes (M, *P) -> signal (C, *N), X_c = sum_m d_{m,c} * G_m.

    A ``LinearOperator`` and an immutable pytree (``filters`` is the leaf; ``signal_shape``, ``stride``,
    ``boundary``, ``method`` are static), so every pursuit accepts it and ``jit``/``vmap``/``grad`` see
    through it. Maths, sizes and methods: module docstring.

    Args:
      filters: (M, C, h) or (M, C, h, w) float array (not normalised here: see ``normalize_filters``).
      signal_shape: (C, N) or (C, H, W); C must equal ``filters.shape[1]``.
      stride: positive int.
      boundary: "circular" | "full" | "valid" | "same".
      method: "auto" | "fft" | "direct".

    Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 2016; Papyan, Sulam &
    Elad, "Working locally thinking globally: theoretical guarantees for convolutional sparse coding", IEEE TSP 2017.

    Example:
      >>> import jax
      >>> import sparsejax as sj
      >>> f = sj.normalize_filters(jax.random.normal(jax.random.PRNGKey(0), (8, 1, 5, 5)))
      >>> D = sj.Conv(f, (1, 32, 32))
      >>> image = jax.random.normal(jax.random.PRNGKey(1), (1, 32, 32))
      >>> sol = sj.fista(D, image, 0.5, max_iter=50)
      >>> D.code_shape, sol.codes.shape
      ((8, 32, 32), (8, 32, 32))
    """

    def __init__(self, filters, signal_shape, *, stride: int = 1, boundary: str = "circular",
                 method: str = "auto"):
        filters = check_filters(filters)
        try:
            signal_shape = tuple(int(v) for v in signal_shape)
        except TypeError:
            raise TypeError(f"signal_shape must be a tuple of ints (C, *spatial), got {signal_shape!r}") from None
        d = filters.ndim - 2
        if len(signal_shape) != d + 1:
            raise ValueError(f"signal_shape must be (C, *spatial) with {d} spatial dimension(s) to match "
                             f"filters of shape {tuple(filters.shape)}, got {signal_shape}")
        if signal_shape[0] != filters.shape[1]:
            raise ValueError(f"signal_shape has {signal_shape[0]} channel(s) but the filters have "
                             f"{filters.shape[1]} (filters shape (M, C, ...) = {tuple(filters.shape)}, "
                             f"signal_shape {signal_shape})")
        V.check_choice("method", method, METHODS)
        g = geometry(filters.shape, signal_shape[1:], stride, boundary)
        self.filters = filters
        self._signal_shape = signal_shape
        self.stride = g.stride
        self.boundary = boundary
        self.method = method

    # -- geometry ---------------------------------------------------------
    def _geom(self) -> Geom:
        return geometry(self.filters.shape, self._signal_shape[1:], self.stride, self.boundary)

    @property
    def signal_shape(self):
        """(C, *N), the shape of a signal.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Conv(jnp.ones((4, 3, 5, 5)), (3, 16, 16)).signal_shape
          (3, 16, 16)
        """
        return self._signal_shape

    @property
    def code_shape(self):
        """(M, *P), the shape of the codes (P from the boundary and stride, module docstring).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Conv(jnp.ones((4, 1, 5)), (1, 16), boundary="valid").code_shape     # P = N + k - 1
          (4, 20)
          >>> sj.Conv(jnp.ones((4, 1, 5)), (1, 16), stride=2, boundary="full").code_shape
          (4, 6)
        """
        g = self._geom()
        return (g.M,) + g.P

    @property
    def dtype(self):
        """The dtype of the filters.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> str(sj.Conv(jnp.ones((4, 1, 5), jnp.float32), (1, 16)).dtype)
          'float32'
        """
        return self.filters.dtype

    @property
    def num_filters(self) -> int:
        """M, the number of filters (code maps).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Conv(jnp.ones((4, 3, 5, 5)), (3, 16, 16)).num_filters
          4
        """
        return self.filters.shape[0]

    @property
    def num_channels(self) -> int:
        """C, the number of signal channels.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Conv(jnp.ones((4, 3, 5, 5)), (3, 16, 16)).num_channels
          3
        """
        return self.filters.shape[1]

    @property
    def filter_shape(self):
        """k, the spatial size of a filter: (h,) or (h, w).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Conv(jnp.ones((4, 3, 5, 7)), (3, 16, 16)).filter_shape
          (5, 7)
        """
        return tuple(self.filters.shape[2:])

    @property
    def resolved_method(self) -> str:
        """The implementation "auto" picks for this geometry ("fft" or "direct"; cost model in the module docstring).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Conv(jnp.ones((4, 1, 3, 3)), (1, 64, 64), method="auto").resolved_method   # small filters
          'direct'
          >>> sj.Conv(jnp.ones((4, 1, 3, 3)), (1, 64, 64), method="fft").resolved_method
          'fft'
        """
        return resolve_method(self._geom(), self.method)

    # -- maps -------------------------------------------------------------
    def apply(self, codes):
        """Synthesis D G = (sum_m d_{m,c} * G_m)_c: codes (M, *P) -> signal (C, *N) (``conv_synthesis``).

        Example: a unit spike at the origin reproduces the filter (circular boundary).
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> D = sj.Conv(jnp.array([[[1.0, 2.0, 3.0]]]), (1, 6))
          >>> D.apply(jnp.zeros((1, 6)).at[0, 0].set(1.0)).round(4).tolist()
          [[1.0, 2.0, 3.0, 0.0, 0.0, 0.0]]
        """
        g = self._geom()
        return _synthesis(self.filters, codes, g, resolve_method(g, self.method))

    def adjoint(self, signal):
        """Analysis D^T Y = (sum_c d_{m,c} (star) Y_c)_m: signal (C, *N) -> codes (M, *P) (``conv_adjoint``).

        Example: the correlation of a signal with the filter.
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> D = sj.Conv(jnp.array([[[1.0, 2.0, 3.0]]]), (1, 6))
          >>> D.adjoint(jnp.array([[1.0, 2.0, 3.0, 0.0, 0.0, 0.0]])).round(4).tolist()   # peak ||d||^2 = 14
          [[14.0, 8.0, 3.0, 0.0, 3.0, 8.0]]
        """
        g = self._geom()
        return _adjoint(self.filters, signal, g, resolve_method(g, self.method))

    def lipschitz(self, num_iter: int = 100, key=None) -> jax.Array:
        """||D||_2^2. Exact for circular stride 1: max_f lambda_max(D(f) D(f)^H) (per-frequency M x C
        matrix of filter DFTs); otherwise ``num_iter`` steps of ``sparsejax.power_iteration`` on D^T D (converges
        from below) from its fixed generic start vector, or from a random one drawn from ``key``.

        Args:
          num_iter: power steps (static).
          key: PRNG key of a random start vector; None: the fixed start (jitted once per geometry).

        Returns:
          A scalar of ``dtype``.

        Example: equal to the largest singular value of the dense matrix, squared.
          >>> import jax
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> f = jax.random.normal(jax.random.PRNGKey(0), (3, 2, 3))
          >>> for D in (sj.Conv(f, (2, 8)), sj.Conv(f, (2, 8), boundary="valid")):
          ...     exact = jnp.linalg.norm(D.to_dense(), 2) ** 2
          ...     print(bool(jnp.allclose(D.lipschitz(num_iter=500), exact, rtol=1e-3)))
          True
          True
        """
        if self.boundary == "circular" and self.stride == 1:
            return _circular_lipschitz(self.filters, self._signal_shape[1:]).astype(self.dtype)
        if key is not None:
            return power_iteration(self.normal, self.code_shape, self.dtype, num_iter, key)
        return _conv_power_iteration(self, num_iter)

    def normalize_filters(self, eps: float = 0.0) -> "Conv":
        """The same operator with unit-norm filters (``sparsejax.normalize_filters``: filters with norm <= ``eps``
        become zero).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> D = sj.Conv(jnp.full((2, 1, 4), 3.0), (1, 8)).normalize_filters()
          >>> jnp.linalg.norm(D.filters.reshape(2, -1), axis=1).round(4).tolist()
          [1.0, 1.0]
        """
        return Conv(normalize_filters(self.filters, eps), self._signal_shape, stride=self.stride,
                    boundary=self.boundary, method=self.method)

    def coherence(self) -> jax.Array:
        """Convolutional mutual coherence of the normalised filters (shifts that are multiples of the
        stride); see ``sparsejax.conv.norms.conv_coherence``.

        Example: a filter and its shift by one sample.
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> f = jnp.array([[[1.0, 1.0, 0.0]], [[0.0, 1.0, 1.0]]])
          >>> round(float(sj.Conv(f, (1, 8)).coherence()), 4)
          1.0
          >>> round(float(sj.Conv(f, (1, 8), stride=2, boundary="full").coherence()), 4)
          0.5
        """
        return conv_coherence(self.filters, stride=self.stride)

    def to_dense(self) -> jax.Array:
        """The explicit (prod signal_shape) x (prod code_shape) matrix; columns = atoms (row-major order).

        Example: a circulant matrix for one filter.
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Conv(jnp.array([[[1.0, 2.0]]]), (1, 3)).to_dense().round(4).tolist()
          [[1.0, 0.0, 2.0], [2.0, 1.0, 0.0], [0.0, 2.0, 1.0]]
        """
        return _to_dense(self)

    # -- pytree -----------------------------------------------------------
    def tree_flatten(self):
        """The pytree protocol: the filters are the one leaf; the geometry (signal shape, stride, boundary, method)
        is static data, so a jitted function compiles once per geometry.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> leaves, aux = sj.Conv(jnp.ones((2, 1, 3)), (1, 8), boundary="full").tree_flatten()
          >>> [x.shape for x in leaves], aux
          ([(2, 1, 3)], ((1, 8), 1, 'full', 'auto'))
        """
        return (self.filters,), (self._signal_shape, self.stride, self.boundary, self.method)

    @classmethod
    def tree_unflatten(cls, aux, children):
        """The pytree protocol: rebuild from ``tree_flatten``'s output without the constructor's checks.

        Example: the gradient with respect to the operator is a ``Conv`` holding d/d filters.
          >>> import jax
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> g = jax.grad(lambda D: jnp.sum(D.apply(jnp.ones((2, 6)))))(sj.Conv(jnp.ones((2, 1, 3)), (1, 6)))
          >>> type(g).__name__, g.filters.tolist()
          ('Conv', [[[6.0, 6.0, 6.0]], [[6.0, 6.0, 6.0]]])
        """
        obj = object.__new__(cls)
        obj.filters = children[0]
        obj._signal_shape, obj.stride, obj.boundary, obj.method = aux
        return obj

    def __repr__(self):
        return (f"Conv(filters={tuple(self.filters.shape)}, signal_shape={self._signal_shape}, "
                f"stride={self.stride}, boundary={self.boundary!r}, method={self.method!r}, "
                f"dtype={self.filters.dtype})")


@partial(jax.jit, static_argnums=1)
def _conv_power_iteration(op: Conv, num_iter: int):
    return power_iteration(op.normal, op.code_shape, op.dtype, num_iter, start="fixed")


@jax.jit
def _to_dense(op: Conv):
    n = math.prod(op.code_shape)
    eye = jnp.eye(n, dtype=op.dtype).reshape((n,) + op.code_shape)
    return jax.vmap(op.apply)(eye).reshape(n, -1).T


@jax.tree_util.register_pytree_node_class
class BatchConv(LinearOperator):
    """A batch of B independent images through one ``Conv``: the block-diagonal operator

        codes (B, M, *P)  ->  signals (B, C, *N),   (D G)[b] = D_conv G[b],   (D^T Y)[b] = D_conv^T Y[b].

    Always the direct method, with the batch as the batch axis of one convolution per map (no ``vmap``), and
    hand-written VJPs for both maps (the adjoint identities, see ``_synthesis_batch``): on XLA:CPU JAX's own
    derivatives of a strided correlation (with respect to its input) and of the polyphase synthesis (with
    respect to its filters) are 10-20x slower. This is the operator of the unfolded networks
    (``sparsejax.nn.unfolded``), where every layer is a batched D_i and D_i^T inside a training step.
    Reverse mode only (``jax.jvp`` through it is not supported; use ``Conv`` under ``vmap`` for that).

    Args:
      conv: the per-image ``Conv`` (any boundary and stride; its ``method`` is ignored).
      batch: B, the number of images.

    Example: the same maps as ``Conv`` image by image, and the same gradients.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> f = jax.random.normal(jax.random.PRNGKey(0), (4, 1, 3, 3))
      >>> D = sj.Conv(f, (1, 12, 12), stride=2, boundary="full")
      >>> Db = sj.BatchConv(D, 3)
      >>> Y = jax.random.normal(jax.random.PRNGKey(1), (3, 1, 12, 12))
      >>> Db.code_shape, bool(jnp.allclose(Db.adjoint(Y), jax.vmap(D.adjoint)(Y), atol=1e-4))
      ((3, 4, 5, 5), True)
      >>> g = jax.grad(lambda f: jnp.sum(sj.BatchConv(sj.Conv(f, (1, 12, 12), stride=2, boundary="full"), 3)
      ...                                .adjoint(Y) ** 2))(f)
      >>> g.shape
      (4, 1, 3, 3)
    """

    def __init__(self, conv: Conv, batch: int):
        if not isinstance(conv, Conv):
            raise TypeError(f"conv must be a sparsejax.conv.operator.Conv, got {type(conv).__name__}")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or int(batch) < 1:
            raise ValueError(f"batch must be a positive int (the number of images), got {batch!r}")
        self.conv, self.batch = conv, int(batch)

    filters = property(lambda self: self.conv.filters, doc="The filters (M, C, *k) of the per-image ``Conv``.")
    stride = property(lambda self: self.conv.stride, doc="The stride of the per-image ``Conv``.")
    signal_shape = property(lambda self: (self.batch,) + tuple(self.conv.signal_shape),
                            doc="(B, C, *N): B signals of the per-image ``Conv``.")
    code_shape = property(lambda self: (self.batch,) + tuple(self.conv.code_shape),
                          doc="(B, M, *P): B code maps of the per-image ``Conv``.")
    dtype = property(lambda self: self.conv.dtype, doc="The dtype of the filters.")

    def apply(self, codes):
        """Synthesis image by image: codes (B, M, *P) -> signals (B, C, *N), (D G)[b] = D_conv G[b].

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> Db = sj.BatchConv(sj.Conv(jnp.array([[[1.0, 2.0]]]), (1, 4)), 2)
          >>> G = jnp.zeros((2, 1, 4)).at[1, 0, 2].set(1.0)
          >>> Db.apply(G).round(4).tolist()
          [[[0.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, 1.0, 2.0]]]
        """
        g = self.conv._geom()
        dtype = jnp.result_type(self.filters.dtype, codes.dtype)
        return _synthesis_direct(self.filters.astype(dtype), codes.astype(dtype), g, _synthesis_batch)

    def adjoint(self, signal):
        """Analysis image by image: signals (B, C, *N) -> codes (B, M, *P), (D^T Y)[b] = D_conv^T Y[b].

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> Db = sj.BatchConv(sj.Conv(jnp.array([[[1.0, 2.0]]]), (1, 4)), 2)
          >>> Db.adjoint(jnp.ones((2, 1, 4))).round(4).tolist()
          [[[3.0, 3.0, 3.0, 3.0]], [[3.0, 3.0, 3.0, 3.0]]]
        """
        g = self.conv._geom()
        dtype = jnp.result_type(self.filters.dtype, signal.dtype)
        return _adjoint_direct(self.filters.astype(dtype), signal.astype(dtype), g, _analysis_batch)

    def lipschitz(self, num_iter: int = 100, key=None) -> jax.Array:
        """||D||_2^2 of the block-diagonal operator = that of one image's ``Conv`` (``Conv.lipschitz``).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> D = sj.Conv(jnp.array([[[1.0, 2.0]]]), (1, 4))
          >>> float(sj.BatchConv(D, 5).lipschitz()) == float(D.lipschitz())      # (1 + 2)^2 at frequency 0
          True
        """
        return self.conv.lipschitz(num_iter, key)

    def tree_flatten(self):
        """The pytree protocol: the per-image ``Conv`` is the one child, the batch size B static data.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> children, aux = sj.BatchConv(sj.Conv(jnp.ones((2, 1, 3)), (1, 8)), 4).tree_flatten()
          >>> type(children[0]).__name__, aux
          ('Conv', 4)
        """
        return (self.conv,), self.batch

    @classmethod
    def tree_unflatten(cls, aux, children):
        """The pytree protocol: rebuild from ``tree_flatten``'s output without the constructor's checks.

        Example:
          >>> import jax
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> Db = jax.tree_util.tree_map(lambda f: 2 * f, sj.BatchConv(sj.Conv(jnp.ones((2, 1, 3)), (1, 8)), 4))
          >>> Db.batch, float(Db.filters.max())
          (4, 2.0)
        """
        obj = object.__new__(cls)
        obj.conv, obj.batch = children[0], aux
        return obj

    def __repr__(self):
        return f"BatchConv(batch={self.batch}, {self.conv!r})"
