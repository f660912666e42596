"""Holistic and projection pursuit for the two-layer dense model, and the oracle estimators of T8
(REFERENCE A9, T8; Aberdam, Sulam & Elad, "Multi-layer sparse coding: the holistic way", SIMODS 2019).

Model: y = D_1 G_1 + v, G_1 = D_2 G_2, G_2 sparse (support S, |S| = s_2), G_1 zero on a cosupport C (|C| = l_1).

Subspace BPDN (the synthesis step), K an (m, r) matrix with orthonormal columns, A = D_1 D_2:

    min_{x, g} 1/2||y - A K x||^2 + lam||g||_1   s.t.  K x = g

ADMM (scaled dual u; B = A K; K^T K = I):

    x <- (B^T B + rho I)^{-1} (B^T y + rho K^T (g - u))
    g <- S_{lam/rho}(K x + u)
    u <- u + K x - g

stopping measure max(||Kx - g|| / max(||Kx||, ||g||), rho||K^T(g - g_old)|| / max(rho||K^T u||, ||B^T y||))
(primal and dual residuals of Boyd et al. 2011, sec. 3.3; the dual one relative to the larger of the l1 term's
and the data term's gradient scale, so that a small lam does not leave it at the float32 rounding floor). K = I is BPDN on D_1 D_2: the projection pursuit (A7 for two layers). K may also carry
zero columns next to orthonormal ones (the masked, fixed-size bases used inside ``holistic_pursuit``): the
zero columns' coordinates of x stay 0 and the other coordinates solve the same problem.

Holistic pursuit (A9): K = I; for i = 1..l_1: synthesis (subspace BPDN with the current K), analysis
(G_1 = D_2 G_2; add to the cosupport the not-yet-chosen j with the smallest |G_1[j]|; K = orthonormal basis
of null(D_2[cosupport, :]), from one SVD with static size m_2 whose first i right singular vectors are masked
out); a final synthesis step with the last K. Every round is warm-started from the previous one.

T8 oracles (white noise N(0, sigma^2 I), known supports): least squares on the support,

    projection:  G_2[S] = (D_S^T D_S)^{-1} D_S^T y,              E||G_2^ - G_2||^2 = sigma^2 tr((D_S^T D_S)^{-1})
    holistic:    G_2[S] = N (N^T D_S^T D_S N)^{-1} N^T D_S^T y,   E||G_2^ - G_2||^2 = sigma^2 tr((N^T D_S^T D_S N)^{-1})

with D_S = (D_1 D_2)[:, S] and N an orthonormal basis of null(D_2[C, S]) (dimension s_2 - l_1). Since
(N^T M N)^{-1} <= N^T M^{-1} N for M > 0 (Schur complement), the holistic trace never exceeds the projection one.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.multilayer.signals import null_space
from sparsejax.operators import Dense, shifted_normal_solver
from sparsejax.solve import Solution, Solver, iterate

__all__ = ["SubspaceState", "HolisticResult", "subspace_bpdn", "subspace_bpdn_solver", "projection_pursuit_dense",
           "holistic_pursuit", "projection_oracle", "holistic_oracle", "projection_oracle_mse",
           "holistic_oracle_mse"]


def _norm(v):
    return jnp.sqrt(jnp.sum(v * v))


# ----------------------------------------------------------------------------------------------------
# subspace BPDN (ADMM)
# ----------------------------------------------------------------------------------------------------
class SubspaceState(NamedTuple):
    x: jax.Array            # subspace coordinates (r,)
    g: jax.Array            # sparse codes (m,) -- the returned codes
    u: jax.Array            # scaled dual (m,)
    primal_res: jax.Array   # ||K x - g||
    dual_res: jax.Array     # rho ||K^T (g - g_old)||


def subspace_bpdn_solver(A, K, y, lam, rho, x0, g0, u0, nonneg: bool = False) -> Solver:
    """The (init, step) pair of the subspace-BPDN ADMM (module docstring); A (n, m), K (m, r) arrays.

    The objective reported is 1/2||y - A g||^2 + sum(lam |g|) at the sparse variable g."""
    prox = shrink.nonneg_soft if nonneg else shrink.soft
    dtype = y.dtype
    tiny = jnp.finfo(dtype).tiny
    B = A @ K
    solve = shifted_normal_solver(Dense(B), rho, 1)          # (B^T B + rho I)^{-1}, one Cholesky factor
    Bty = B.T @ y
    Bty_norm = _norm(Bty)
    inf = jnp.asarray(jnp.inf, dtype)

    def step(s):
        x = solve(Bty + rho * (K.T @ (s.g - s.u)), s.x)
        Kx = K @ x
        g = prox(Kx + s.u, lam / rho)
        u = s.u + Kx - g
        return SubspaceState(x, g, u, _norm(Kx - g), rho * _norm(K.T @ (g - s.g)))

    def error(old, new):
        rel_p = new.primal_res / jnp.maximum(jnp.maximum(_norm(K @ new.x), _norm(new.g)), tiny)
        rel_d = new.dual_res / jnp.maximum(jnp.maximum(rho * _norm(K.T @ new.u), Bty_norm), tiny)
        return jnp.maximum(rel_p, rel_d)

    def objective(s):
        r = A @ s.g - y
        return 0.5 * jnp.sum(r * r) + jnp.sum(lam * jnp.abs(s.g))

    return Solver(init=lambda: SubspaceState(x0, g0, u0, inf, inf), step=step, codes=lambda s: s.g,
                  error=error, objective=objective)


def _atoms(name, D):
    D = V.as_float_array(name, D.atoms if isinstance(D, Dense) else D)
    V.check_ndim(name, D, (2,), "a dense dictionary (rows x atoms)")
    V.check_finite(name, D)
    return D


def _check_iter(max_iter, tol, mode, rho):
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative Python int, got {max_iter!r}")
    V.check_nonnegative("tol", tol)
    V.check_choice("mode", mode, ("while", "scan"))
    V.as_float_array("rho", rho)
    if jnp.ndim(rho) != 0:
        raise ValueError(f"rho must be a scalar, got shape {tuple(jnp.shape(rho))}")
    V.check_nonnegative("rho", rho, strict=True)


def _check_y_lam(y, lam, n):
    y = V.as_float_array("y", y)
    V.check_shape("y", y, (n,), "one signal of the dictionary's dimension; batch with jax.vmap")
    V.check_finite("y", y)
    lam = V.as_float_array("lam", lam)
    if lam.ndim != 0:
        raise ValueError(f"lam must be a scalar, got shape {tuple(lam.shape)}")
    V.check_nonnegative("lam", lam)
    return y, lam


@partial(jax.jit, static_argnames=("max_iter", "mode", "nonneg"))
def _subspace_bpdn(A, K, y, lam, rho, x0, tol, *, max_iter, mode, nonneg):
    g0 = K @ x0
    solver = subspace_bpdn_solver(A, K, y, lam, rho, x0, g0, jnp.zeros_like(g0), nonneg)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode)


def subspace_bpdn(D, K, y, lam, *, rho=1.0, x0=None, max_iter: int = 2000, tol=1e-6, mode: str = "while",
                  nonneg: bool = False) -> Solution:
    """ADMM for min_x 1/2||y - D K x||^2 + lam||g||_1 s.t. K x = g (the synthesis step of A9).

    Args:
      D: (n, m) dictionary (array or ``Dense``), e.g. the effective dictionary D_1 D_2.
      K: (m, r) with orthonormal columns (a basis of the subspace G_2 is confined to), or None for K = I
        (plain BPDN on D: the projection pursuit).
      y: (n,) signal (batch with ``jax.vmap``).
      lam: scalar l1 weight >= 0 (traced).
      rho: ADMM penalty > 0 (traced).
      x0: (r,) warm start of the subspace coordinates (g starts at K x0, u at 0); default 0.
      max_iter, tol, mode: see ``sparsejax.solve.iterate``; stop when the larger relative residual <= tol.
      nonneg: constrain g >= 0.

    Returns:
      ``Solution``: codes = g (exactly sparse), objective = 1/2||y - D g||^2 + lam||g||_1, ``state`` a
      ``SubspaceState`` (x, g, u, primal_res, dual_res), ``converged`` / ``diverged`` / ``error`` as in
      ``iterate``.

    Reference: Aberdam, Sulam & Elad, SIMODS 2019; Boyd et al., Found. Trends ML 2011 (ADMM).
    """
    A = _atoms("D", D)
    n, m = A.shape
    if K is None:
        K = jnp.eye(m, dtype=A.dtype)
    K = _atoms("K", K)
    if K.shape[0] != m:
        raise ValueError(f"K must have m = {m} rows (one per atom of D), got shape {tuple(K.shape)}")
    if V.is_concrete(K):
        gram_err = float(jnp.max(jnp.abs(K.T @ K - jnp.eye(K.shape[1], dtype=K.dtype))))
        if gram_err > 1e-3:
            raise ValueError(f"K must have orthonormal columns (K^T K = I), got max |K^T K - I| = {gram_err:.3g}")
    y, lam = _check_y_lam(y, lam, n)
    _check_iter(max_iter, tol, mode, rho)
    dtype = jnp.result_type(A.dtype, K.dtype, y.dtype)
    r = K.shape[1]
    if x0 is None:
        x0 = jnp.zeros((r,), dtype)
    else:
        x0 = V.as_float_array("x0", x0)
        V.check_shape("x0", x0, (r,), "the subspace dimension K.shape[1]")
    return _subspace_bpdn(A.astype(dtype), K.astype(dtype), y.astype(dtype), lam.astype(dtype),
                          jnp.asarray(rho, dtype), x0.astype(dtype), jnp.asarray(tol, dtype),
                          max_iter=max_iter, mode=mode, nonneg=nonneg)


def projection_pursuit_dense(D1, D2, y, lam, *, rho=1.0, max_iter: int = 2000, tol=1e-6, mode: str = "while",
                             nonneg: bool = False) -> Solution:
    """Projection pursuit of the two-layer dense model: BPDN on the effective dictionary D_1 D_2 by the
    subspace-BPDN ADMM with K = I; returns the ``Solution`` for G_2 (G_1 = D_2 G_2).

    Args: as in ``subspace_bpdn`` with D_1 (n, m_1) and D_2 (m_1, m_2).
    """
    A1, A2 = _pair(D1, D2)
    return subspace_bpdn(A1 @ A2, None, y, lam, rho=rho, max_iter=max_iter, tol=tol, mode=mode, nonneg=nonneg)


# ----------------------------------------------------------------------------------------------------
# holistic pursuit (A9)
# ----------------------------------------------------------------------------------------------------
class HolisticResult(NamedTuple):
    """Result of ``holistic_pursuit``.

    G2: (m_2,) final codes; G1: D_2 G2 (m_1,); cosupport1: (rounds,) int32, the chosen indices in the
    order chosen (-1 for rounds beyond l_1 when padded); the per-round arrays (length rounds + 1, the
    last entry the final solve): num_steps, converged, diverged, error, objective; solution: the final
    ``Solution``."""

    G2: jax.Array
    G1: jax.Array
    cosupport1: jax.Array
    num_steps: jax.Array
    converged: jax.Array
    diverged: jax.Array
    error: jax.Array
    objective: jax.Array
    solution: Solution


def _pair(D1, D2):
    A1 = _atoms("D1", D1)
    A2 = _atoms("D2", D2)
    if A2.shape[0] != A1.shape[1]:
        raise ValueError(f"D2 must have m_1 = {A1.shape[1]} rows (one per atom of D1), got shape {tuple(A2.shape)}")
    dtype = jnp.result_type(A1.dtype, A2.dtype)
    return A1.astype(dtype), A2.astype(dtype)


def _masked_basis(D2, chosen, count):
    """(m_2, m_2) matrix whose columns >= count are an orthonormal basis of null(D_2[chosen[:count], :])
    and the first ``count`` columns are zero (``chosen`` has static length; entries >= count ignored)."""
    m2 = D2.shape[1]
    live = jnp.arange(chosen.shape[0]) < count
    rows = jnp.where(live[:, None], D2[jnp.maximum(chosen, 0)], jnp.zeros((), D2.dtype))
    if chosen.shape[0] == 0:
        return jnp.eye(m2, dtype=D2.dtype)
    _, _, vh = jnp.linalg.svd(rows, full_matrices=True)
    keep = jnp.arange(m2) >= count
    return jnp.where(keep[None, :], vh.T, jnp.zeros((), D2.dtype))


@partial(jax.jit, static_argnames=("rounds", "max_iter", "mode", "nonneg"))
def _holistic(D1, D2, y, lam, rho, tol, l1, *, rounds, max_iter, mode, nonneg):
    A = D1 @ D2
    m1, m2 = D2.shape
    dtype = y.dtype

    def synth(K, g, u):
        solver = subspace_bpdn_solver(A, K, y, lam, rho, K.T @ g, g, u, nonneg)
        return iterate(solver, max_iter=max_iter, tol=tol, mode=mode)

    def stats(sol):
        return (sol.num_steps, sol.converged, sol.diverged, sol.error, sol.objective)

    def body(carry, i):
        chosen, taken, g, u, K = carry
        sol = synth(K, g, u)
        G1 = D2 @ sol.codes
        j = jnp.argmin(jnp.where(taken, jnp.inf, jnp.abs(G1))).astype(jnp.int32)
        active = i < l1
        chosen = chosen.at[i].set(jnp.where(active, j, -1))
        taken = taken.at[j].set(taken[j] | active)
        K = _masked_basis(D2, chosen, jnp.minimum(i + 1, l1))
        return (chosen, taken, sol.codes, sol.state.u, K), stats(sol)

    init = (jnp.full((rounds,), -1, jnp.int32), jnp.zeros((m1,), bool), jnp.zeros((m2,), dtype),
            jnp.zeros((m2,), dtype), jnp.eye(m2, dtype=dtype))
    if rounds:
        (chosen, _, g, u, K), per = lax.scan(body, init, jnp.arange(rounds))
    else:                                   # l1 = 0: the projection pursuit
        chosen, _, g, u, K = init
        per = None
    sol = synth(K, g, u)
    last = stats(sol)
    per = tuple(s[None] for s in last) if per is None else tuple(
        jnp.concatenate([p, s[None]]) for p, s in zip(per, last))
    return HolisticResult(sol.codes, D2 @ sol.codes, chosen, *per, sol)


def holistic_pursuit(D1, D2, y, lam, l1, *, rho=1.0, max_iter: int = 1000, tol=1e-6, mode: str = "while",
                     nonneg: bool = False, rounds: int | None = None) -> HolisticResult:
    """Holistic pursuit for the two-layer dense model (REFERENCE A9): l_1 synthesis/analysis rounds that
    grow the cosupport of G_1 one index at a time, then a final synthesis step (module docstring).

    Args:
      D1: (n, m_1), D2: (m_1, m_2) dictionaries (arrays or ``Dense``).
      y: (n,) signal (batch with ``jax.vmap``).
      lam: scalar l1 weight >= 0 on G_2 (traced).
      l1: cocardinality of G_1 (number of rounds). A Python int (static), or, when ``rounds`` is given, an
        int that may be traced (0 <= l1 <= rounds), so that every l1 shares one compilation.
      rho: ADMM penalty (traced). max_iter, tol, mode: per synthesis step (``sparsejax.solve.iterate``).
      nonneg: constrain G_2 >= 0.
      rounds: static number of rounds to compile (>= l1; rounds past l1 leave K unchanged and cost a
        warm-started re-solve). Default l1.

    Returns:
      ``HolisticResult`` (G2, G1 = D_2 G2, cosupport1, per-round num_steps / converged / diverged / error /
      objective, final solution). With l1 = 0 it is the projection pursuit.

    Reference: A. Aberdam, J. Sulam, M. Elad, "Multi-layer sparse coding: the holistic way", SIMODS 2019.
    """
    A1, A2 = _pair(D1, D2)
    n, m1 = A1.shape
    m2 = A2.shape[1]
    y, lam = _check_y_lam(y, lam, n)
    _check_iter(max_iter, tol, mode, rho)
    if rounds is None:
        if isinstance(l1, bool) or not isinstance(l1, int):
            raise TypeError(f"l1 must be a Python int (static number of rounds) unless rounds= is given, got {l1!r}")
        rounds = l1
    elif isinstance(rounds, bool) or not isinstance(rounds, int):
        raise TypeError(f"rounds must be a Python int, got {rounds!r}")
    if rounds < 0 or rounds > min(m1, m2 - 1):
        raise ValueError(f"the number of rounds (l1) must be in [0, min(m_1, m_2 - 1)] = [0, {min(m1, m2 - 1)}], "
                         f"got {rounds}")
    if V.is_concrete(l1):
        if not 0 <= int(l1) <= rounds:
            raise ValueError(f"l1 must be in [0, rounds = {rounds}], got {l1}")
    dtype = jnp.result_type(A1.dtype, y.dtype)
    return _holistic(A1.astype(dtype), A2.astype(dtype), y.astype(dtype), lam.astype(dtype),
                     jnp.asarray(rho, dtype), jnp.asarray(tol, dtype), jnp.asarray(l1, jnp.int32),
                     rounds=rounds, max_iter=max_iter, mode=mode, nonneg=nonneg)


# ----------------------------------------------------------------------------------------------------
# T8 oracles
# ----------------------------------------------------------------------------------------------------
def _check_support(name, idx, size):
    idx = jnp.asarray(idx)
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer index array, got dtype {idx.dtype}")
    V.check_ndim(name, idx, (1,), "a list of indices")
    if V.is_concrete(idx) and idx.size and (int(jnp.min(idx)) < 0 or int(jnp.max(idx)) >= size):
        raise ValueError(f"{name} must hold indices in [0, {size}), got min {int(jnp.min(idx))}, max {int(jnp.max(idx))}")
    return idx


def _oracle_basis(D1, D2, support2, cosupport1):
    """(D_S, N): D_S = (D_1 D_2)[:, S], N orthonormal basis of null(D_2[C, S]) (identity when C is empty)."""
    A1, A2 = _pair(D1, D2)
    S = _check_support("support2", support2, A2.shape[1])
    DS = A1 @ A2[:, S]
    if cosupport1 is None:
        return DS, None
    C = _check_support("cosupport1", cosupport1, A2.shape[0])
    if C.shape[0] >= S.shape[0]:
        raise ValueError(f"cosupport1 must have fewer entries (l1 = {C.shape[0]}) than support2 (s2 = {S.shape[0]})")
    return DS, null_space(A2[C][:, S], S.shape[0] - C.shape[0])


def _inv_trace(B):
    cf = jax.scipy.linalg.cho_factor(B.T @ B, lower=True)
    return jnp.trace(jax.scipy.linalg.cho_solve(cf, jnp.eye(B.shape[1], dtype=B.dtype)))


def _ls(B, y):
    cf = jax.scipy.linalg.cho_factor(B.T @ B, lower=True)
    return jax.scipy.linalg.cho_solve(cf, B.T @ y)


def projection_oracle_mse(D1, D2, support2, sigma) -> jax.Array:
    """T8: E||G_2^ - G_2||^2 = sigma^2 tr((D_S^T D_S)^{-1}) of the projection oracle (least squares on the
    known support S of G_2 with D_S = (D_1 D_2)[:, S], white noise N(0, sigma^2 I)).

    Args: D1 (n, m_1), D2 (m_1, m_2); support2 (s_2,) int indices; sigma noise std (traced).
    Returns: scalar.
    """
    DS, _ = _oracle_basis(D1, D2, support2, None)
    return jnp.asarray(sigma, DS.dtype) ** 2 * _inv_trace(DS)


def holistic_oracle_mse(D1, D2, support2, cosupport1, sigma) -> jax.Array:
    """T8: E||G_2^ - G_2||^2 = sigma^2 tr((N^T D_S^T D_S N)^{-1}) of the holistic oracle, the least squares
    over the (s_2 - l_1)-dim subspace {G_2 supported on S, (D_2 G_2)[C] = 0} (N orthonormal basis of
    null(D_2[C, S])). Never larger than ``projection_oracle_mse``.

    Args: D1, D2, support2 as in ``projection_oracle_mse``; cosupport1 (l_1,) int indices of the zeros of G_1.
    Returns: scalar.
    """
    DS, N = _oracle_basis(D1, D2, support2, cosupport1)
    return jnp.asarray(sigma, DS.dtype) ** 2 * _inv_trace(DS @ N)


def projection_oracle(D1, D2, y, support2) -> jax.Array:
    """The projection oracle estimator: G_2^[S] = (D_S^T D_S)^{-1} D_S^T y, zero elsewhere. Returns (m_2,)."""
    DS, _ = _oracle_basis(D1, D2, support2, None)
    y = V.as_float_array("y", y)
    V.check_shape("y", y, (DS.shape[0],), "one signal")
    m2 = jnp.shape(D2.atoms if isinstance(D2, Dense) else D2)[1]
    return jnp.zeros((m2,), DS.dtype).at[jnp.asarray(support2)].set(_ls(DS, y.astype(DS.dtype)))


def holistic_oracle(D1, D2, y, support2, cosupport1) -> jax.Array:
    """The holistic oracle estimator: G_2^[S] = N (N^T D_S^T D_S N)^{-1} N^T D_S^T y (so (D_2 G_2^)[C] = 0),
    zero elsewhere. Returns (m_2,)."""
    DS, N = _oracle_basis(D1, D2, support2, cosupport1)
    y = V.as_float_array("y", y)
    V.check_shape("y", y, (DS.shape[0],), "one signal")
    m2 = jnp.shape(D2.atoms if isinstance(D2, Dense) else D2)[1]
    return jnp.zeros((m2,), DS.dtype).at[jnp.asarray(support2)].set(N @ _ls(DS @ N, y.astype(DS.dtype)))
