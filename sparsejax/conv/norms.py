"""Convolutional coherence and the local (stripe / patch) norms of the convolutional sparse coding model.

Filters d_m (m = 1..M) of size n (1-D) or h x w (2-D), with C channels, shape (M, C, *k):

    mu(D)            = max_{(m, m', t) != (m, m, 0), |t_a| < k_a} |sum_c (d_{m,c} star d_{m',c})[t]|
                       / (||d_m|| ||d_m'||)
    ||G||^s_{0,inf}  = max_i ||gamma_i||_0,   gamma_i = G restricted to positions i - n + 1 .. i + n - 1 (all M maps)
    ||G||^s_{2,inf}  = max_i ||gamma_i||_2
    ||V||^p_{2,inf}  = max_i ||R_i V||_2,     R_i V = the n-sample patch starting at i (all channels)

In 2-D the stripe window is (2h - 1) x (2w - 1) and the patch h x w. ``periodic=True`` (the circular CSC
model) wraps windows around the edges; ``periodic=False`` zero-pads the stripe windows and uses only the
patches that lie wholly inside the signal.

References: V. Papyan, J. Sulam, M. Elad, "Working locally thinking globally: theoretical guarantees for
convolutional sparse coding", IEEE TSP 2017 (stripe and patch norms, convolutional coherence);
B. Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 2016.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sparsejax import _validate as V
from sparsejax.conv._geometry import check_stride, normalize_filters

__all__ = ["conv_coherence", "conv_cross_correlation", "stripe_l0_inf", "stripe_l2_inf", "patch_l2_inf",
           "stripe_counts"]


def _filters(filters):
    filters = V.as_float_array("filters", filters)
    V.check_ndim("filters", filters, (3, 4), "(M filters, C channels, h) or (M, C, h, w)")
    return filters


def conv_cross_correlation(filters, normalize: bool = True) -> jax.Array:
    """All full cross-correlations R[m, m', t] = sum_c sum_j d_{m,c}[j + t] d_{m',c}[j].

    = <atom m at shift t, atom m' at shift 0> for |t_a| < k_a (t_a = index - (k_a - 1)).

    Args:
      filters: (M, C, h) or (M, C, h, w).
      normalize: scale each filter to unit norm first.

    Returns:
      (M, M, 2h - 1) or (M, M, 2h - 1, 2w - 1).

    Example: the autocorrelation of one filter, peak 1 at shift 0 (the middle).
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.conv_cross_correlation(jnp.array([[[1.0, 1.0]]])).round(4).tolist()
      [[[0.5, 1.0, 0.5]]]
    """
    filters = _filters(filters)
    if normalize:
        filters = normalize_filters(filters)
    d = filters.ndim - 2
    k = filters.shape[2:]
    dn = ("NCH", "OIH", "NCH") if d == 1 else ("NCHW", "OIHW", "NCHW")
    return lax.conv_general_dilated(filters, filters, window_strides=(1,) * d,
                                    padding=[(kk - 1, kk - 1) for kk in k], dimension_numbers=dn,
                                    precision=lax.Precision.HIGHEST)


def conv_coherence(filters, *, stride: int = 1) -> jax.Array:
    """Convolutional mutual coherence: max over filter pairs and shifts |t| < k of the absolute
    (channel-summed) cross-correlation of the normalised filters, excluding a filter with itself at shift 0.

    Equals the mutual coherence of the circulant dictionary [C_1 ... C_M] when the signal is at least
    2k - 1 long on each axis (no wrap-around overlap). With ``stride`` s only shifts that are multiples of s
    count (the atoms of a strided dictionary).

    Args:
      filters: (M, C, h) or (M, C, h, w).
      stride: positive int.

    Returns:
      Scalar in [0, 1].

    Papyan, Sulam & Elad, "Working locally thinking globally: theoretical guarantees for convolutional sparse
    coding", IEEE TSP 2017 (sec. II).

    Example: a filter and its shift by one sample are the same atom.
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> f = jnp.array([[[1.0, 1.0, 0.0]], [[0.0, 1.0, 1.0]]])
      >>> round(float(sj.conv_coherence(f)), 4), round(float(sj.conv_coherence(f, stride=2)), 4)
      (1.0, 0.5)
    """
    return _coherence(_filters(filters), check_stride(stride))


@partial(jax.jit, static_argnums=1)
def _coherence(filters, s: int):
    R = jnp.abs(conv_cross_correlation(filters))
    M = R.shape[0]
    k = tuple((r + 1) // 2 for r in R.shape[2:])  # R has 2k - 1 shifts per axis
    shifts = [np.arange(2 * kk - 1) - (kk - 1) for kk in k]
    grids = np.meshgrid(*shifts, indexing="ij")
    zero = np.all(np.stack([g == 0 for g in grids]), axis=0)
    allowed = np.all(np.stack([g % s == 0 for g in grids]), axis=0)
    mask = np.broadcast_to(allowed, (M, M) + zero.shape).copy()
    mask[np.arange(M), np.arange(M)] &= ~zero
    return jnp.max(jnp.where(jnp.asarray(mask), R, jnp.zeros_like(R)))


# ----------------------------------------------------------------------------------------------------
# window sums
# ----------------------------------------------------------------------------------------------------
def _sizes(name, size, nd_max):
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size),)
    try:
        size = tuple(size)
    except TypeError:
        raise TypeError(f"{name} must be an int or a tuple of ints, got {size!r}") from None
    if len(size) not in (1, 2):
        raise ValueError(f"{name} must have 1 or 2 entries (1-D or 2-D), got {size!r}")
    for v in size:
        V.check_positive_int(name, v)
    if len(size) > nd_max:
        raise ValueError(f"{name} {size} has more spatial dimensions than the array ({nd_max})")
    return tuple(int(v) for v in size)


def _window_sum(x, before, after, periodic: bool):
    """out[i] = sum_{t = i - before .. i + after} x[t] over the trailing axes (wrapped or zero-padded)."""
    d = len(before)
    nlead = x.ndim - d
    window = []
    for a, (b, f) in enumerate(zip(before, after)):
        ax = nlead + a
        n = x.shape[ax]
        if periodic and b + f + 1 >= n:  # the window covers the whole (periodic) axis
            x = jnp.broadcast_to(jnp.sum(x, axis=ax, keepdims=True), x.shape)
            window.append(1)
            continue
        cfg = [(0, 0)] * x.ndim
        cfg[ax] = (b, f)
        x = jnp.pad(x, cfg, mode="wrap" if periodic else "constant")
        window.append(b + f + 1)
    dims = (1,) * nlead + tuple(window)
    return lax.reduce_window(x, jnp.zeros((), x.dtype), lax.add, dims, (1,) * x.ndim, "VALID")


def stripe_counts(codes, filter_shape, *, periodic: bool = True, power: int = 0) -> jax.Array:
    """Per-position stripe measure: ||gamma_i||_0 (power=0) or ||gamma_i||_2^2 (power=2).

    Args:
      codes: (..., *P): the trailing len(filter_shape) axes are spatial, leading axes (the M maps) are summed.
      filter_shape: n or (h, w).
      periodic: wrap the (2n - 1) windows around (circular CSC) or zero-pad them. A periodic window wider
        than the map covers the whole axis (each coefficient counted once).
      power: 0 or 2.

    Returns:
      Array of shape P.

    Example: one non-zero at position 4 of a 1-D map counts in the stripes at 2..6 (filter size 3).
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.stripe_counts(jnp.zeros((2, 10)).at[0, 4].set(1.0), 3).tolist()
      [0, 0, 1, 1, 1, 1, 1, 0, 0, 0]
    """
    codes = V.as_float_array("codes", codes)
    k = _sizes("filter_shape", filter_shape, codes.ndim)
    d = len(k)
    if power == 0:
        v = (codes != 0).astype(jnp.int32)
    elif power == 2:
        v = codes * codes
    else:
        raise ValueError(f"power must be 0 or 2, got {power!r}")
    v = jnp.sum(v, axis=tuple(range(codes.ndim - d)))
    return _window_sum(v, tuple(kk - 1 for kk in k), tuple(kk - 1 for kk in k), periodic)


def stripe_l0_inf(codes, filter_shape, *, periodic: bool = True) -> jax.Array:
    """Stripe l0,inf pseudo-norm ||G||^s_{0,inf} = max_i ||gamma_i||_0 (Papyan-Sulam-Elad 2017).

    gamma_i: all coefficients of all maps at positions i - n + 1 .. i + n - 1 (2-D: the (2h-1) x (2w-1)
    window), i.e. those whose atoms overlap the patch at i.

    Args:
      codes: (M, *P) (any leading axes are summed over); trailing axes spatial.
      filter_shape: n (1-D) or (h, w) (2-D).
      periodic: wrap windows around the edges (default) or zero-pad.

    Returns:
      int32 scalar.

    Example: two non-zeros 3 apart share a stripe of width 2 n - 1 = 7, none of width 3.
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> G = jnp.zeros((2, 16)).at[0, 4].set(1.0).at[1, 7].set(1.0)
      >>> int(sj.stripe_l0_inf(G, 4)), int(sj.stripe_l0_inf(G, 2))
      (2, 1)
    """
    return jnp.max(stripe_counts(codes, filter_shape, periodic=periodic, power=0))


def stripe_l2_inf(codes, filter_shape, *, periodic: bool = True) -> jax.Array:
    """Stripe l2,inf norm ||G||^s_{2,inf} = max_i ||gamma_i||_2 (same windows as ``stripe_l0_inf``; Papyan, Sulam &
    Elad, IEEE TSP 2017).

    Args:
      codes: (M, *P) (any leading axes are summed over); trailing axes spatial.
      filter_shape: n (1-D) or (h, w) (2-D).
      periodic: wrap windows around the edges (default) or zero-pad.

    Returns:
      Scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> G = jnp.zeros((2, 16)).at[0, 4].set(3.0).at[1, 7].set(4.0)
      >>> round(float(sj.stripe_l2_inf(G, 4)), 4), round(float(sj.stripe_l2_inf(G, 2)), 4)
      (5.0, 4.0)
    """
    return jnp.sqrt(jnp.max(stripe_counts(codes, filter_shape, periodic=periodic, power=2)))


def patch_l2_inf(signal, patch_shape, *, periodic: bool = True) -> jax.Array:
    """Patch l2,inf norm ||V||^p_{2,inf} = max_i ||R_i V||_2, R_i extracting the n-sample (h x w) patch
    starting at i (all channels).

    Args:
      signal: (..., *N): the trailing len(patch_shape) axes are spatial, leading axes (channels) summed.
      patch_shape: n or (h, w).
      periodic: patches wrap around (default); otherwise only patches wholly inside the signal.

    Returns:
      Scalar.

    Example: the energy of a 3-sample patch, at most 1 + 4 + 4 here.
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> round(float(sj.patch_l2_inf(jnp.array([[0.0, 1.0, 2.0, 2.0, 0.0, 0.0]]), 3)), 4)
      3.0
    """
    signal = V.as_float_array("signal", signal)
    k = _sizes("patch_shape", patch_shape, signal.ndim)
    d = len(k)
    if any(kk > n for kk, n in zip(k, signal.shape[-d:])):
        raise ValueError(f"patch_shape {k} is larger than the signal's spatial shape {signal.shape[-d:]}")
    v = jnp.sum(signal * signal, axis=tuple(range(signal.ndim - d)))
    if periodic:
        s = _window_sum(v, (0,) * d, tuple(kk - 1 for kk in k), True)
    else:
        s = lax.reduce_window(v, jnp.zeros((), v.dtype), lax.add, k, (1,) * d, "VALID")
    return jnp.sqrt(jnp.max(s))
