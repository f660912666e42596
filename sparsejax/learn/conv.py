"""Convolutional dictionary learning, 1-D and 2-D, on a batch of K signals / images.

Problem (circular boundary, single-channel signals s_k of size N, filters d_m with support in a window of size k):

    min_{d, x}  1/2 sum_k || sum_m d_m * x_{k,m} - s_k ||_2^2 + lam sum_{k,m} ||x_{k,m}||_1
    s.t.        d_m in C = {d : supp(d) in the k-window, ||d||_2 = 1}     (optionally also sum(d) = 0)

Two learners, both pure jitted steps on a NamedTuple state driven by ``sparsejax.learn.loop.run_loop``
(progress, atomic checkpoints of the full state, exact resume, divergence stop):

* ``method="admm"`` -- interleaved ADMM as SPORCO's ``ConvBPDNDictLearn`` (Wohlberg, "Efficient algorithms for
  convolutional sparse representations", IEEE TIP 2016; Garcia-Cardona & Wohlberg, "Convolutional dictionary
  learning: a comparative review and new algorithms", IEEE TCI 2018): each outer step runs ``x_iter`` iterations
  of the CBPDN ADMM (``sparsejax.pursuit.csc.cbpdn_admm_solver`` driven by ``sparsejax.solve.iterate``, with the
  dictionary-learning balancing of rho as its ``rho_balancing`` option; its state -- codes z, scaled dual u, rho --
  persists from step to step, so the coefficient update is warm-started) with the current filters, then
  ``d_iter`` iterations of the
  ConvCnstrMOD ADMM (``dict_update_step``) with the new sparse codes z, whose state (projected filters g, dual
  u, rho) also persists. The dictionary update, with Z the K x M matrix of code DFTs at frequency f:

      min_d 1/2 sum_k || sum_m z_{k,m} * d_m - s_k ||^2 + iota_C(g)   s.t. d = g      (d full size N)
      d <- (Z_f^H Z_f + rho I)^{-1} (Z_f^H S_f + rho F(g - u))         per frequency
      v <- alpha d + (1 - alpha) g;   g <- P_C(v + u);   u <- u + v - g

  P_C crops to the window (zero outside), removes the mean (``zero_mean``) and scales to unit norm
  (``sparsejax.conv.operator.normalize_filters``). The per-frequency solve is the Woodbury identity
  (Z^H Z + rho I)^{-1} b = (b - Z^H (rho I + Z Z^H)^{-1} Z b) / rho (K = 1: Sherman-Morrison): the Gram matrices
  Z_f Z_f^H are formed once per dictionary update and rho I + Z_f Z_f^H is factored L D L^H by unrolled
  elementwise recurrences over the frequency arrays in every iteration (exact for every rho, as SPORCO's
  iterated Sherman-Morrison; cheap, where a batched K x K ``eigh`` per frequency cost about half the
  dictionary step). With ``mesh`` the filters and their maps are split over devices (``admm_step``). Penalties of
  both ADMMs are balanced as in SPORCO's dictionary-learning defaults (one ``sparsejax.pursuit.csc.RhoBalancing``
  rule): every ``rho_period`` (10) iterations rho is multiplied by 2 when r > ``rho_ratio`` (10) s and divided by 2
  when s > ``rho_ratio`` r (r, s the relative primal / dual residuals). ``dict_update`` (the dictionary problem
  solved on its own) balances every iteration with ratio 2 during its first 100 iterations, then keeps rho fixed
  (so that ADMM settles): the unit-norm constraint is non-convex and with the loose rule and a small rho the ADMM
  can stall far from feasibility.
* ``method="optax"`` -- gradient-based: codes z from ``x_iter`` warm-started CBPDN ADMM iterations, then one
  step of any Optax optimiser on grad_d [1/2 ||sum_m d_m * z_m - s||^2 + lam ||z||_1] / K at fixed z, then the
  filters are projected onto C.

The objective after each step is F(g, z) (new filters, sparse codes), computed in the DFT domain (Parseval).

References:
  B. Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 25(1), 2016.
  C. Garcia-Cardona, B. Wohlberg, "Convolutional dictionary learning: a comparative review and new
  algorithms", IEEE TCI 4(3), 2018.
"""
from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P
from PIL import Image

from sparsejax import _validate as V
from sparsejax.conv.fourier import fsq, irfft, psum, rfft, sq
from sparsejax.conv.operator import normalize_filters
from sparsejax.datasets.images import save_image
from sparsejax.learn.loop import run_loop
from sparsejax.pursuit.csc import CBPDNState, RhoBalancing, cbpdn_admm_solver, cbpdn_objective
from sparsejax.solve import iterate

__all__ = [
    "DictUpdateState",
    "ConvDLState",
    "ConvOptaxState",
    "ConvDictLearnResult",
    "METHODS",
    "project_filters",
    "support_mask",
    "dict_update_init",
    "dict_update_step",
    "dict_update",
    "admm_init",
    "admm_step",
    "optax_init",
    "optax_step",
    "cdl_objective",
    "learn_conv_dictionary",
    "filters_to_image",
    "save_filters_png",
]

METHODS = ("admm", "optax")


# ----------------------------------------------------------------------------------------------------
# states
# ----------------------------------------------------------------------------------------------------
class DictUpdateState(NamedTuple):
    """ConvCnstrMOD ADMM state. g: projected filters (M, 1, *k) (the dictionary); u: scaled dual (M, *N);
    rho: penalty; k: iterations done; primal_res, dual_res: relative residuals ||d - g|| / max(||d||, ||g||)
    and ||g - g_prev|| / ||u||.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.conv import dict_update_init
      >>> st = dict_update_init(jnp.ones((3, 1, 4)), (16,), 10.0)
      >>> st.g.shape, st.u.shape, float(st.rho), int(st.k)
      ((3, 1, 4), (3, 16), 10.0, 0)
    """

    g: jax.Array
    u: jax.Array
    rho: jax.Array
    k: jax.Array
    primal_res: jax.Array
    dual_res: jax.Array


class ConvDLState(NamedTuple):
    """State of the interleaved ADMM learner: ``x`` the CBPDN ADMM state (codes ``x.z`` (K, M, *N)), ``d`` the
    dictionary-update state (filters ``d.g``).

    Example:
      >>> import jax
      >>> from sparsejax.learn.conv import admm_init
      >>> s = jax.random.normal(jax.random.PRNGKey(0), (2, 16))
      >>> st = admm_init(jax.random.normal(jax.random.PRNGKey(1), (3, 1, 4)), s, 0.1)
      >>> st.x.z.shape, st.d.g.shape
      ((2, 3, 16), (3, 1, 4))
    """

    x: CBPDNState
    d: DictUpdateState


class ConvOptaxState(NamedTuple):
    """State of the Optax learner: filters (M, 1, *k), the CBPDN ADMM state ``x`` and the optimiser state.

    Example:
      >>> import jax
      >>> import optax
      >>> from sparsejax.learn.conv import optax_init
      >>> s = jax.random.normal(jax.random.PRNGKey(0), (2, 16))
      >>> st = optax_init(jax.random.normal(jax.random.PRNGKey(1), (3, 1, 4)), s, 0.1, optax.adam(1e-2))
      >>> st.filters.shape, st.x.z.shape
      ((3, 1, 4), (2, 3, 16))
    """

    filters: jax.Array
    x: CBPDNState
    opt_state: Any


