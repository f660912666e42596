"""Static geometry of a convolutional dictionary: boundary modes, strides, code and signal sizes, filter checks.

Pure Python on shapes (nothing here is traced), shared by the operator (``sparsejax.conv.operator``) and the
norms (``sparsejax.conv.norms``). The boundary modes and size formulas are those of ``sparsejax.conv.operator``.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax import _validate as V

__all__ = ["BOUNDARIES", "METHODS", "Geom", "geometry", "resolve_method", "check_stride", "check_filters",
           "conv_code_shape", "normalize_filters", "fast_len", "code_size", "default_signal_size"]

BOUNDARIES = ("circular", "full", "valid", "same")
METHODS = ("auto", "fft", "direct")
# an FFT "flop" of the cost model (complex arithmetic, transform memory traffic) weighs this many direct
# multiply-adds; on CPU the FFT path ran ~3x slower than direct at equal counts (benchmarks/conv.py)
FFT_WEIGHT = 2.0


class Geom(NamedTuple):
    """The static geometry of one convolutional dictionary (sizes per spatial axis; module docstring of
    ``sparsejax.conv.operator``).

    Example:
      >>> from sparsejax.conv._geometry import geometry
      >>> g = geometry((4, 1, 5), (16,), 1, "valid")
      >>> g.P, g.lo, g.F, g.d
      ((20,), (4,), (24,), 1)
    """

    boundary: str
    stride: int
    M: int
    C: int
    k: Tuple[int, ...]      # filter size per axis
    N: Tuple[int, ...]      # signal size per axis
    P: Tuple[int, ...]      # code size per axis
    lo: Tuple[int, ...]     # atom offset per axis
    F: Tuple[int, ...]      # un-cropped output size (zero boundary: (P-1)s+k; circular: N)

    @property
    def d(self) -> int:
        """The number of spatial dimensions (1 or 2).

        Example:
          >>> from sparsejax.conv._geometry import geometry
          >>> geometry((4, 1, 3, 3), (8, 8), 1, "circular").d
          2
        """
        return len(self.k)


def fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (an FFT-friendly size).

    Example:
      >>> from sparsejax.conv._geometry import fast_len
      >>> fast_len(7), fast_len(97), fast_len(128)
      (8, 100, 128)
    """
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def check_stride(stride) -> int:
    """The stride, a Python int >= 1 (static: it fixes the code size); returns it as an int.

    Example:
      >>> from sparsejax.conv._geometry import check_stride
      >>> check_stride(2)
      2
      >>> check_stride(0)
      Traceback (most recent call last):
      ...
      ValueError: stride must be a positive int (>= 1), got 0
    """
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)):
        raise TypeError(f"stride must be a positive Python int, got {stride!r}")
    if int(stride) < 1:
        raise ValueError(f"stride must be a positive int (>= 1), got {stride}")
    return int(stride)


def code_size(N: int, k: int, s: int, boundary: str, axis: int) -> Tuple[int, int]:
    """(P, lo) for one axis: the code size and the atom offset of a signal of size N, filter size k, stride s
    (``axis`` only names the axis in an error).

    Example:
      >>> from sparsejax.conv._geometry import code_size
      >>> code_size(16, 5, 1, "valid", 0), code_size(16, 5, 2, "full", 0), code_size(16, 5, 2, "same", 0)
      ((20, 4), (6, 0), (8, 2))
    """
    if boundary == "circular":
        if N % s:
            raise ValueError(f"circular boundary needs the stride ({s}) to divide the signal size, "
                             f"got size {N} on spatial axis {axis}")
        if k > N:
            raise ValueError(f"circular boundary needs the filter size ({k}) <= the signal size ({N}) "
                             f"on spatial axis {axis}")
        return N // s, 0
    if boundary == "full":
        if N < k:
            raise ValueError(f"'full' boundary needs the signal size ({N}) >= the filter size ({k}) "
                             f"on spatial axis {axis}")
        return (N - k) // s + 1, 0
    if boundary == "valid":
        return (N + k - 2) // s + 1, k - 1
    return (N - 1) // s + 1, (k - 1) // 2  # same


def default_signal_size(P: int, k: int, s: int, boundary: str) -> int:
    """The default signal size N for a code size P (module docstring of ``sparsejax.conv.operator``).

    Example:
      >>> from sparsejax.conv._geometry import default_signal_size
      >>> [default_signal_size(6, 5, 2, b) for b in ("circular", "full", "valid", "same")]
      [12, 15, 7, 12]
    """
    return {"circular": P * s, "full": (P - 1) * s + k, "valid": (P - 1) * s - k + 2,
            "same": P * s}[boundary]


def geometry(fshape, spatial_N, stride, boundary) -> Geom:
    """The ``Geom`` of filters of shape ``fshape`` (M, C, *k) on signals of spatial size ``spatial_N``; checks the
    boundary, the stride and the sizes (errors name the spatial axis).

    Example:
      >>> from sparsejax.conv._geometry import geometry
      >>> g = geometry((8, 3, 4, 4), (12, 12), 2, "full")
      >>> g.M, g.C, g.P, g.F
      (8, 3, (5, 5), (12, 12))
    """
    V.check_choice("boundary", boundary, BOUNDARIES)
    s = check_stride(stride)
    M, C = int(fshape[0]), int(fshape[1])
    k = tuple(int(v) for v in fshape[2:])
    N = tuple(int(v) for v in spatial_N)
    if len(N) != len(k):
        raise ValueError(f"the signal must have {len(k)} spatial dimension(s) to match filters of shape "
                         f"{tuple(fshape)}, got spatial shape {N}")
    if any(n < 1 for n in N):
        raise ValueError(f"signal spatial sizes must be >= 1, got {N}")
    Plo = [code_size(n, kk, s, boundary, a) for a, (n, kk) in enumerate(zip(N, k))]
    P = tuple(p for p, _ in Plo)
    lo = tuple(l for _, l in Plo)
    F = N if boundary == "circular" else tuple((p - 1) * s + kk for p, kk in zip(P, k))
    return Geom(boundary, s, M, C, k, N, P, lo, F)


