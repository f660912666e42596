"""Executable bounds of sparse coding with a dense dictionary (T1 rates, T2 stability) and a signal generator that
meets their conditions. (T1 ... T9 number the theorems across ``sparsejax.theory``: T1-T2 here, T3-T4 in
``sparsejax.theory.conv``, T5-T9 in ``sparsejax.theory.multilayer``.)

Every bound is a plain function of the quantities it names (``mu``, ``k``, ``eps`` ...); it works on
Python scalars and on arrays (broadcasting, jit/vmap friendly). Where a bound's condition fails the bound
is returned as ``inf`` (the theorem then says nothing).

T1  (Beck & Teboulle, SIAM J. Imaging Sci. 2(1), 2009, Thm 3.1 and Thm 4.4), step 1/L, L >= ||D||_2^2:
      ISTA :  F(a_k) - F* <= L ||a_0 - a*||^2 / (2k)
      FISTA:  F(a_k) - F* <= 2 L ||a_0 - a*||^2 / (k + 1)^2
T2  (Donoho, Elad & Temlyakov, IEEE Trans. IT 52(1), 2006, Thm 3.1 and Thm 5.1), y = D a + v, ||v|| <= eps,
      ||a||_0 = k, mu = mu(D):
      BP  (min ||x||_1 s.t. ||D x - y|| <= delta, delta >= eps): if k < (1 + 1/mu)/4 then
            ||a^ - a||^2 <= (eps + delta)^2 / (1 - mu (4k - 1))
      OMP (stop when ||r|| <= eps): if k < (1 + 1/mu)/2 - eps / (mu |a|_min) then supp(a^) = supp(a) and
            ||a^ - a||^2 <= eps^2 / (1 - mu (k - 1))
Uniqueness (Donoho & Elad, PNAS 2003; Gribonval & Nielsen 2003): spark(D) >= 1 + 1/mu, so a k-sparse
representation with k < (1 + 1/mu)/2 is the unique sparsest one; OMP and BP find it in the noiseless case
(Tropp, IEEE Trans. IT 50(10), 2004, "Greed is good", Thm A and Cor 3.6).
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax._validate import (as_float_array, check_choice, check_dictionary, check_finite, check_nonnegative,
                                 check_positive_int, check_shape, check_tol)
from sparsejax.pursuit.admm import bpdn_constrained_admm
from sparsejax.pursuit.ista import fista
from sparsejax.pursuit.omp import omp_batch
from sparsejax.theory._counting import largest_k_below

__all__ = [
    "ista_rate_bound",
    "fista_rate_bound",
    "uniqueness_condition",
    "bp_stability_condition",
    "bp_stability_bound",
    "omp_exact_support_condition",
    "omp_error_bound",
    "max_sparsity_unique",
    "max_sparsity_bp",
    "max_sparsity_omp",
    "identity_hadamard",
    "sparse_signals",
]


# --------------------------------------------------------------------------- T1: rates
def ista_rate_bound(L, dist0_sq, k):
    """ISTA rate (Beck & Teboulle 2009, Thm 3.1): F(a_k) - F* <= L ||a_0 - a*||^2 / (2k), k >= 1.

    Args:
      L: the Lipschitz constant used for the step 1/L (any L >= ||D||_2^2).
      dist0_sq: ||a_0 - a*||^2 for a minimiser a*.
      k: iteration count(s), >= 1 (array allowed).

    Returns:
      The bound on F(a_k) - F*.

    Example:
      >>> import sparsejax as sj
      >>> float(sj.theory.ista_rate_bound(2.0, 3.0, 4))
      0.75
    """
    k = jnp.asarray(k)
    return jnp.asarray(L) * jnp.asarray(dist0_sq) / (2.0 * k)


def fista_rate_bound(L, dist0_sq, k):
    """FISTA rate (Beck & Teboulle 2009, Thm 4.4): F(x_k) - F* <= 2 L ||a_0 - a*||^2 / (k + 1)^2, k >= 1.

    Args and returns as in ``ista_rate_bound``.

    Example:
      >>> import sparsejax as sj
      >>> float(sj.theory.fista_rate_bound(2.0, 3.0, 3))
      0.75
    """
    k = jnp.asarray(k)
    return 2.0 * jnp.asarray(L) * jnp.asarray(dist0_sq) / (k + 1.0) ** 2


# --------------------------------------------------------------------------- T2: stability
def _threshold_unique(mu):
    return 0.5 * (1.0 + 1.0 / jnp.asarray(mu))


def uniqueness_condition(mu, k):
    """k < (1 + 1/mu)/2: the k-sparse representation is the unique sparsest one (spark(D) >= 1 + 1/mu,
    Donoho & Elad 2003); noiseless OMP and BP recover it (Tropp 2004).

    Args:
      mu: the mutual coherence of D. k: the number of nonzeros (arrays broadcast).

    Returns:
      Boolean (array).

    Example:
      >>> import sparsejax as sj
      >>> bool(sj.theory.uniqueness_condition(0.125, 4)), bool(sj.theory.uniqueness_condition(0.125, 5))
      (True, False)
    """
    return jnp.asarray(k) < _threshold_unique(mu)


def bp_stability_condition(mu, k):
    """k < (1 + 1/mu)/4 (Donoho, Elad & Temlyakov 2006, Thm 3.1): the condition of ``bp_stability_bound``.

    Example:
      >>> import sparsejax as sj
      >>> bool(sj.theory.bp_stability_condition(0.125, 2)), bool(sj.theory.bp_stability_condition(0.125, 3))
      (True, False)
    """
    return jnp.asarray(k) < 0.25 * (1.0 + 1.0 / jnp.asarray(mu))


def bp_stability_bound(mu, k, eps, delta=None):
    """||a^_BP - a||^2 <= (eps + delta)^2 / (1 - mu (4k - 1)) (Donoho, Elad & Temlyakov 2006, Thm 3.1).

    a^_BP solves min ||x||_1 s.t. ||D x - y||_2 <= delta with delta >= eps = ||v||_2 bound
    (``delta=None`` means delta = eps: 4 eps^2 / (1 - mu(4k - 1))). ``inf`` where k >= (1 + 1/mu)/4.

    Args:
      mu: coherence. k: nonzeros. eps: noise level ||v||_2. delta: the solver's tolerance (>= eps).

    Returns:
      The bound on ||a^_BP - a||_2^2 (``inf`` where the condition fails).

    Example:
      >>> import sparsejax as sj
      >>> round(float(sj.theory.bp_stability_bound(0.0625, 4, 0.1)), 6)
      0.64
    """
    mu = jnp.asarray(mu)
    k = jnp.asarray(k)
    eps = jnp.asarray(eps)
    delta = eps if delta is None else jnp.asarray(delta)
    den = 1.0 - mu * (4.0 * k - 1.0)
    ok = bp_stability_condition(mu, k)
    return jnp.where(ok, (eps + delta) ** 2 / jnp.where(ok, den, 1.0), jnp.inf)


def omp_exact_support_condition(mu, k, eps, amin):
    """k < (1 + 1/mu)/2 - eps / (mu |a_min|) (Donoho, Elad & Temlyakov 2006, Thm 5.1).

    ``amin`` is the smallest nonzero magnitude of the true representation. With eps = 0 this is Tropp's
    (2004) exact recovery condition in its coherence form.

    Example:
      >>> import sparsejax as sj
      >>> bool(sj.theory.omp_exact_support_condition(0.125, 3, 0.1, 1.0))
      True
    """
    mu = jnp.asarray(mu)
    return jnp.asarray(k) < _threshold_unique(mu) - jnp.asarray(eps) / (mu * jnp.asarray(amin))


def omp_error_bound(mu, k, eps):
    """||a^_OMP - a||^2 <= eps^2 / (1 - mu (k - 1)) once the support is exact (Donoho, Elad & Temlyakov
    2006, Thm 5.1): least squares on the true support S gives a^_S - a_S = D_S^+ v and
    sigma_min(D_S)^2 >= 1 - mu (k - 1) (Gershgorin). ``inf`` where 1 - mu(k - 1) <= 0.

    Example:
      >>> import sparsejax as sj
      >>> round(float(sj.theory.omp_error_bound(0.0625, 3, 0.2)), 6)
      0.045714
    """
    mu = jnp.asarray(mu)
    k = jnp.asarray(k)
    den = 1.0 - mu * (k - 1.0)
    ok = den > 0
    return jnp.where(ok, jnp.asarray(eps) ** 2 / jnp.where(ok, den, 1.0), jnp.inf)




def max_sparsity_unique(mu) -> int:
    """Largest k with k < (1 + 1/mu)/2 (uniqueness / noiseless OMP and BP).

    Example:
      >>> import sparsejax as sj
      >>> sj.theory.max_sparsity_unique(0.125)
      4
    """
    return largest_k_below(0.5 * (1.0 + 1.0 / float(mu)))


def max_sparsity_bp(mu) -> int:
    """Largest k with k < (1 + 1/mu)/4 (T2, BP).

    Example:
      >>> import sparsejax as sj
      >>> sj.theory.max_sparsity_bp(0.125)
      2
    """
    return largest_k_below(0.25 * (1.0 + 1.0 / float(mu)))


def max_sparsity_omp(mu, eps=0.0, amin=1.0) -> int:
    """Largest k with k < (1 + 1/mu)/2 - eps/(mu amin) (T2, OMP); 0 when none.

    Example:
      >>> import sparsejax as sj
      >>> sj.theory.max_sparsity_omp(0.125, eps=0.25, amin=1.0)
      2
    """
    mu = float(mu)
    return largest_k_below(0.5 * (1.0 + 1.0 / mu) - float(eps) / (mu * float(amin)))


# --------------------------------------------------------------------------- test data
def identity_hadamard(n: int, dtype=jnp.float32) -> jax.Array:
    """[I, H/sqrt(n)] (n x 2n), H the Sylvester-Hadamard matrix: the two-ortho dictionary with the
    smallest possible coherence mu = 1/sqrt(n) (Donoho & Huo, "Uncertainty principles and ideal atomic
    decomposition", IEEE Trans. IT 2001). ``n`` must be a power of two.

    Example:
      >>> import sparsejax as sj
      >>> D = sj.theory.identity_hadamard(16)
      >>> D.shape, round(float(sj.mutual_coherence(D)), 6)
      ((16, 32), 0.25)
    """
    n = check_positive_int("n", n)
    if n & (n - 1):
        raise ValueError(f"n must be a power of two for a Sylvester-Hadamard matrix, got {n}")
    H = np.ones((1, 1))
    while H.shape[0] < n:
        H = np.block([[H, H], [H, -H]])
    return jnp.asarray(np.hstack([np.eye(n), H / math.sqrt(n)]), dtype=dtype)


def sparse_signals(key, D, k, n_signals: int, amplitude: float = 2.0, noise_eps: float = 0.0,
                   min_abs: float = 1.0, exact_noise: bool = True):
    """Draw noisy k-sparse signals Y = A D^T + V (one signal per row).

    Each code has a uniformly random support of size ``k`` (``k`` may be traced: the support is
    the k smallest of m uniform ranks), random signs and magnitudes uniform in [min_abs, amplitude]
    (so |a|_min >= min_abs, as T2 needs). Each noise row is Gaussian in direction with
    ||v||_2 = noise_eps exactly (``exact_noise=True``) or uniform in the ball ||v||_2 <= noise_eps.

    Args:
      key: jax.random key.
      D: (n, m) dictionary (array or ``Dense``); its dtype sets the output dtype.
      k: nonzeros per code, 0 <= k <= m.
      n_signals: number of signals B.
      amplitude, min_abs: magnitude range, 0 <= min_abs <= amplitude.
      noise_eps, exact_noise: noise level and whether the norm is exactly eps or at most eps.

    Returns:
      (Y, A, V): signals (B, n), codes (B, m), noise (B, n), Y = A @ D.T + V.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = sj.theory.identity_hadamard(8)
      >>> Y, A, V = sj.theory.sparse_signals(jax.random.PRNGKey(0), D, 3, 4, noise_eps=0.1)
      >>> Y.shape, jnp.sum(A != 0, axis=1).tolist(), [round(float(v), 4) for v in jnp.linalg.norm(V, axis=1)]
      ((4, 8), [3, 3, 3, 3], [0.1, 0.1, 0.1, 0.1])
    """
    D = check_dictionary("D", D)
    n, m = D.shape
    n_signals = check_positive_int("n_signals", n_signals)
    if isinstance(k, (int, np.integer)) and not 0 <= int(k) <= m:
        raise ValueError(f"k must be in [0, {m}], got {k}")
    if not 0 <= min_abs <= amplitude:
        raise ValueError(f"need 0 <= min_abs <= amplitude, got min_abs={min_abs}, amplitude={amplitude}")
    check_nonnegative("noise_eps", noise_eps)
    dtype = D.dtype
    k_sup, k_sgn, k_mag, k_dir, k_rad = jax.random.split(key, 5)
    u = jax.random.uniform(k_sup, (n_signals, m))
    ranks = jnp.argsort(jnp.argsort(u, axis=1), axis=1)
    support = ranks < k
    signs = jnp.where(jax.random.bernoulli(k_sgn, 0.5, (n_signals, m)), 1.0, -1.0)
    mags = jax.random.uniform(k_mag, (n_signals, m), minval=min_abs, maxval=amplitude)
    A = jnp.where(support, signs * mags, 0.0).astype(dtype)
    g = jax.random.normal(k_dir, (n_signals, n), dtype=dtype)
    g = g / jnp.linalg.norm(g, axis=1, keepdims=True)
    if exact_noise:
        radius = jnp.full((n_signals, 1), noise_eps, dtype)
    else:
        radius = noise_eps * jax.random.uniform(k_rad, (n_signals, 1), dtype=dtype) ** (1.0 / n)
    V = g * radius
    Y = A @ D.T + V
    return Y, A, V


# --------------------------------------------------------------------------- solvers for the checks
@partial(jax.jit, static_argnums=(0, 4, 5))
def _admm_batch(solver, D, Y, eps, max_iter, tol):
    return jax.vmap(lambda y: solver(D, y, eps, max_iter=max_iter, tol=tol).codes)(Y)


@partial(jax.jit, static_argnums=(3, 4))
def _fista_batch(D, Y, lam, max_iter, tol):
    return jax.vmap(lambda y, l: fista(D, y, l, max_iter=max_iter, tol=tol, restart=True).codes)(Y, lam)


def recover_omp(D, Y, kmax: int, tol: float):
    """OMP codes (B, m) for signals Y (B, n), at most ``kmax`` atoms, stopping rule ||r|| <= tol.

    Uses ``sparsejax.pursuit.omp.omp_batch``. Returns ``(codes, solver_name)``.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = sj.theory.identity_hadamard(8)
      >>> Y, A, _ = sj.theory.sparse_signals(jax.random.PRNGKey(0), D, 2, 3)
      >>> codes, _ = sj.theory.dense.recover_omp(D, Y, 2, 1e-6)
      >>> bool(jnp.allclose(codes, A, atol=1e-4))
      True
    """
    D, Y = _check_recovery(D, Y)
    kmax = check_positive_int("kmax", kmax, D.shape[1], "number of atoms")
    return omp_batch(D, Y, k=kmax, tol=float(check_tol(tol))).codes, "sparsejax.pursuit.omp.omp_batch"


def _check_recovery(D, Y):
    """(D, Y) of a recovery check: a non-empty finite dictionary, finite signals (B, n) cast to D's dtype."""
    D = check_dictionary("D", D)
    Y = as_float_array("Y", Y)
    check_shape("Y", Y, (None, D.shape[0]), "a batch of signals, one per row: (B, n)")
    check_finite("Y", Y)
    return D, Y.astype(D.dtype)


def recover_bp(D, Y, eps: float, *, method: str = "lasso", max_iter: int | None = None,
               tol: float | None = None):
    """Noisy basis pursuit min ||x||_1 s.t. ||D x - y|| <= delta, delta >= eps, for each row of Y.

    method="lasso" (default): FISTA (restarted) on the Lagrangian form with lam = max(eps, 1e-3||D^T y||_inf).
      The Lasso minimiser a^ solves the constrained problem with delta = ||D a^ - y|| exactly, and
      delta >= lam >= eps because |d_j^T r| = lam on the support with ||d_j|| = 1; so T2 applies with that
      delta. Fast and solved to high accuracy (default max_iter 3000, tol 1e-10).
    method="admm": ``sparsejax.pursuit.admm.bpdn_constrained_admm`` with delta = eps (default max_iter 500,
      tol 1e-7). ADMM meets the constraint only asymptotically; the effective delta reported is
      max(eps, ||D a^ - y||).

    Either way the T2 proof needs only ||a^||_1 <= ||a||_1 and ||D a^ - y|| <= delta, so a check is
    rigorous for an inexact solution once both are verified with the returned delta.

    Returns ``(codes (B, m), delta (B,), solver_name)``.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = sj.theory.identity_hadamard(16)                  # mu = 1/4: T2 holds for k = 1
      >>> Y, A, _ = sj.theory.sparse_signals(jax.random.PRNGKey(0), D, 1, 3, noise_eps=0.01)
      >>> codes, delta, _ = sj.theory.dense.recover_bp(D, Y, 0.01)
      >>> bound = sj.theory.bp_stability_bound(0.25, 1, 0.01, delta)
      >>> bool(jnp.all(jnp.isfinite(bound))), bool(jnp.all(jnp.sum((codes - A) ** 2, axis=1) <= bound))
      (True, True)
    """
    check_choice("method", method, ("lasso", "admm"))
    D, Y = _check_recovery(D, Y)
    check_nonnegative("eps", as_float_array("eps", eps))
    if tol is not None:
        check_tol(tol)
    if method == "admm":
        codes = _admm_batch(bpdn_constrained_admm, D, Y, jnp.asarray(eps, D.dtype), max_iter or 500, tol or 1e-7)
        name = "sparsejax.pursuit.admm.bpdn_constrained_admm (delta = max(eps, residual))"
        delta = jnp.maximum(jnp.linalg.norm(codes @ D.T - Y, axis=1), eps)
    else:
        lam = jnp.maximum(eps, 1e-3 * jnp.max(jnp.abs(Y @ D), axis=1))
        codes = _fista_batch(D, Y, lam, max_iter or 3000, tol or 1e-10)
        name = "sparsejax.fista on the Lasso, lam >= eps (delta = its residual)"
        delta = jnp.linalg.norm(codes @ D.T - Y, axis=1)
    return codes, delta, name
