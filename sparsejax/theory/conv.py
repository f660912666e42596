"""Executable stripe (convolutional) guarantees (T3 and T4 of ``sparsejax.theory``) and a CSC signal generator
that meets their conditions.

Model (convolutional sparse coding): Y = D G + E with D = [C_1 ... C_M] the banded circulant (periodic) convolutional
dictionary of M unit-norm filters of length n, G the (M, N) code maps, mu = mu(D) the convolutional coherence
(``sparsejax.conv.norms.conv_coherence``: max |cross-correlation| over filter pairs and shifts |t| < n, a filter
with itself at shift 0 excluded), and the local measures

    ||G||^s_{0,inf} = max_i ||gamma_i||_0     gamma_i = all coefficients (all M maps) at positions
                                              i - n + 1 .. i + n - 1, i.e. whose atoms overlap patch i
    ||E||^p_{2,inf} = max_i ||R_i E||_2       R_i extracts the n-sample patch starting at i.

Reference: V. Papyan, J. Sulam, M. Elad, "Working locally thinking globally: theoretical guarantees for
convolutional sparse coding", IEEE Trans. Signal Processing 65(21), 2017 (the P_{0,inf} problem, stripe spark,
and the OMP / BP guarantees restated below).

T3 (noiseless, E = 0). The stripe spark satisfies sigma_inf(D) >= 1 + 1/mu, so if

        ||G||^s_{0,inf} < (1 + 1/mu) / 2

then G is the unique solution of min ||G'||^s_{0,inf} s.t. D G' = Y (hence also the sparsest in l0), and
both OMP (run for ||G||_0 steps) and BP (min ||G'||_1 s.t. D G' = Y) recover it exactly. Note the condition is
on the *local* (stripe) sparsity: the total number of nonzeros ||G||_0 may be far above (1 + 1/mu)/2.

T4 (noisy; the paper's stability result for BP, read with the constants below). With the Lasso / BP

        G_BP = argmin_G 1/2 ||Y - D G||_2^2 + lam ||G||_1,     lam = 4 ||E||^p_{2,inf},

if ||G||^s_{0,inf} < (1 + 1/mu) / 3 then
  (1) supp(G_BP) is contained in supp(G),
  (2) ||G_BP - G||_inf <= 7.5 ||E||^p_{2,inf},
  (3) every entry with |G_i| > 7.5 ||E||^p_{2,inf} is in supp(G_BP),
  (4) G_BP is the unique minimiser.
The constants 4 and 7.5 are the best available reading of the paper (not re-derived here); the tests assert
that the conclusions *hold* on data meeting the condition, never that the constants are tight.

The bound functions follow ``sparsejax.theory.dense``: plain functions of the named quantities, working on Python
scalars and arrays (broadcasting, jit/vmap friendly).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax._validate import check_positive_int
from sparsejax.conv.norms import patch_l2_inf
from sparsejax.conv.operator import Conv
from sparsejax.pursuit.ista import fista
from sparsejax.pursuit.omp import omp, omp_batch
from sparsejax.solve import check_iteration
from sparsejax.theory._counting import largest_k_below

__all__ = [
    "stripe_uniqueness_condition",
    "stripe_bp_condition",
    "stripe_bp_lambda",
    "stripe_bp_linf_bound",
    "max_stripe_sparsity_unique",
    "max_stripe_sparsity_bp",
    "stripe_support",
    "stripe_sparse_signals",
    "recover_stripe_bp",
    "recover_stripe_omp",
]

# T4 constants, as read from Papyan, Sulam & Elad 2017 (checked to hold on data, not to be tight)
BP_LAMBDA_FACTOR = 4.0
BP_LINF_FACTOR = 7.5


# --------------------------------------------------------------------------- T3: uniqueness, OMP, BP
def stripe_uniqueness_condition(mu, k_stripe):
    """T3: ||G||^s_{0,inf} < (1 + 1/mu)/2 (Papyan, Sulam & Elad 2017).

    Under it G is the unique (stripe-)sparsest representation of Y = D G, and noiseless OMP and BP find it.

    Args:
      mu: convolutional coherence of the (normalised) filters.
      k_stripe: ||G||^s_{0,inf} (array allowed).

    Returns:
      Boolean (array).

    Example:
      >>> import sparsejax as sj
      >>> bool(sj.theory.stripe_uniqueness_condition(1 / 13, 6)), bool(sj.theory.stripe_uniqueness_condition(1 / 13, 7))
      (True, False)
    """
    return jnp.asarray(k_stripe) < 0.5 * (1.0 + 1.0 / jnp.asarray(mu))


def stripe_bp_condition(mu, k_stripe):
    """T4: ||G||^s_{0,inf} < (1 + 1/mu)/3 (Papyan, Sulam & Elad 2017; constants as read there).

    Example:
      >>> import sparsejax as sj
      >>> bool(sj.theory.stripe_bp_condition(1 / 13, 4)), bool(sj.theory.stripe_bp_condition(1 / 13, 5))
      (True, False)
    """
    return jnp.asarray(k_stripe) < (1.0 + 1.0 / jnp.asarray(mu)) / 3.0


def stripe_bp_lambda(patch_noise):
    """T4's Lasso weight lam = 4 ||E||^p_{2,inf} (``patch_noise`` = ||E||^p_{2,inf}, see
    ``sparsejax.conv.norms.patch_l2_inf``).

    Example:
      >>> import sparsejax as sj
      >>> float(sj.theory.stripe_bp_lambda(0.25))
      1.0
    """
    return BP_LAMBDA_FACTOR * jnp.asarray(patch_noise)


def stripe_bp_linf_bound(patch_noise):
    """T4's error bound ||G_BP - G||_inf <= 7.5 ||E||^p_{2,inf}; entries of G larger than it in magnitude
    are all found. A guarantee only where ``stripe_bp_condition`` holds (constants as read from Papyan, Sulam &
    Elad 2017; checked to hold, not to be tight).

    Example:
      >>> import sparsejax as sj
      >>> float(sj.theory.stripe_bp_linf_bound(0.1))
      0.75
    """
    return BP_LINF_FACTOR * jnp.asarray(patch_noise)


def _largest_k_below_safe(t, rtol) -> int:
    # conservative against rounding in a computed mu: e.g. Barker-13 has mu = 1/13 exactly, but the
    # floating-point correlation gives 1/mu = 13 + 1e-15, and (1 + 1/mu)/2 = 7 + 1e-15 would wrongly admit k = 7
    return largest_k_below(float(t) * (1.0 - rtol))


def max_stripe_sparsity_unique(mu, rtol: float = 1e-9) -> int:
    """Largest integer k with k < (1 + 1/mu)/2 (T3); 0 when none (only mu >= 1).

    Conservative by a relative ``rtol``: a k within ``rtol`` of the threshold counts as failing it, so a
    coherence computed in floating point (just below an exact 1/p) cannot admit the edge value.

    Example:
      >>> import sparsejax as sj
      >>> sj.theory.max_stripe_sparsity_unique(1 / 13)
      6
    """
    return _largest_k_below_safe(0.5 * (1.0 + 1.0 / float(mu)), rtol)


def max_stripe_sparsity_bp(mu, rtol: float = 1e-9) -> int:
    """Largest integer k with k < (1 + 1/mu)/3 (T4); 0 when none (mu >= 1/2). ``rtol`` as in
    ``max_stripe_sparsity_unique``.

    Example:
      >>> import sparsejax as sj
      >>> sj.theory.max_stripe_sparsity_bp(1 / 13)
      4
    """
    return _largest_k_below_safe((1.0 + 1.0 / float(mu)) / 3.0, rtol)


def stripe_support(codes, patch_noise):
    """Entries T4 guarantees to find: |G_i| > 7.5 ||E||^p_{2,inf} (boolean mask, same shape as ``codes``).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.theory.stripe_support(jnp.array([1.0, 0.5, -2.0]), 0.1).tolist()
      [True, False, True]
    """
    return jnp.abs(codes) > stripe_bp_linf_bound(patch_noise)


# --------------------------------------------------------------------------- test data
def _check_conv_1d_circular(conv_op):
    if not isinstance(conv_op, Conv):
        raise TypeError(f"conv_op must be a sparsejax.Conv, got {type(conv_op).__name__}")
    if len(conv_op.filter_shape) != 1 or conv_op.boundary != "circular" or conv_op.stride != 1:
        raise ValueError("stripe_sparse_signals needs a 1-D Conv with boundary='circular' and stride=1, got "
                         f"{conv_op!r}")


def _stripe_codes_one(key, M: int, N: int, n: int, k_stripe, max_nonzeros, min_abs, max_abs, dtype):
    """Random sequential packing of one (M, N) code map with every (2n - 1) window holding <= k_stripe."""
    k_perm, k_sgn, k_mag = jax.random.split(key, 3)
    order = jnp.argsort(jax.random.uniform(k_perm, (M * N,)))          # random visiting order of (m, p)
    pos = jnp.arange(N)

    def body(t, c):
        counts, chosen, nnz = c
        idx = order[t]
        p = idx % N
        d = (pos - p) % N
        window = jnp.minimum(d, N - d) <= n - 1                        # the windows i whose stripe holds p
        ok = jnp.all(jnp.where(window, counts < k_stripe, True)) & (nnz < max_nonzeros)
        counts = counts + (window & ok).astype(counts.dtype)
        chosen = chosen.at[idx].set(ok)
        return counts, chosen, nnz + ok.astype(nnz.dtype)

    init = (jnp.zeros(N, jnp.int32), jnp.zeros(M * N, bool), jnp.asarray(0, jnp.int32))
    _, chosen, _ = jax.lax.fori_loop(0, M * N, body, init)
    signs = jnp.where(jax.random.bernoulli(k_sgn, 0.5, (M * N,)), 1.0, -1.0)
    mags = jax.random.uniform(k_mag, (M * N,), minval=min_abs, maxval=max_abs)
    return jnp.where(chosen, signs * mags, 0.0).astype(dtype).reshape(M, N)


@partial(jax.jit, static_argnums=(2,))
def _stripe_signals(keys, conv_op, M_N_n, k_stripe, max_nonzeros, min_abs, max_abs, level):
    M, N, n = M_N_n
    dtype = conv_op.dtype
    k_codes, k_noise = keys
    B = k_codes.shape[0]
    G = jax.vmap(lambda k: _stripe_codes_one(k, M, N, n, k_stripe, max_nonzeros, min_abs, max_abs, dtype))(
        k_codes)

    g = jax.vmap(lambda k: jax.random.normal(k, conv_op.signal_shape, dtype))(k_noise)
    scale = jax.vmap(lambda e: patch_l2_inf(e, n))(g)
    E = g * (level / scale).reshape(B, *(1,) * len(conv_op.signal_shape))
    Y = jax.vmap(conv_op.apply)(G) + E
    return Y, G, E


def stripe_sparse_signals(key, conv_op, k_stripe, n_signals: int, min_abs: float = 1.0, max_abs: float = 2.0,
                          noise_patch_level: float = 0.0, max_nonzeros: int | None = None):
    """Draw CSC signals Y = D G + E whose codes satisfy ||G||^s_{0,inf} <= k_stripe and whose noise has
    ||E||^p_{2,inf} = noise_patch_level exactly.

    Codes: random sequential packing. The M N coefficient slots (m, p) are visited in a uniformly random
    order; a slot is switched on iff every (periodic) stripe window of width 2n - 1 that contains position p
    still holds fewer than ``k_stripe`` nonzeros (and fewer than ``max_nonzeros`` have been placed). The
    invariant "every window holds <= k_stripe nonzeros" therefore holds by construction, i.e.
    ``stripe_l0_inf(G, n) <= k_stripe`` (with the same window convention as
    ``sparsejax.conv.norms.stripe_counts``, a window wider than N covering the whole axis once). Without a
    cap the packing is maximal (no further nonzero fits), so most stripes are full: the condition of T3/T4 is
    met with equality of the stripe count in many windows -- the hardest case the theorems allow. Several
    maps may be active at the same position. Nonzero values: random signs, magnitudes uniform in
    [min_abs, max_abs].

    Noise: i.i.d. Gaussian, rescaled per signal so that ``patch_l2_inf(E, n) == noise_patch_level``
    (periodic n-sample patches, all channels).

    Args:
      key: jax.random key.
      conv_op: a 1-D ``sparsejax.Conv`` with boundary "circular" and stride 1 (filters (M, C, n), signal
        (C, N), codes (M, N)); its dtype sets the output dtype. Normalise the filters for the theory.
      k_stripe: the stripe budget (int >= 0, may be traced).
      n_signals: batch size B.
      min_abs, max_abs: magnitude range, 0 <= min_abs <= max_abs.
      noise_patch_level: ||E||^p_{2,inf} of every noise draw (>= 0).
      max_nonzeros: optional cap on ||G||_0 per signal.

    Returns:
      (Y, G, E): signals (B, C, N), codes (B, M, N), noise (B, C, N), Y = D G + E.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> op = sj.Conv(sj.normalize_filters(jnp.ones((2, 1, 5))), (1, 40), boundary="circular")
      >>> Y, G, E = sj.theory.stripe_sparse_signals(jax.random.PRNGKey(0), op, 2, 3, noise_patch_level=0.1)
      >>> Y.shape, bool(jnp.all(jax.vmap(lambda g: sj.stripe_l0_inf(g, 5))(G) <= 2))
      ((3, 1, 40), True)
    """
    _check_conv_1d_circular(conv_op)
    n_signals = check_positive_int("n_signals", n_signals)
    M, N = conv_op.code_shape
    (n,) = conv_op.filter_shape
    if isinstance(k_stripe, (int, np.integer)) and int(k_stripe) < 0:
        raise ValueError(f"k_stripe must be >= 0, got {k_stripe}")
    if not 0 <= min_abs <= max_abs:
        raise ValueError(f"need 0 <= min_abs <= max_abs, got min_abs={min_abs}, max_abs={max_abs}")
    if noise_patch_level < 0:
        raise ValueError(f"noise_patch_level must be >= 0, got {noise_patch_level}")
    cap = M * N if max_nonzeros is None else int(max_nonzeros)
    if cap < 0:
        raise ValueError(f"max_nonzeros must be >= 0, got {max_nonzeros}")
    k_codes, k_noise = jax.random.split(key)
    keys = (jax.random.split(k_codes, n_signals), jax.random.split(k_noise, n_signals))
    dtype = conv_op.dtype
    return _stripe_signals(keys, conv_op, (M, N, n), jnp.asarray(k_stripe, jnp.int32),
                           jnp.asarray(cap, jnp.int32), jnp.asarray(min_abs, dtype), jnp.asarray(max_abs, dtype),
                           jnp.asarray(noise_patch_level, dtype))


# --------------------------------------------------------------------------- solvers for the checks
@partial(jax.jit, static_argnums=(3,))
def _stripe_fista(conv_op, Y, lam, max_iter, tol):
    L = conv_op.lipschitz()
    return jax.vmap(lambda y, l: fista(conv_op, y, l, L=L, max_iter=max_iter, tol=tol, restart=True))(Y, lam)


def recover_stripe_bp(conv_op, Y, lam, *, max_iter: int = 5000, tol: float = 1e-12):
    """The convolutional Lasso argmin_G 1/2||Y - D G||^2 + lam ||G||_1 for a batch Y (B, C, N) by restarted
    FISTA on the ``Conv`` operator itself (step 1/L, L = ||D||_2^2 exact for circular convolution).

    ``lam`` is a scalar or one value per signal (B,). T4 uses lam = ``stripe_bp_lambda(||E||^p_{2,inf})``.
    Returns the ``Solution`` (codes (B, M, N), num_steps, converged, ...).

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> op = sj.Conv(sj.normalize_filters(jnp.ones((1, 1, 3))), (1, 16), boundary="circular")
      >>> Y = op.apply(jnp.zeros((1, 16)).at[0, 4].set(2.0))[None]
      >>> sol = sj.theory.recover_stripe_bp(op, Y, 0.01, max_iter=2000, tol=1e-8)
      >>> int(jnp.argmax(jnp.abs(sol.codes[0, 0]))), bool(sol.converged[0])
      (4, True)
    """
    max_iter = check_iteration(max_iter, tol)
    Y = jnp.asarray(Y, conv_op.dtype)
    lam = jnp.broadcast_to(jnp.asarray(lam, conv_op.dtype), Y.shape[:1])
    return _stripe_fista(conv_op, Y, lam, max_iter, jnp.asarray(tol, conv_op.dtype))


@partial(jax.jit, static_argnums=(2,))
def _stripe_omp(D, Y, k, tol):
    return jax.vmap(lambda y: omp(D, y, k=k, tol=tol))(Y)


def recover_stripe_omp(conv_op, Y, k: int, tol: float = 0.0, *, batch: bool = False):
    """OMP on the explicit circulant dictionary ``conv_op.to_dense()`` (small 1-D periodic problems):
    at most ``k`` atoms per signal, stop when ||r||_2 <= tol (or on an exact fit).

    Default: ``sparsejax.pursuit.omp.omp`` under ``jax.vmap``, which tracks the residual itself, so a noiseless
    signal stops exactly after ||G||_0 atoms. ``batch=True`` uses Batch-OMP (``omp_batch``), whose residual
    comes from the energy update ||y||^2 - ||z||^2 (accurate only to ~sqrt(eps) ||y||): with ``k`` above
    ||G||_0 and ``tol`` below ~1e-7 ||y|| it can keep adding atoms with ~1e-16 coefficients after the exact fit.

    Returns codes (B, M, N) and the ``Solution``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> op = sj.Conv(sj.normalize_filters(jnp.ones((1, 1, 3))), (1, 16), boundary="circular")
      >>> G = jnp.zeros((1, 16)).at[0, 4].set(2.0).at[0, 11].set(-1.0)
      >>> codes, sol = sj.theory.recover_stripe_omp(op, op.apply(G)[None], 2)
      >>> bool(jnp.allclose(codes[0], G, atol=1e-5))
      True
    """
    D = conv_op.to_dense()
    Y = jnp.asarray(Y, conv_op.dtype)
    B = Y.shape[0]
    if batch:
        sol = omp_batch(D, Y.reshape(B, -1), k=int(k), tol=float(tol))
    else:
        sol = _stripe_omp(D, Y.reshape(B, -1), int(k), jnp.asarray(tol, conv_op.dtype))
    return sol.codes.reshape((B,) + tuple(conv_op.code_shape)), sol