def resolve_method(g: Geom, method: str) -> str:
    """``method`` itself, or for "auto" the cheaper of "fft" and "direct" by the cost model of
    ``sparsejax.conv.operator``'s module docstring.

    Example:
      >>> from sparsejax.conv._geometry import geometry, resolve_method
      >>> resolve_method(geometry((4, 1, 3, 3), (64, 64), 1, "circular"), "auto")
      'direct'
      >>> resolve_method(geometry((32, 1, 16, 16), (64, 64), 1, "circular"), "auto")
      'fft'
    """
    V.check_choice("method", method, METHODS)
    if method != "auto":
        return method
    s, d = g.stride, g.d
    L = math.prod(g.N) if g.boundary == "circular" else math.prod(fast_len(f) for f in g.F)
    K = tuple(-(-kk // s) for kk in g.k)
    Psz, Ksz = math.prod(g.P), math.prod(K)
    Qsz = math.prod(p + KK - 1 for p, KK in zip(g.P, K))
    analysis = g.M * g.C * math.prod(g.k) * Psz              # strided correlation
    synthesis = g.M * g.C * s ** d * Qsz * min(Psz, Ksz)      # polyphase transposed convolution
    direct = max(analysis, synthesis)
    fft = FFT_WEIGHT * ((g.M + g.C + g.M * g.C) * L * max(math.log2(L), 1.0) + g.M * g.C * L)
    return "fft" if fft < direct else "direct"


def check_filters(filters, name="filters"):
    """A floating (M, C, h) or (M, C, h, w) filter array without an empty dimension, as a JAX array.

    Example:
      >>> import numpy as np
      >>> from sparsejax.conv._geometry import check_filters
      >>> check_filters(np.ones((2, 1, 3))).shape
      (2, 1, 3)
      >>> check_filters(np.ones((2, 3)))
      Traceback (most recent call last):
      ...
      ValueError: filters must have 3 or 4 dimension(s) ((M filters, C channels, h) or (M, C, h, w)), got shape (2, 3)
    """
    filters = V.as_float_array(name, filters)
    V.check_ndim(name, filters, (3, 4), "(M filters, C channels, h) or (M, C, h, w)")
    if any(v < 1 for v in filters.shape):
        raise ValueError(f"{name} must have no empty dimension, got shape {tuple(filters.shape)}")
    return filters


def conv_code_shape(filter_shape, signal_shape, *, stride: int = 1, boundary: str = "circular"):
    """Code shape (M, *P) for filters of shape (M, C, *k) and a signal of shape (C, *N).

    Example:
      >>> import sparsejax as sj
      >>> sj.conv_code_shape((32, 1, 6, 6), (1, 28, 28), stride=2, boundary="full")
      (32, 12, 12)
      >>> sj.conv_code_shape((8, 3, 5), (3, 40))
      (8, 40)
    """
    filter_shape = tuple(filter_shape)
    signal_shape = tuple(signal_shape)
    if len(filter_shape) not in (3, 4):
        raise ValueError(f"filter_shape must be (M, C, h) or (M, C, h, w), got {filter_shape}")
    if len(signal_shape) != len(filter_shape) - 1:
        raise ValueError(f"signal_shape must be (C, *spatial) with {len(filter_shape) - 2} spatial "
                         f"dimension(s), got {signal_shape}")
    if signal_shape[0] != filter_shape[1]:
        raise ValueError(f"signal_shape has {signal_shape[0]} channel(s) but the filters have "
                         f"{filter_shape[1]} (filters shape {filter_shape}, signal_shape {signal_shape})")
    g = geometry(filter_shape, signal_shape[1:], stride, boundary)
    return (g.M,) + g.P


def normalize_filters(filters, eps: float = 0.0) -> jax.Array:
    """Scale each filter d_m (all channels and taps together) to unit l2 norm; a zero filter stays zero.

    For boundary "circular" and "full" every atom of the dictionary then has unit norm.

    Args:
      filters: (M, C, h) or (M, C, h, w).
      eps: filters with norm <= ``eps`` become zero.

    Returns:
      The normalised filters, same shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> f = sj.normalize_filters(jnp.stack([jnp.full((1, 2, 2), 2.0), jnp.zeros((1, 2, 2))]))
      >>> jnp.linalg.norm(f.reshape(2, -1), axis=1).tolist()
      [1.0, 0.0]
    """
    filters = check_filters(filters)
    axes = tuple(range(1, filters.ndim))
    norms = jnp.sqrt(jnp.sum(filters * filters, axis=axes, keepdims=True))
    ok = norms > eps
    return jnp.where(ok, filters / jnp.where(ok, norms, jnp.ones_like(norms)), jnp.zeros_like(filters))