class ConvDictLearnResult(NamedTuple):
    """Result of ``learn_conv_dictionary``.

    filters: (M, 1, *k) learned filters (unit norm); codes: (K, M, *N) sparse codes of the training signals
    (the learner's last coefficient iterate); loop: ``sparsejax.learn.loop.LoopResult`` (state, history with
    ``loss`` (objective), ``sparsity`` (fraction of non-zero codes), residuals and penalties, steps, status,
    message); method: "admm" or "optax".

    Example: see ``learn_conv_dictionary``.
      >>> from sparsejax.learn.conv import ConvDictLearnResult
      >>> ConvDictLearnResult._fields
      ('filters', 'codes', 'loop', 'method')
    """

    filters: jax.Array
    codes: jax.Array
    loop: Any
    method: str


# ----------------------------------------------------------------------------------------------------
# shared pieces (pure)
# ----------------------------------------------------------------------------------------------------
def _crop(x, ksize):
    return x[(Ellipsis,) + tuple(slice(0, k) for k in ksize)]


def _pad(g, N):
    ksize = g.shape[-len(N):]
    return jnp.pad(g, [(0, 0)] * (g.ndim - len(N)) + [(0, n - k) for n, k in zip(N, ksize)])


def _signals(s, filters):
    """Signals in the layout (K, C, *N): a batch (K, *N) of single-channel signals gets its channel axis."""
    return s if s.ndim == filters.ndim else s[:, None]


def support_mask(filter_sizes, ksize=None) -> np.ndarray:
    """The (M, *k) 0/1 support of filters of several sizes zero-padded to the largest, k = ``ksize`` or the largest
    size on each axis (filter m occupies the leading ``filter_sizes[m]`` window, as SPORCO's mixed ``dsz``).

    Args:
      filter_sizes: per-filter sizes, a sequence of M ints (1-D) or of M tuples (h,) / (h, w).
      ksize: the common (padded) size, default the largest per axis.

    Example:
      >>> from sparsejax.learn.conv import support_mask
      >>> support_mask([(2, 2), (3, 3)])[0].tolist()
      [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    sizes = [tuple(k) if isinstance(k, (tuple, list)) else (k,) for k in filter_sizes]
    if not sizes or len({len(k) for k in sizes}) != 1:
        raise ValueError(f"filter_sizes must be M >= 1 sizes of one dimension each, got {filter_sizes!r}")
    kmax = tuple(max(k[a] for k in sizes) for a in range(len(sizes[0]))) if ksize is None else tuple(ksize)
    mask = np.zeros((len(sizes),) + kmax)
    for m, k in enumerate(sizes):
        mask[(m,) + tuple(slice(0, int(x)) for x in k)] = 1.0
    return mask


def project_filters(filters, zero_mean: bool = False, mask=None) -> jax.Array:
    """P_C: (optionally) remove each filter's mean, then scale it to unit l2 norm (a zero filter stays zero).

    ``filters`` (M, C, *k) already live in the window; cropping is the caller's part of the projection. The norm is
    taken over all channels of a filter together and the mean per channel (as SPORCO's ``cnvrep.Pcn``). ``mask``
    (M, *k), for filters of several sizes (``support_mask``): each filter is restricted to its support and its mean
    taken over the support only.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.conv import project_filters
      >>> g = project_filters(jnp.array([[[1.0, 2.0, 3.0]]]), zero_mean=True)
      >>> g.round(4).tolist()
      [[[-0.7071, 0.0, 0.7071]]]
    """
    axes = tuple(range(2, filters.ndim))
    if mask is not None:
        mask = jnp.asarray(mask, filters.dtype)[:, None]
        filters = filters * mask
        if zero_mean:
            mean = jnp.sum(filters, axis=axes, keepdims=True) / jnp.sum(mask, axis=axes, keepdims=True)
            filters = (filters - mean) * mask
        return normalize_filters(filters)
    if zero_mean:
        filters = filters - jnp.mean(filters, axis=axes, keepdims=True)
    return normalize_filters(filters)


def _dictionary_balancing(period, ratio) -> RhoBalancing:
    """SPORCO's dictionary-learning AutoRho (Period ``period``, Scaling 2, RsdlRatio ``ratio``, RsdlTarget 1, no
    AutoScaling): rho doubled when r > ratio s, halved when s > ratio r, the scaled dual divided by the same factor."""
    return RhoBalancing(period=period, ratio=ratio, scaling=2.0, auto_scaling=False, target=1.0)


def cdl_objective(filters, s, codes, lam) -> jax.Array:
    """F(d, x) = 1/2 sum_k ||sum_m d_m * x_{k,m} - s_k||^2 + lam sum |x| (circular boundary; for C channels
    d_m * x_{k,m} is the C-channel signal (d_{m,c} * x_{k,m})_c).

    Args:
      filters: (M, C, *k).
      s: signals (K, *N) (C = 1) or (K, C, *N).
      codes: (K, M, *N).
      lam: scalar l1 weight.

    Returns:
      The scalar F (differentiable in every argument).

    Example: a unit spike per signal reproduces the filter exactly, leaving lam ||x||_1.
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.conv import cdl_objective
      >>> d = jnp.array([[[0.6, 0.8]]])
      >>> x = jnp.zeros((2, 1, 8)).at[:, 0, 3].set(1.0)
      >>> s = jnp.zeros((2, 8)).at[:, 3].set(0.6).at[:, 4].set(0.8)
      >>> round(float(cdl_objective(d, s, x, 0.5)), 4)
      1.0
    """
    return cbpdn_objective(filters, _signals(s, filters), codes, lam)


_LDL_MAX_K = 16      # up to this many signals the K x K solves are unrolled LDL^H (elementwise over frequencies)


class _CodeFactors(NamedTuple):
    """Per-frequency factors of the code matrix Z_f (K x M, Z_f[k, m] = DFT of z_{k,m} at f).

    Zf (K, M, *F); G the Gram matrix Z_f Z_f^H: for K <= ``_LDL_MAX_K`` its lower triangle (K (K + 1) / 2, *F), row
    by row (entry (k, l), l <= k, at index k (k + 1) / 2 + l), for larger K the full (K, K, *F) matrix (one
    contraction: an entry-by-entry graph of K^2 / 2 sums took minutes to compile at K = 150). Neither depends on rho.
    """

    Zf: jax.Array
    G: jax.Array


def _code_factors(z, N, axis=None) -> _CodeFactors:
    """Code DFTs and their Gram matrices (``axis``: mesh axis the maps are split over, the sum over m a psum)."""
    Zf = rfft(z, N)
    K = Zf.shape[0]
    if K > _LDL_MAX_K:
        G = jnp.einsum("km...,lm...->kl...", Zf, jnp.conj(Zf))
    else:
        G = jnp.stack([jnp.sum(Zf[k] * jnp.conj(Zf[l]), axis=0) for k in range(K) for l in range(k + 1)])
    return _CodeFactors(Zf, psum(G, axis))


def _gram_solve(G, rho, w):
    """t = (rho I + Z Z^H)^{-1} w per frequency; G the packed lower Gram triangle (P, *F), w (K, *F).

    K <= ``_LDL_MAX_K``: rho I + Z Z^H = L D L^H (unit lower L, real D > 0) factored by unrolled elementwise
    recurrences over the frequency arrays, then L y = w, L^H t = D^{-1} y; exact for every rho, O(K^3) flops per
    frequency and no batched-LAPACK call. Larger K: a batched ``jnp.linalg.solve``.
    """
    K = w.shape[0]
    at = lambda k, l: G[k * (k + 1) // 2 + l]            # noqa: E731
    n_freq_axes = G.ndim - (2 if K > _LDL_MAX_K else 1)  # G is full (K, K, *F) above _LDL_MAX_K, else packed
    if w.ndim > 1 + n_freq_axes:                         # channels (K, C, *F): one solve per channel
        return jax.vmap(lambda wc: _gram_solve(G, rho, wc), in_axes=1, out_axes=1)(w)
    if K > _LDL_MAX_K:
        A = jnp.moveaxis(G.reshape((K, K, -1)), -1, 0) + rho * jnp.eye(K, dtype=G.dtype)[None]
        t = jnp.linalg.solve(A, jnp.moveaxis(w.reshape(K, -1), -1, 0)[..., None])[..., 0]
        return jnp.moveaxis(t, 0, -1).reshape(w.shape)
    D, L = [], {}
    for j in range(K):
        D.append(rho + at(j, j).real - sum((jnp.abs(L[j, p]) ** 2 * D[p] for p in range(j)), 0.0))
        for i in range(j + 1, K):
            L[i, j] = (at(i, j) - sum((L[i, p] * jnp.conj(L[j, p]) * D[p] for p in range(j)), 0.0)) / D[j]
    y = []
    for i in range(K):
        y.append(w[i] - sum((L[i, p] * y[p] for p in range(i)), 0.0))
    t = [None] * K
    for i in reversed(range(K)):
        t[i] = y[i] / D[i] - sum((jnp.conj(L[p, i]) * t[p] for p in range(i + 1, K)), 0.0)
    return jnp.stack(t)


def _code_solve(cf: _CodeFactors, b, rho, axis=None):
    """(Z_f^H Z_f + rho I)^{-1} b per frequency and channel by Woodbury, b (M, C, *F):
    (b - Z^H (rho I + Z Z^H)^{-1} Z b) / rho (K = 1: Sherman-Morrison); the C channels share Z. A single-channel
    b (M, *F) gives (M, *F)."""
    if b.ndim < cf.Zf.ndim:
        return _code_solve(cf, b[:, None], rho, axis)[:, 0]
    w = psum(jnp.sum(cf.Zf[:, :, None] * b[None], axis=1), axis)    # Z b (K, C, *F)
    t = _gram_solve(cf.G, rho, w)
    return (b - jnp.sum(jnp.conj(cf.Zf)[:, :, None] * t[:, None], axis=0)) / rho


# ----------------------------------------------------------------------------------------------------
# dictionary update (ConvCnstrMOD by ADMM)
# ----------------------------------------------------------------------------------------------------
def dict_update_init(filters, N, rho) -> DictUpdateState:
    """Initial ConvCnstrMOD state for filters (M, C, *k) on signals of spatial size N (dual u = 0, penalty rho;
    u (M, *N) for C = 1, (M, C, *N) for C > 1).

    Example: see ``DictUpdateState``.
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.conv import dict_update_init
      >>> float(jnp.abs(dict_update_init(jnp.ones((2, 1, 3, 3)), (8, 8), 1.0).u).max())
      0.0
    """
    dtype = filters.dtype
    inf = jnp.asarray(jnp.inf, dtype)
    C = filters.shape[1]
    u = jnp.zeros((filters.shape[0],) + ((C,) if C > 1 else ()) + tuple(N), dtype)
    return DictUpdateState(filters, u, jnp.asarray(rho, dtype), jnp.asarray(0, jnp.int32), inf, inf)


def _dict_iteration(st: DictUpdateState, cf, ZHs, N, alpha, zero_mean, auto_rho, rho_period, ratio=10.0,
                    until=None, axis=None, mask=None):
    """One ConvCnstrMOD ADMM iteration (module doc) with the code factors ``cf`` and Z^H S ``ZHs`` (M, C, *F)."""
    dtype = st.u.dtype
    tiny = jnp.finfo(dtype).tiny
    rho = st.rho
    ksize = st.g.shape[2:]
    squeeze = st.u.ndim < st.g.ndim                                   # single channel: u kept as (M, *N)
    u0 = st.u[:, None] if squeeze else st.u                           # (M, C, *N)
    G = _pad(st.g, N)                                                 # (M, C, *N)
    b = ZHs + rho * rfft(G - u0, N)
    d = irfft(_code_solve(cf, b, rho, axis), N)                      # (M, C, *N)
    v = alpha * d + (1.0 - alpha) * G
    w = v + u0
    g = project_filters(_crop(w, ksize), zero_mean, mask)
    Gn = _pad(g, N)
    u = w - Gn
    sums = psum(jnp.stack([sq(d - Gn), sq(d), sq(Gn), sq(Gn - G), sq(u)]), axis)
    r = jnp.sqrt(sums[0]) / jnp.maximum(jnp.sqrt(jnp.maximum(sums[1], sums[2])), tiny)
    sd = jnp.sqrt(sums[3]) / jnp.maximum(jnp.sqrt(sums[4]), tiny)
    f = (_dictionary_balancing(rho_period, ratio).factor(rho, r, sd, st.k, jnp.asarray(1.0, dtype), until)
         if auto_rho else jnp.ones_like(rho))
    u = u / f
    return DictUpdateState(g, u[:, 0] if squeeze else u, rho * f, st.k + 1, r, sd)


def _dict_iterations(st, z, s, N, n, alpha, zero_mean, auto_rho, rho_period, ratio=10.0, until=None, axis=None,
                     mask=None):
    """``n`` ConvCnstrMOD iterations; s in the layout (K, C, *N)."""
    cf = _code_factors(z, N, axis)
    ZHs = jnp.sum(jnp.conj(cf.Zf)[:, :, None] * rfft(s, N)[:, None], axis=0)    # Z^H S: (M, C, *F)
    body = lambda _, t: _dict_iteration(t, cf, ZHs, N, alpha, zero_mean, auto_rho, rho_period, ratio,  # noqa: E731
                                        until, axis, mask)
    return jax.lax.fori_loop(0, n, body, st), cf


def dict_update_step(st: DictUpdateState, z, s, *, alpha=1.8, zero_mean: bool = False, auto_rho: bool = True,
                     rho_period: int = 10, n_iter: int = 1, mask=None) -> DictUpdateState:
    """``n_iter`` ConvCnstrMOD ADMM iterations for fixed codes (pure, jittable).

    Args:
      st: ``DictUpdateState`` (warm start).
      z: codes (K, M, *N); s: signals (K, *N) or, for C-channel filters, (K, C, *N).
      alpha: over-relaxation in (0, 2); zero_mean: also constrain sum(d_m) = 0; auto_rho, rho_period:
        residual balancing (module doc); n_iter: static number of iterations; mask: (M, *k) supports of filters
        of several sizes (``support_mask``) or None.

    Returns:
      the new ``DictUpdateState``; the filters are ``state.g`` (M, C, *k).

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.conv import dict_update_init, dict_update_step
      >>> z = jnp.zeros((2, 3, 16)).at[:, :, ::5].set(1.0)
      >>> s = jax.random.normal(jax.random.PRNGKey(0), (2, 16))
      >>> st = dict_update_init(jax.random.normal(jax.random.PRNGKey(1), (3, 1, 4)), (16,), 1.0)
      >>> st = dict_update_step(st, z, s, n_iter=5)
      >>> int(st.k), bool(jnp.allclose(jnp.linalg.norm(st.g.reshape(3, -1), axis=1), 1.0, atol=1e-5))
      (5, True)
    """
    sc = _signals(s, st.g)
    N = tuple(sc.shape[2:])
    return _dict_iterations(st, z, sc, N, n_iter, jnp.asarray(alpha, s.dtype), zero_mean, auto_rho, rho_period,
                            mask=mask)[0]


def dict_update(filters, z, s, *, rho=10.0, n_iter: int = 100, alpha=1.8, zero_mean: bool = False,
                auto_rho: bool = True, filter_sizes=None) -> DictUpdateState:
    """Solve the ConvCnstrMOD problem min_{d in C} 1/2 sum_k ||sum_m d_m * z_{k,m} - s_k||^2 from ``filters``.

    Args:
      filters: initial filters (M, C, *k) (projected onto C first); z: codes (K, M, *N); s: signals (K, *N)
        for C = 1, (K, C, *N) for C channels (a multi-channel dictionary: the channels share the codes).
      rho: initial penalty > 0; n_iter: ADMM iterations; alpha, zero_mean, auto_rho: see ``dict_update_step``.
      filter_sizes: None, or the M per-filter sizes (ints or tuples, each at most k) of a dictionary of mixed
        sizes (SPORCO's mixed ``dsz``): filter m lives in its leading ``filter_sizes[m]`` window of the k-window.

    Returns:
      the final ``DictUpdateState`` (filters ``.g``, residuals ``.primal_res`` / ``.dual_res``).

    Garcia-Cardona & Wohlberg, "Convolutional dictionary learning: a comparative review and new algorithms",
    IEEE TCI 2018, sec. IV (ConvCnstrMOD).

    Example: with the codes of a planted filter, the filter comes back.
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.conv import cdl_objective, dict_update
      >>> d = jnp.array([[[0.6, 0.0, 0.8]]])
      >>> z = jnp.zeros((1, 1, 16)).at[0, 0, ::4].set(1.0)
      >>> s = jnp.fft.irfft(jnp.fft.rfft(z[:, 0]) * jnp.fft.rfft(d[0], 16), 16)
      >>> st = dict_update(jnp.ones((1, 1, 3)), z, s, rho=1.0, n_iter=200)
      >>> st.g.round(3).tolist(), round(float(cdl_objective(st.g, s, z, 0.0)), 6)
      ([[[0.6, 0.0, 0.8]]], 0.0)
    """
    filters = V.as_float_array("filters", filters)
    z = V.as_float_array("z", z)
    s = V.as_float_array("s", s)
    V.check_ndim("filters", filters, (3, 4), "(M, C, h) or (M, C, h, w)")
    d = filters.ndim - 2
    C = filters.shape[1]
    if C == 1:
        V.check_ndim("s", s, (d + 1, d + 2), "signals (K, *N) or (K, 1, *N)")
    else:
        V.check_ndim("s", s, (d + 2,), f"signals (K, C, *N) with C = {C}, the filters' channels")
    sc = _signals(s, filters)
    if sc.shape[1] != C:
        raise ValueError(f"s has {sc.shape[1]} channel(s) but the filters have {C}: a multi-channel dictionary "
                         f"(M, C, *k) learns from signals (K, C, *N) with the same C, got s {tuple(s.shape)}")
    K, N = sc.shape[0], tuple(sc.shape[2:])
    V.check_shape("z", z, (K, filters.shape[0]) + N, "codes (K, M, *N)")
    V.check_positive_int("n_iter", n_iter)
    mask = _mask_for(filter_sizes, filters.shape[0], tuple(filters.shape[2:]))
    dtype = jnp.result_type(filters.dtype, z.dtype, s.dtype)
    return _dict_update(filters.astype(dtype), z.astype(dtype), sc.astype(dtype), jnp.asarray(rho, dtype),
                        jnp.asarray(alpha, dtype), None if mask is None else jnp.asarray(mask, dtype), n_iter=n_iter,
                        zero_mean=bool(zero_mean), auto_rho=bool(auto_rho))


def _mask_for(filter_sizes, M, ksize):
    """The support mask of per-filter sizes checked against M filters of window ``ksize`` (None: one size)."""
    if filter_sizes is None:
        return None
    if isinstance(filter_sizes, (str, bytes)) or not hasattr(filter_sizes, "__len__") or len(filter_sizes) != M:
        raise ValueError(f"filter_sizes must list one size per filter ({M}), got {filter_sizes!r}")
    sizes = [tuple(k) if isinstance(k, (tuple, list)) else (k,) for k in filter_sizes]
    for m, k in enumerate(sizes):
        if len(k) != len(ksize):
            raise ValueError(f"filter_sizes[{m}] = {k} must have {len(ksize)} entries (the filters' spatial axes)")
        for a, (x, big) in enumerate(zip(k, ksize)):
            V.check_positive_int(f"filter_sizes[{m}]", x, big, f"the filter window {ksize} on axis {a}")
    return support_mask(sizes, ksize)


@partial(jax.jit, static_argnames=("n_iter", "zero_mean", "auto_rho"))
def _dict_update(filters, z, s, rho, alpha, mask, *, n_iter, zero_mean, auto_rho):
    N = tuple(s.shape[2:])
    st = dict_update_init(project_filters(filters, zero_mean, mask), N, rho)
    return _dict_iterations(st, z, s, N, n_iter, alpha, zero_mean, auto_rho, 1, 2.0, until=100, mask=mask)[0]


# ----------------------------------------------------------------------------------------------------
# coefficient update (CBPDN ADMM, warm-started)
# ----------------------------------------------------------------------------------------------------
def _lam_full(lam, d):
    return jnp.reshape(lam, (1,) * (2 + d))


def _x_iterations(xst: CBPDNState, filters, s, lam, alpha, n, auto_rho, rho_period, ratio=10.0, axis=None):
    """``n`` CBPDN ADMM iterations on the batch s (K, C, *N): one shared rho, SPORCO's dimK = 1), continuing
    from ``xst``, with the dictionary-learning balancing of rho for ever (``_dictionary_balancing``).

    All maps in one chunk: with K images a chunk of c maps is K c maps, and streaming over chunks of the
    (K, M, *N) arrays (strided slices) was measured slower here (5 x 32 maps of 256 x 256: 0.34 s per
    iteration unchunked, 0.76 s with c = 1). ``axis``: the mesh axis the filters and maps are split over.
    """
    d = s.ndim - 2
    solver = cbpdn_admm_solver(filters, s, _lam_full(lam, d), xst.rho, alpha, xst.z, auto_rho=auto_rho,
                               auto_rho_iter=None, rho_balancing=_dictionary_balancing(rho_period, ratio),
                               chunk=filters.shape[0], axis=axis, state=xst)
    # the learner reports its own objective (at the updated filters): none is evaluated inside the coding step
    return iterate(solver._replace(objective=None), max_iter=n, tol=0.0, mode="scan").state


def _x_init(filters, s, lam, rho):
    """s in the layout (K, C, *N)."""
    K, M = s.shape[0], filters.shape[0]
    x0 = jnp.zeros((K, M) + tuple(s.shape[2:]), s.dtype)
    return cbpdn_admm_solver(filters, s, _lam_full(lam, s.ndim - 2), rho, jnp.asarray(1.8, s.dtype), x0,
                             auto_rho=False).init()


def _metrics(obj, z, xst, extra):
    out = {"loss": obj, "sparsity": jnp.mean((z != 0).astype(obj.dtype)),
           "x_primal_res": xst.primal_res, "x_dual_res": xst.dual_res, "x_rho": xst.rho}
    out.update(extra)
    return out


# ----------------------------------------------------------------------------------------------------
# the two learners
# ----------------------------------------------------------------------------------------------------
def admm_init(filters, s, lam, *, x_rho=None, d_rho=10.0, zero_mean: bool = False, mask=None) -> ConvDLState:
    """Initial interleaved-ADMM state: filters projected onto C, codes 0, duals 0.

    filters (M, C, *k); s (K, *N) for C = 1 or (K, C, *N); mask: (M, *k) supports (``support_mask``) or None; x_rho default 50 lam + 0.5 (SPORCO's example); d_rho: 10 (SPORCO's
    example), None: K (SPORCO's ConvCnstrMOD default).

    Example: see ``ConvDLState``.
      >>> import jax
      >>> from sparsejax.learn.conv import admm_init
      >>> st = admm_init(jax.random.normal(jax.random.PRNGKey(1), (3, 1, 4)), jax.numpy.ones((2, 16)), 0.1)
      >>> round(float(st.x.rho), 4), float(st.d.rho)                   # 50 lam + 0.5, 10
      (5.5, 10.0)
    """
    dtype = s.dtype
    d_rho = float(s.shape[0]) if d_rho is None else d_rho
    lam = jnp.asarray(lam, dtype)
    x_rho = 50.0 * lam + 0.5 if x_rho is None else jnp.asarray(x_rho, dtype)
    g = project_filters(filters.astype(dtype), zero_mean, mask)
    sc = _signals(s, g)
    return ConvDLState(_x_init(g, sc, lam, jnp.asarray(x_rho, dtype)), dict_update_init(g, sc.shape[2:], d_rho))


def _admm_step(state: ConvDLState, s, lam, alpha, mask=None, *, x_iter, d_iter, zero_mean, auto_rho, rho_period,
               rho_ratio, axis=None):
    s = _signals(s, state.d.g)                                       # (K, C, *N)
    N = tuple(s.shape[2:])
    xst = _x_iterations(state.x, state.d.g, s, lam, alpha, x_iter, auto_rho, rho_period, rho_ratio, axis)
    dst, cf = _dict_iterations(state.d, xst.z, s, N, d_iter, alpha, zero_mean, auto_rho, rho_period, rho_ratio,
                               axis=axis, mask=mask)
    # objective at (new filters, codes) by Parseval, reusing the code DFTs of the dictionary update
    Gf = rfft(dst.g, N)                                                              # (M, C, *F)
    Rf = psum(jnp.sum(cf.Zf[:, :, None] * Gf[None], axis=1), axis) - rfft(s, N)     # (K, C, *F)
    l1, nnz = psum(jnp.stack([jnp.sum(jnp.abs(xst.z)), jnp.sum((xst.z != 0).astype(s.dtype))]), axis)
    obj = 0.5 * fsq(Rf, N) + lam * l1
    size = xst.z.size if axis is None else xst.z.size * jax.lax.psum(1, axis)
    metrics = {"loss": obj, "sparsity": nnz / size, "x_primal_res": xst.primal_res, "x_dual_res": xst.dual_res,
               "x_rho": xst.rho, "d_primal_res": dst.primal_res, "d_dual_res": dst.dual_res, "d_rho": dst.rho}
    return ConvDLState(xst, dst), metrics


@partial(jax.jit, static_argnames=("x_iter", "d_iter", "zero_mean", "auto_rho", "rho_period", "rho_ratio", "mesh"))
def admm_step(state: ConvDLState, s, lam, alpha=1.8, *, x_iter: int = 1, d_iter: int = 1, zero_mean: bool = False,
              auto_rho: bool = True, rho_period: int = 10, rho_ratio: float = 10.0, mesh=None, mask=None):
    """One outer step of interleaved ADMM dictionary learning (module doc): ``x_iter`` CBPDN iterations with the
    current filters, then ``d_iter`` ConvCnstrMOD iterations with the new codes.

    Args:
      state: ``ConvDLState``; s: signals (K, *N), or (K, C, *N) for C-channel filters; lam: l1 weight (scalar);
        alpha: over-relaxation of both ADMMs.
      mask: (M, *k) supports of filters of several sizes (``support_mask``) or None.
      mesh: None, or a 1-D ``jax.sharding.Mesh`` over which the M filters, their maps and duals are split
        (``shard_map``; M a multiple of its size): every sum over filters -- the per-frequency solves of both
        ADMMs (the code Gram matrices Z_f Z_f^H and Z_f b), the residuals, the objective -- becomes a ``psum``.
        The same iterates as without a mesh, up to float rounding.

    Returns:
      (new state, metrics): loss = F(new filters, codes), sparsity = fraction of non-zero codes, the relative
      residuals and penalties of both ADMMs.

    Example:
      >>> import jax
      >>> from sparsejax.learn.conv import admm_init, admm_step
      >>> s = jax.random.normal(jax.random.PRNGKey(0), (2, 16))
      >>> st = admm_init(jax.random.normal(jax.random.PRNGKey(1), (3, 1, 4)), s, 0.1)
      >>> st, metrics = admm_step(st, s, 0.1, x_iter=2, d_iter=2)
      >>> int(st.x.k), int(st.d.k), sorted(metrics)[:3]
      (2, 2, ['d_dual_res', 'd_primal_res', 'd_rho'])
    """
    dtype = s.dtype
    lam = jnp.asarray(lam, dtype)
    alpha = jnp.asarray(alpha, dtype)
    kw = dict(x_iter=x_iter, d_iter=d_iter, zero_mean=zero_mean, auto_rho=auto_rho, rho_period=rho_period,
              rho_ratio=rho_ratio)
    if mesh is None:
        return _admm_step(state, s, lam, alpha, mask, **kw)

    ax = mesh.axis_names[0]
    maps = P(None, ax)
    spec = ConvDLState(CBPDNState(None, maps, maps, None, None, None, None, P(), P(), P(), P(), P()),
                       DictUpdateState(P(ax), P(ax), P(), P(), P(), P()))
    if mask is None:
        return jax.shard_map(partial(_admm_step, axis=ax, **kw), mesh=mesh, in_specs=(spec, P(), P(), P()),
                             out_specs=(spec, P()), check_vma=False)(state, s, lam, alpha)
    return jax.shard_map(partial(_admm_step, axis=ax, **kw), mesh=mesh, in_specs=(spec, P(), P(), P(), P(ax)),
                         out_specs=(spec, P()), check_vma=False)(state, s, lam, alpha, jnp.asarray(mask, dtype))


def optax_init(filters, s, lam, optimizer, *, x_rho=None, zero_mean: bool = False, mask=None) -> ConvOptaxState:
    """Initial Optax-learner state (filters projected onto C, codes 0, ``optimizer.init(filters)``; x_rho default
    50 lam + 0.5).

    Example: see ``ConvOptaxState``.
      >>> import jax
      >>> import optax
      >>> from sparsejax.learn.conv import optax_init
      >>> st = optax_init(jax.numpy.ones((2, 1, 3)), jax.numpy.ones((1, 8)), 0.1, optax.sgd(0.1), zero_mean=True)
      >>> st.filters.round(4).tolist()                                  # projected: zero mean, unit norm
      [[[0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]]]
    """
    dtype = s.dtype
    lam = jnp.asarray(lam, dtype)
    x_rho = 50.0 * lam + 0.5 if x_rho is None else jnp.asarray(x_rho, dtype)
    g = project_filters(filters.astype(dtype), zero_mean, mask)
    return ConvOptaxState(g, _x_init(g, _signals(s, g), lam, jnp.asarray(x_rho, dtype)), optimizer.init(g))


@partial(jax.jit, static_argnames=("optimizer", "x_iter", "zero_mean", "auto_rho", "rho_period", "rho_ratio"))
def optax_step(state: ConvOptaxState, s, lam, *, optimizer, x_iter: int = 5, zero_mean: bool = False,
               auto_rho: bool = True, rho_period: int = 10, rho_ratio: float = 10.0, mask=None):
    """One Optax step: ``x_iter`` warm-started CBPDN ADMM iterations give codes z; the filters move along
    ``optimizer`` on grad_d F(d, z) / K (z fixed) and are projected onto C (window by construction, unit norm).

    Returns:
      (new state, metrics): loss = F(filters before the step, z) (the value the gradient was taken at),
      sparsity, CBPDN residuals and rho, grad_norm.

    Example:
      >>> import jax
      >>> import optax
      >>> from sparsejax.learn.conv import optax_init, optax_step
      >>> s = jax.random.normal(jax.random.PRNGKey(0), (2, 16))
      >>> opt = optax.adam(1e-2)
      >>> st = optax_init(jax.random.normal(jax.random.PRNGKey(1), (3, 1, 4)), s, 0.1, opt)
      >>> st, metrics = optax_step(st, s, 0.1, optimizer=opt, x_iter=3)
      >>> int(st.x.k), bool(metrics["grad_norm"] > 0)
      (3, True)
    """

    dtype = s.dtype
    lam = jnp.asarray(lam, dtype)
    K = s.shape[0]
    s = _signals(s, state.filters)
    xst = _x_iterations(state.x, state.filters, s, lam, jnp.asarray(1.8, dtype), x_iter, auto_rho, rho_period,
                        rho_ratio)
    z = xst.z
    obj, grad = jax.value_and_grad(lambda f: cdl_objective(f, s, z, lam))(state.filters)
    updates, opt_state = optimizer.update(grad / K, state.opt_state, state.filters)
    filters = project_filters(optax.apply_updates(state.filters, updates), zero_mean, mask)
    metrics = _metrics(obj, z, xst, {"grad_norm": jnp.sqrt(sq(grad))})
    return ConvOptaxState(filters, xst, opt_state), metrics


# ----------------------------------------------------------------------------------------------------
# front door
# ----------------------------------------------------------------------------------------------------
def _check_inputs(images, n_filters, filter_size, lam, method, n_steps, multichannel=False):
    """(images, M, ksize, lam, C, sizes): sizes the per-filter sizes of a mixed dictionary, else None."""
    images = V.as_float_array("images", images)
    n_filters = V.check_positive_int("n_filters", n_filters)
    per_filter = isinstance(filter_size, list)
    if per_filter:
        if len(filter_size) != n_filters:
            raise ValueError(f"filter_size as a list gives one size per filter: {n_filters} sizes expected, got "
                             f"{len(filter_size)} ({filter_size!r})")
        entries = filter_size
    else:
        entries = [filter_size]
    dims = {len(k) for k in entries if isinstance(k, tuple)}
    if any(isinstance(k, list) for k in entries) or len(dims) > 1 or dims - {1, 2}:
        raise ValueError(f"filter_size must be an int, a tuple of 1 or 2 ints, or a list of one such size per "
                         f"filter, got {filter_size!r}")
    extra = 1 if multichannel else 0
    d = dims.pop() if dims else images.ndim - 1 - extra
    if images.ndim not in (2 + extra, 3 + extra) or images.ndim != d + 1 + extra:
        want = "" if not dims and d == images.ndim - 1 - extra else f", {d}-D to match filter_size {filter_size}"
        if multichannel:
            raise ValueError(f"images must have shape (K, C, N) for 1-D signals or (K, C, H, W) for 2-D images "
                             f"with multichannel=True (K signals of C channels{want}), got shape "
                             f"{tuple(images.shape)}")
        raise ValueError(f"images must have shape (K, N) for 1-D signals or (K, H, W) for 2-D images (a batch of "
                         f"K single-channel signals{want}), got shape {tuple(images.shape)}; a single image needs "
                         "a leading batch axis (images[None]); colour images (K, C, H, W) need multichannel=True")
    sizes = [tuple(k) if isinstance(k, tuple) else (k,) * d for k in entries]
    sizes = [tuple(V.check_positive_int("filter_size", x) for x in k) for k in sizes]
    ksize = tuple(max(k[a] for k in sizes) for a in range(d))
    N = tuple(images.shape[-d:])
    for a, (n, k) in enumerate(zip(N, ksize)):
        if k > n:
            raise ValueError(f"filter_size {ksize} is larger than the images {N} on spatial axis {a} "
                             f"({k} > {n})")
    if images.shape[0] < 1:
        raise ValueError("images must hold at least one signal (K >= 1)")
    C = images.shape[1] if multichannel else 1
    if C < 1:
        raise ValueError("images must have at least one channel (C >= 1)")
    V.check_choice("method", method, METHODS)
    V.check_finite("images", images)
    lam = V.check_nonnegative_scalar("lam", lam)
    V.check_positive_int("n_steps", n_steps)
    mixed = per_filter and len(set(sizes)) > 1
    return images, n_filters, ksize, lam, C, (sizes if mixed else None)


def learn_conv_dictionary(images, n_filters: int, filter_size, lam, *, method: str = "admm", n_steps: int = 100,
                          key=None, init=None, x_iter: Optional[int] = None, d_iter: int = 1, x_rho=None,
                          d_rho=10.0, alpha=1.8, zero_mean: bool = False, auto_rho: bool = True,
                          rho_period: int = 10, rho_ratio: float = 10.0, optimizer=None, checkpoint_dir=None,
                          checkpoint_every: int = 50,
                          resume: bool = True, progress: bool = True,
                          stop_after: Optional[int] = None, mesh=None,
                          multichannel: bool = False) -> ConvDictLearnResult:
    """Learn ``n_filters`` convolutional filters for a batch of 1-D signals or 2-D images, single- or multi-channel,
    of one filter size or of several.

    Garcia-Cardona & Wohlberg, "Convolutional dictionary learning: a comparative review and new algorithms",
    IEEE TCI 2018 (the interleaved ADMM of SPORCO's ConvBPDNDictLearn); Wohlberg, IEEE TIP 2016 (CBPDN).

        min_{d in C, x} 1/2 sum_k ||sum_m d_m * x_{k,m} - s_k||^2 + lam ||x||_1   (circular boundary; module doc)

    With ``multichannel=True`` the images have C channels (colour: C = 3) and the dictionary is multi-channel,
    filters (M, C, *k) whose channels share one coefficient map per filter: s_{k,c} ~ sum_m d_{m,c} * x_{k,m}
    (SPORCO's multi-channel dictionary; Wohlberg, "Convolutional sparse representation of color images", IEEE
    SSIAI 2016); the dictionary update solves the C channels with the same per-frequency factors and the unit norm
    is over all channels of a filter. Filters of several sizes (``filter_size`` a list, as SPORCO's ConvCnstrMOD
    with a mixed ``dsz``) are zero-padded to the largest size, and the projection restricts each to its support.

    Args:
      images: (K, N) signals or (K, H, W) images (finite; pre-process them, e.g. a high-pass, as you need); with
        ``multichannel=True`` (K, C, N) or (K, C, H, W).
      n_filters: number of filters M >= 1.
      filter_size: int (same size on every axis) or a tuple (h,) / (h, w); at most the signal size. A list gives
        one size per filter (M ints or tuples, e.g. ``[(8, 8)] * 16 + [(12, 12)] * 16``): filter m has support in
        the leading ``filter_size[m]`` window of the largest size.
      lam: l1 weight >= 0 (scalar).
      method: "admm" (interleaved CBPDN / ConvCnstrMOD ADMM, as SPORCO's ConvBPDNDictLearn) or "optax".
      n_steps: outer steps (one coefficient and one dictionary update each).
      key: PRNG key for the random initial filters (default PRNGKey(0)).
      init: initial filters (M, C, *k) (k the largest size) instead of random Gaussian ones (projected onto C).
      x_iter: CBPDN ADMM iterations per step (default 1 for "admm", 5 for "optax"); d_iter: ConvCnstrMOD
        iterations per step ("admm").
      x_rho, d_rho: initial penalties (default 50 lam + 0.5 and 10, as in SPORCO's example; d_rho=None: K);
        alpha: over-relaxation.
      zero_mean: constrain the filters to zero mean as well.
      auto_rho, rho_period, rho_ratio: residual balancing of both penalties: every ``rho_period`` iterations
        rho is doubled when r > rho_ratio s and halved when s > rho_ratio r (SPORCO's dictionary-learning
        defaults 10, 10; the ConvCnstrMOD problem is non-convex, and a small ratio such as 2 keeps its ADMM
        from stalling at a large primal residual when the initial rho is too small).
      optimizer: Optax optimiser for "optax" (default ``optax.adam(1e-2)``).
      checkpoint_dir, checkpoint_every, resume, progress, stop_after: passed to ``sparsejax.learn.loop.run_loop``;
        the settings above (and a hash of the images and of the initial filters) are recorded in the checkpoints,
        and resuming a folder written with other settings raises ``ConfigMismatchError`` (``resume="force"``
        overrides).
      mesh: "admm" only: a 1-D ``jax.sharding.Mesh`` (e.g. ``sparsejax.distributed.batch_mesh()``) over whose
        devices the filters and their maps are split (``admm_step``); n_filters must be a multiple of its size.
        On a CPU, host devices come from ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (XLA runs each
        FFT on one thread: this is how one learning run uses several cores).
      multichannel: the images carry a channel axis after the batch axis (a multi-channel dictionary).
        Not with ``mesh`` (refused: the split run hung on CPU host devices).

    Returns:
      ``ConvDictLearnResult(filters, codes, loop, method)``, filters (M, C, *k) (zero outside each filter's
      support); ``loop.history`` holds loss (objective),
      sparsity and the residuals per step; ``loop.status`` "diverged" stops with the last good state.

    Raises:
      ValueError / TypeError (before any compilation) for NaN images, a wrong shape, a filter larger than the
      images, n_filters < 1, a bad method or lam.

    Example: the objective falls, the filters keep unit norm.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.conv import learn_conv_dictionary
      >>> S = jax.random.normal(jax.random.PRNGKey(0), (3, 32))
      >>> res = learn_conv_dictionary(S, 4, 5, 0.1, n_steps=20, x_iter=2, d_iter=2, progress=False)
      >>> loss = res.loop.history["loss"]
      >>> res.loop.status, res.filters.shape, res.codes.shape, bool(loss[-1] < loss[0])
      ('completed', (4, 1, 5), (3, 4, 32), True)
      >>> bool(jnp.allclose(jnp.linalg.norm(res.filters.reshape(4, -1), axis=1), 1.0, atol=1e-5))
      True
    """
    if not isinstance(multichannel, (bool, np.bool_)):
        raise TypeError(f"multichannel must be a bool, got {type(multichannel).__name__}")
    images, M, ksize, lam, C, sizes = _check_inputs(images, n_filters, filter_size, lam, method, n_steps,
                                                    bool(multichannel))

    dtype = images.dtype
    lam = lam.astype(dtype)
    mask = None if sizes is None else jnp.asarray(support_mask(sizes, ksize), dtype)
    if init is None:
        key = jax.random.PRNGKey(0) if key is None else key
        f0 = jax.random.normal(key, (M, C) + ksize, dtype)
    else:
        f0 = V.as_float_array("init", init)
        V.check_shape("init", f0, (M, C) + ksize, "initial filters (M, C, *k)")
        V.check_finite("init", f0)
        f0 = f0.astype(dtype)
    if x_iter is None:
        x_iter = 1 if method == "admm" else 5
    V.check_positive_int("x_iter", x_iter)
    V.check_positive_int("d_iter", d_iter)
    V.check_positive_int("rho_period", rho_period)
    for name, v in (("x_rho", x_rho), ("d_rho", d_rho)):
        if v is not None:
            V.check_nonnegative(name, v, strict=True)
    a = float(alpha)
    if not 0.0 < a < 2.0:
        raise ValueError(f"alpha (over-relaxation) must lie in (0, 2), got {a}")
    if mesh is not None:
        if method != "admm":
            raise ValueError(f"mesh (filters split over devices) needs method='admm', got method={method!r}")
        V.check_mesh(mesh, M, "n_filters")
        if C > 1:
            raise ValueError("mesh (filters split over devices) is not supported with a multi-channel dictionary: on "
                             "CPU host devices the batched LAPACK eigh of the multi-channel CBPDN factors hung inside "
                             "shard_map; run multichannel=True with mesh=None")

    if method == "admm":
        state = admm_init(f0, images, lam, x_rho=x_rho, d_rho=d_rho, zero_mean=zero_mean, mask=mask)
        alpha_a = jnp.asarray(alpha, dtype)
        step = lambda st: admm_step(st, images, lam, alpha_a, x_iter=x_iter, d_iter=d_iter,  # noqa: E731
                                    zero_mean=bool(zero_mean), auto_rho=bool(auto_rho), rho_period=rho_period,
                                    rho_ratio=float(rho_ratio), mesh=mesh, mask=mask)
    else:
        if optimizer is None:
            optimizer = optax.adam(1e-2)
        state = optax_init(f0, images, lam, optimizer, x_rho=x_rho, zero_mean=zero_mean, mask=mask)
        step = lambda st: optax_step(st, images, lam, optimizer=optimizer, x_iter=x_iter,  # noqa: E731
                                     zero_mean=bool(zero_mean), auto_rho=bool(auto_rho), rho_period=rho_period,
                                     rho_ratio=float(rho_ratio), mask=mask)

    config = None
    if checkpoint_dir is not None:   # recorded in the checkpoints: a resume with other settings is refused
        config = {"learner": "learn_conv_dictionary", "method": method, "n_filters": M, "filter_size": ksize,
                  "lam": float(str(np.asarray(lam))), "images": images, "init": f0, "x_iter": x_iter,
                  "d_iter": d_iter,
                  "x_rho": None if x_rho is None else float(x_rho), "d_rho": None if d_rho is None else float(d_rho),
                  "alpha": a, "zero_mean": bool(zero_mean), "auto_rho": bool(auto_rho), "rho_period": rho_period,
                  "rho_ratio": float(rho_ratio), "optimizer": optimizer if method == "optax" else None}
        if C > 1 or sizes is not None:      # recorded only when used: older checkpoints keep resuming
            config.update({"channels": C, "filter_sizes": None if sizes is None else [list(k) for k in sizes]})
    loop = run_loop(step, state, n_steps, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                    resume=resume, progress=progress, desc=f"conv dictionary learning ({method})",
                    stop_after=stop_after, config=config)
    st = loop.state
    filters = st.d.g if method == "admm" else st.filters
    return ConvDictLearnResult(filters, st.x.z, loop, method)


# ----------------------------------------------------------------------------------------------------
# pictures
# ----------------------------------------------------------------------------------------------------
def filters_to_image(filters, *, ncols: Optional[int] = None, pad: int = 1, scale: int = 1) -> np.ndarray:
    """Tile filters into one grey image in [0, 1] (0.5 = zero; each filter scaled by its own max |value|), or a
    colour one for 3-channel 2-D filters.

    Args:
      filters: (M, 1, h, w) or (M, h, w) 2-D filters, or (M, 1, h) / (M, h) 1-D filters (drawn as rows); (M, 3, h, w)
        colour filters (each filter scaled by its max |value| over the three channels).
      ncols: tiles per row (default ceil(sqrt(M)) for 2-D, 1 for 1-D).
      pad: white (1.0) pixels between tiles; scale: integer upsampling of each tile.

    Returns:
      numpy float64 array (H, W) in [0, 1], or (H, W, 3) for colour filters.

    Example: two 2 x 2 filters side by side, white (1.0) borders.
      >>> import numpy as np
      >>> from sparsejax.learn.conv import filters_to_image
      >>> img = filters_to_image(np.array([[[[1.0, -1.0], [0.0, 0.5]]], [[[2.0, 0.0], [0.0, 0.0]]]]), ncols=2)
      >>> img.shape, img[1:3, 1:3].tolist()
      ((4, 7), [[1.0, 0.0], [0.5, 0.75]])
    """
    f = np.asarray(filters, np.float64)
    if f.ndim == 4 and f.shape[1] == 3:
        if not np.all(np.isfinite(f)):
            raise ValueError("filters contain NaN or infinite values")
        M = f.shape[0]
        m = np.max(np.abs(f.reshape(M, -1)), axis=1)
        f = 0.5 + 0.5 * f / np.where(m > 0, m, 1.0)[:, None, None, None]   # one scale for the three channels
        ncols = int(math.ceil(math.sqrt(M))) if ncols is None else ncols
        nrows = int(math.ceil(M / ncols))
        return np.stack([_tiles(f[:, c], ncols, nrows, pad, scale) for c in range(3)], axis=-1)
    if f.ndim == 4:
        if f.shape[1] != 1:
            raise ValueError(f"filters must be single-channel (M, 1, h, w) or colour (M, 3, h, w), got shape "
                             f"{f.shape}")
        f = f[:, 0]
    elif f.ndim == 3 and f.shape[1] == 1:
        f = f[:, 0][:, None, :]                                     # 1-D (M, 1, h): each filter a 1 x h tile
    elif f.ndim == 2:
        f = f[:, None, :]
    elif f.ndim != 3:
        raise ValueError(f"filters must have shape (M, 1, h, w), (M, h, w), (M, 1, h) or (M, h), got {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("filters contain NaN or infinite values")
    M, h, w = f.shape
    if ncols is None:
        ncols = 1 if h == 1 else int(math.ceil(math.sqrt(M)))
    nrows = int(math.ceil(M / ncols))
    m = np.max(np.abs(f.reshape(M, -1)), axis=1)
    f = 0.5 + 0.5 * f / np.where(m > 0, m, 1.0)[:, None, None]
    return _tiles(f, ncols, nrows, pad, scale)


def _tiles(f, ncols, nrows, pad, scale):
    """Tile (M, h, w) values in [0, 1] on a white (1.0) background."""
    M, h, w = f.shape
    if scale > 1:
        f = np.kron(f, np.ones((1, scale, scale)))
        h, w = h * scale, w * scale
    out = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad))
    for i in range(M):
        r, c = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = f[i]
    return out


def save_filters_png(path, filters, **kw) -> Path:
    """Write ``filters_to_image(filters, **kw)`` as an 8-bit grey PNG (``sparsejax.datasets.images.save_image``),
    or an RGB PNG for colour filters (M, 3, h, w).

    Returns:
      The path written.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> import numpy as np
      >>> from sparsejax.learn.conv import save_filters_png
      >>> with tempfile.TemporaryDirectory() as d:
      ...     path = save_filters_png(Path(d) / "filters.png", np.ones((4, 1, 3, 3)), scale=2)
      ...     print(path.name, path.stat().st_size > 0)
      filters.png True
    """

    img = filters_to_image(filters, **kw)
    if img.ndim == 2:
        return save_image(path, img)
    path = Path(path)
    Image.fromarray(np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8), mode="RGB").save(path)
    return path
