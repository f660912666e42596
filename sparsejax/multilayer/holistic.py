"""Holistic and projection pursuit for the two-layer dense model, and its oracle estimators (Aberdam, Sulam, Elad,
"Multi-layer sparse coding: the holistic way", SIAM J. Math. Data Sci. 1(1), 2019).

Model: y = D_1 G_1 + v, G_1 = D_2 G_2, G_2 sparse (support S, |S| = s_2), G_1 zero on a cosupport C (|C| = l_1).

Subspace BPDN (the synthesis step), K an (m, r) matrix with orthonormal columns, A = D_1 D_2:

    min_{x, g} 1/2||y - A K x||^2 + lam||g||_1   s.t.  K x = g

ADMM (scaled dual u; B = A K; K^T K = I):

    x <- (B^T B + rho I)^{-1} (B^T y + rho K^T (g - u))
    g <- S_{lam/rho}(K x + u)
    u <- u + K x - g

stopping measure max(||Kx - g|| / max(||Kx||, ||g||), rho||K^T(g - g_old)|| / max(rho||K^T u||, ||B^T y||))
(primal and dual residuals of Boyd, Parikh, Chu, Peleato, Eckstein, "Distributed optimization and statistical
learning via the alternating direction method of multipliers", Found. Trends Mach. Learn. 3(1), 2011, sec. 3.3;
the dual one relative to the larger of the l1 term's and the data term's gradient scale, so that a small lam does
not leave it at the float32 rounding floor). K = I is BPDN on D_1 D_2: the projection pursuit of the two-layer
model. K may also carry zero columns next to orthonormal ones (the masked, fixed-size bases used inside
``holistic_pursuit``): the zero columns' coordinates of x stay 0 and the other coordinates solve the same problem.

Holistic pursuit (the paper's pursuit algorithm): K = I; for i = 1..l_1: synthesis (subspace BPDN with the current K),
analysis (G_1 = D_2 G_2; add to the cosupport the not-yet-chosen j with the smallest |G_1[j]|; K = orthonormal
basis of null(D_2[cosupport, :]), from one SVD with static size m_2 whose first i right singular vectors are
masked out); a final synthesis step with the last K. Every round is warm-started from the previous one. Each
synthesis step runs through ``sparsejax.solve.iterate``; the result keeps every stage's flags
(``MLSolution.stages``).

Oracles (white noise N(0, sigma^2 I), known supports; the paper's oracle analysis): least squares on the support,

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
import numpy as np
from jax import lax

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.multilayer._checks import dense_atoms, dense_pair
from sparsejax.multilayer.result import MLSolution
from sparsejax.multilayer.signals import null_space
from sparsejax.operators import Dense, shifted_normal_solver
from sparsejax.solve import Solution, Solver, check_iteration, iterate

__all__ = ["SubspaceState", "HolisticState", "MLSolution", "HolisticResult", "subspace_bpdn", "subspace_bpdn_solver",
           "projection_pursuit_dense", "holistic_pursuit", "projection_oracle", "holistic_oracle",
           "projection_oracle_mse", "holistic_oracle_mse"]

HolisticResult = MLSolution   # deprecated alias: the result of holistic_pursuit


def _norm(v):
    return jnp.sqrt(jnp.sum(v * v))


# ----------------------------------------------------------------------------------------------------
# subspace BPDN (ADMM)
# ----------------------------------------------------------------------------------------------------
class SubspaceState(NamedTuple):
    """The state of the subspace-BPDN ADMM.

    Attributes:
      x: subspace coordinates (r,).
      g: the sparse codes (m,), the returned codes.
      u: the scaled dual (m,).
      primal_res: ||K x - g||.
      dual_res: rho ||K^T (g - g_old)||.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sol = sj.multilayer.subspace_bpdn(jnp.eye(3), None, jnp.array([2.0, 0.0, 0.0]), 1.0)
      >>> [round(float(v), 3) for v in sol.state.g], float(sol.state.primal_res) < 1e-5
      ([1.0, 0.0, 0.0], True)
    """

    x: jax.Array
    g: jax.Array
    u: jax.Array
    primal_res: jax.Array
    dual_res: jax.Array


def subspace_bpdn_solver(A, K, y, lam, rho, x0, g0, u0, prox="soft") -> Solver:
    """The ``Solver`` (init, step, ...) of the subspace-BPDN ADMM (module docstring); A (n, m), K (m, r) arrays,
    for ``sparsejax.solve.iterate``.

    Args:
      A: (n, m) dictionary (e.g. D_1 D_2). K: (m, r) orthonormal columns (zero columns allowed).
      y: (n,) signal. lam: l1 weight. rho: ADMM penalty > 0.
      x0, g0, u0: the starting subspace coordinates, codes and scaled dual.
      prox: "soft" (default) or "nonneg_soft" (g >= 0).

    Returns:
      The ``Solver``; its objective is 1/2||y - A g||^2 + sum(lam |g|) at the sparse variable g, its states
      ``SubspaceState`` s.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.multilayer.holistic import subspace_bpdn_solver
      >>> z = jnp.zeros(2)
      >>> solver = subspace_bpdn_solver(jnp.eye(2), jnp.eye(2), jnp.array([2.0, 0.5]), 1.0, 1.0, z, z, z)
      >>> sol = sj.solve.iterate(solver, max_iter=500, tol=1e-6)
      >>> [round(float(v), 3) for v in sol.codes], bool(sol.converged)
      ([1.0, 0.0], True)
    """
    P = shrink.get(prox, allowed=shrink.SIGN_PROXES)
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
        g = P(Kx + s.u, lam / rho)
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
    """A dense dictionary: 2-D, float32/64, non-empty, finite (``_validate.check_dictionary``)."""
    return V.check_dictionary(name, dense_atoms(name, D), "a dense dictionary (rows x atoms)")


def _pair(D1, D2):
    """``dense_pair`` with both dictionaries non-empty (``_validate.check_dictionary``)."""
    A1, A2 = dense_pair(D1, D2)
    return _atoms("D1", A1), _atoms("D2", A2)


def _check_solve_args(max_iter, tol, mode, rho, prox):
    check_iteration(max_iter, tol, mode)
    V.check_nonnegative_scalar("rho", rho, strict=True)
    shrink.get(prox, allowed=shrink.SIGN_PROXES)


def _check_y_lam(y, lam, n):
    y = V.as_float_array("y", y)
    V.check_shape("y", y, (n,), "one signal of the dictionary's dimension; batch with jax.vmap")
    V.check_finite("y", y)
    return y, V.nan_if_negative(V.check_nonnegative_scalar("lam", lam))


@partial(jax.jit, static_argnames=("max_iter", "mode", "prox"))
def _subspace_bpdn(A, K, y, lam, rho, x0, tol, *, max_iter, mode, prox):
    g0 = K @ x0
    solver = subspace_bpdn_solver(A, K, y, lam, rho, x0, g0, jnp.zeros_like(g0), prox)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode)


def subspace_bpdn(D, K, y, lam, *, rho=1.0, x0=None, max_iter: int = 2000, tol=1e-6, mode: str = "while",
                  prox="soft") -> Solution:
    """ADMM for min_x 1/2||y - D K x||^2 + lam||g||_1 s.t. K x = g: the synthesis step of holistic pursuit
    (Aberdam, Sulam, Elad, SIMODS 2019; ADMM as in Boyd et al., Found. Trends Mach. Learn. 2011).

    Args:
      D: (n, m) dictionary (array or ``Dense``), e.g. the effective dictionary D_1 D_2.
      K: (m, r) with orthonormal columns (a basis of the subspace G_2 is confined to), or None for K = I
        (plain BPDN on D: the projection pursuit).
      y: (n,) signal (batch with ``jax.vmap``).
      lam: scalar l1 weight >= 0 (traced).
      rho: ADMM penalty > 0 (traced).
      x0: (r,) warm start of the subspace coordinates (g starts at K x0, u at 0); default 0.
      max_iter, tol, mode: see ``sparsejax.solve.iterate``; stop when the larger relative residual <= tol.
      prox: "soft" (default) or "nonneg_soft" (g >= 0).

    Returns:
      ``Solution`` (one code vector): codes = g (exactly sparse), objective = 1/2||y - D g||^2 + lam||g||_1,
      ``state`` a ``SubspaceState`` (x, g, u, primal_res, dual_res), ``converged`` / ``diverged`` / ``error`` /
      ``status`` as in ``iterate``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> K = jnp.array([[1.0], [0.0], [0.0]])               # g confined to the first coordinate
      >>> sol = sj.multilayer.subspace_bpdn(jnp.eye(3), K, jnp.array([2.0, 3.0, 0.0]), 1.0)
      >>> [round(float(v), 3) for v in sol.codes], bool(sol.converged)
      ([1.0, 0.0, 0.0], True)
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
    _check_solve_args(max_iter, tol, mode, rho, prox)
    dtype = jnp.result_type(A.dtype, K.dtype, y.dtype)
    r = K.shape[1]
    if x0 is None:
        x0 = jnp.zeros((r,), dtype)
    else:
        x0 = V.as_float_array("x0", x0)
        V.check_shape("x0", x0, (r,), "the subspace dimension K.shape[1]")
    return _subspace_bpdn(A.astype(dtype), K.astype(dtype), y.astype(dtype), lam.astype(dtype),
                          jnp.asarray(rho, dtype), x0.astype(dtype), jnp.asarray(tol, dtype),
                          max_iter=max_iter, mode=mode, prox=prox)


@partial(jax.jit, static_argnames=("max_iter", "mode", "prox"))
def _projection_dense(D1, D2, y, lam, rho, tol, *, max_iter, mode, prox):
    m2 = D2.shape[1]
    z = jnp.zeros((m2,), y.dtype)
    solver = subspace_bpdn_solver(D1 @ D2, jnp.eye(m2, dtype=y.dtype), y, lam, rho, z, z, z, prox)
    sol = iterate(solver, max_iter=max_iter, tol=tol, mode=mode)
    return MLSolution.from_solution((D2 @ sol.codes, sol.codes), sol)


def projection_pursuit_dense(D1, D2, y, lam, *, rho=1.0, max_iter: int = 2000, tol=1e-6, mode: str = "while",
                             prox="soft") -> MLSolution:
    """Projection pursuit of the two-layer dense model: BPDN on the effective dictionary D_1 D_2 by the
    subspace-BPDN ADMM with K = I, then G_1 = D_2 G_2 (Aberdam, Sulam, Elad, SIMODS 2019; Sulam, Papyan,
    Romano, Elad, IEEE TSP 2018).

    Args:
      D1: (n, m_1), D2: (m_1, m_2) dictionaries (arrays or ``Dense``).
      y, lam, rho, max_iter, tol, mode, prox: as in ``subspace_bpdn``.

    Returns:
      ``MLSolution`` with codes (G_1, G_2) = (D_2 G_2, G_2) and the flags, objective and ``SubspaceState`` of the
      one ADMM solve.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sol = sj.multilayer.projection_pursuit_dense(jnp.eye(2), 2.0 * jnp.eye(2), jnp.array([3.0, 0.5]), 1.0)
      >>> [round(float(v), 3) for v in sol.codes[1]], [round(float(v), 3) for v in sol.codes[0]]
      ([1.25, 0.0], [2.5, 0.0])
    """
    A1, A2 = _pair(D1, D2)
    y, lam = _check_y_lam(y, lam, A1.shape[0])
    _check_solve_args(max_iter, tol, mode, rho, prox)
    dtype = jnp.result_type(A1.dtype, y.dtype)
    return _projection_dense(A1.astype(dtype), A2.astype(dtype), y.astype(dtype), lam.astype(dtype),
                             jnp.asarray(rho, dtype), jnp.asarray(tol, dtype), max_iter=max_iter, mode=mode,
                             prox=prox)


# ----------------------------------------------------------------------------------------------------
# holistic pursuit
# ----------------------------------------------------------------------------------------------------
class HolisticState(NamedTuple):
    """The state ``holistic_pursuit`` returns.

    Attributes:
      cosupport1: (rounds,) int32, the indices of G_1 chosen as zeros, in the order chosen (-1 for rounds beyond
        l_1 when padded).
      subspace: the ``SubspaceState`` of the final synthesis step (a warm start for a further solve).

    Example:
      >>> import jax
      >>> import sparsejax as sj
      >>> D1 = sj.random_gaussian(jax.random.PRNGKey(0), 6, 8)
      >>> D2 = sj.random_gaussian(jax.random.PRNGKey(1), 8, 5)
      >>> sol = sj.multilayer.holistic_pursuit(D1, D2, D1 @ D2[:, 0], 0.01, 2)
      >>> sol.state.cosupport1.shape, sol.state.subspace.g.shape
      ((2,), (5,))
    """

    cosupport1: jax.Array
    subspace: SubspaceState


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


def _stage_record(sol: Solution) -> Solution:
    """What ``MLSolution.stages`` keeps of one synthesis step: everything but the state."""
    return sol._replace(state=None, history=None)


@partial(jax.jit, static_argnames=("rounds", "max_iter", "mode", "prox"))
def _holistic(D1, D2, y, lam, rho, tol, l1, *, rounds, max_iter, mode, prox):
    A = D1 @ D2
    m1, m2 = D2.shape
    dtype = y.dtype

    def synth(K, g, u):
        solver = subspace_bpdn_solver(A, K, y, lam, rho, K.T @ g, g, u, prox)
        return iterate(solver, max_iter=max_iter, tol=tol, mode=mode)

    def body(carry, i):
        chosen, taken, g, u, K = carry
        sol = synth(K, g, u)
        G1 = D2 @ sol.codes
        j = jnp.argmin(jnp.where(taken, jnp.inf, jnp.abs(G1))).astype(jnp.int32)
        active = i < l1
        chosen = chosen.at[i].set(jnp.where(active, j, -1))
        taken = taken.at[j].set(taken[j] | active)
        K = _masked_basis(D2, chosen, jnp.minimum(i + 1, l1))
        return (chosen, taken, sol.codes, sol.state.u, K), _stage_record(sol)

    init = (jnp.full((rounds,), -1, jnp.int32), jnp.zeros((m1,), bool), jnp.zeros((m2,), dtype),
            jnp.zeros((m2,), dtype), jnp.eye(m2, dtype=dtype))
    if rounds:
        (chosen, _, g, u, K), rounds_record = lax.scan(body, init, jnp.arange(rounds))
    else:                                   # l1 = 0: the projection pursuit
        chosen, _, g, u, K = init
        rounds_record = None
    sol = synth(K, g, u)
    last = _stage_record(sol)
    if rounds_record is None:
        stages = jax.tree_util.tree_map(lambda s: s[None], last)
    else:
        stages = jax.tree_util.tree_map(lambda p, s: jnp.concatenate([p, s[None]]), rounds_record, last)
    final = sol._replace(state=HolisticState(chosen, sol.state))
    return MLSolution.from_solution((D2 @ sol.codes, sol.codes), final, stages=stages)


def _check_rounds(l1, rounds, m1, m2) -> int:
    if rounds is None:
        if isinstance(l1, bool) or not isinstance(l1, (int, np.integer)):
            raise TypeError(f"l1 must be a Python int (static number of rounds) unless rounds= is given, got {l1!r}")
        rounds = l1
    rounds = V.check_int("rounds", rounds, 0, min(m1, m2 - 1), "the number of rounds (l1) is at most "
                         "min(m_1, m_2 - 1)")
    if V.is_concrete(l1) and not 0 <= int(l1) <= rounds:
        raise ValueError(f"l1 must be in [0, rounds = {rounds}], got {l1}")
    return rounds


def holistic_pursuit(D1, D2, y, lam, l1, *, rho=1.0, max_iter: int = 1000, tol=1e-6, mode: str = "while",
                     prox="soft", rounds: int | None = None) -> MLSolution:
    """Holistic pursuit for the two-layer dense model: l_1 synthesis/analysis rounds that grow the cosupport of G_1
    one index at a time, then a final synthesis step (module docstring; Aberdam, Sulam, Elad, "Multi-layer sparse
    coding: the holistic way", SIAM J. Math. Data Sci. 2019).

    Args:
      D1: (n, m_1), D2: (m_1, m_2) dictionaries (arrays or ``Dense``).
      y: (n,) signal (batch with ``jax.vmap``).
      lam: scalar l1 weight >= 0 on G_2 (traced).
      l1: cocardinality of G_1 (number of rounds). A Python int (static), or, when ``rounds`` is given, an
        int that may be traced (0 <= l1 <= rounds), so that every l1 shares one compilation.
      rho: ADMM penalty (traced). max_iter, tol, mode: per synthesis step (``sparsejax.solve.iterate``).
      prox: "soft" (default) or "nonneg_soft" (G_2 >= 0).
      rounds: static number of rounds to compile (>= l1; rounds past l1 leave K unchanged and cost a
        warm-started re-solve). Default l1.

    Returns:
      ``MLSolution`` with codes (G_1, G_2) = (D_2 G_2, G_2); ``stages`` the flags of every synthesis step (length
      rounds + 1, the last the final solve); overall: the steps of all stages, converged when every stage
      converged, the final stage's objective 1/2||y - D_1 D_2 G_2||^2 + lam ||G_2||_1; ``state`` a
      ``HolisticState`` (the chosen cosupport of G_1, the final ADMM state). With l1 = 0 it is the projection
      pursuit.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D1 = sj.random_gaussian(jax.random.PRNGKey(0), 6, 8)
      >>> D2 = sj.random_gaussian(jax.random.PRNGKey(1), 8, 5)
      >>> sol = sj.multilayer.holistic_pursuit(D1, D2, D1 @ D2[:, 0], 0.01, 2)
      >>> sol.stages.num_steps.shape, bool(sol.converged), int(jnp.argmax(jnp.abs(sol.codes[1])))
      ((3,), True, 0)
    """
    A1, A2 = _pair(D1, D2)
    n, m1 = A1.shape
    m2 = A2.shape[1]
    y, lam = _check_y_lam(y, lam, n)
    _check_solve_args(max_iter, tol, mode, rho, prox)
    rounds = _check_rounds(l1, rounds, m1, m2)
    dtype = jnp.result_type(A1.dtype, y.dtype)
    return _holistic(A1.astype(dtype), A2.astype(dtype), y.astype(dtype), lam.astype(dtype),
                     jnp.asarray(rho, dtype), jnp.asarray(tol, dtype), jnp.asarray(l1, jnp.int32),
                     rounds=rounds, max_iter=max_iter, mode=mode, prox=prox)


# ----------------------------------------------------------------------------------------------------
# oracle estimators (known supports)
# ----------------------------------------------------------------------------------------------------
def _check_support(name, idx, size):
    return V.check_support(name, idx, size)     # 1-D integers in [0, size), no index twice


def _oracle_basis(D1, D2, support2, cosupport1):
    """(D_S, N): D_S = (D_1 D_2)[:, S], N orthonormal basis of null(D_2[C, S]) (None when C is not given)."""
    A1, A2 = _pair(D1, D2)
    S = _check_support("support2", support2, A2.shape[1])
    DS = A1 @ A2[:, S]
    if cosupport1 is None:
        return DS, None
    C = _check_support("cosupport1", cosupport1, A2.shape[0])
    if C.shape[0] >= S.shape[0]:
        raise ValueError(f"cosupport1 must have fewer entries (l1 = {C.shape[0]}) than support2 (s2 = {S.shape[0]})")
    return DS, null_space(A2[C][:, S], S.shape[0] - C.shape[0])


def _sigma(sigma, dtype):
    """The noise level: a finite scalar >= 0 (a traced negative one becomes NaN)."""
    return V.nan_if_negative(V.check_nonnegative_scalar("sigma", sigma).astype(dtype))


def _inv_trace(B):
    cf = jax.scipy.linalg.cho_factor(B.T @ B, lower=True)
    return jnp.trace(jax.scipy.linalg.cho_solve(cf, jnp.eye(B.shape[1], dtype=B.dtype)))


def _ls(B, y):
    cf = jax.scipy.linalg.cho_factor(B.T @ B, lower=True)
    return jax.scipy.linalg.cho_solve(cf, B.T @ y)


def _on_support(DS, D2, y, support2, values_of):
    """The (m_2,) vector that holds ``values_of(y)`` on ``support2`` and zeros elsewhere (y checked first)."""
    y = V.as_float_array("y", y)
    V.check_shape("y", y, (DS.shape[0],), "one signal")
    V.check_finite("y", y)
    m2 = dense_atoms("D2", D2).shape[1]
    return jnp.zeros((m2,), DS.dtype).at[jnp.asarray(support2)].set(values_of(y.astype(DS.dtype)))


def projection_oracle_mse(D1, D2, support2, sigma) -> jax.Array:
    """E||G_2^ - G_2||^2 = sigma^2 tr((D_S^T D_S)^{-1}) of the projection oracle: least squares on the known
    support S of G_2 with D_S = (D_1 D_2)[:, S], white noise N(0, sigma^2 I) (Aberdam, Sulam, Elad, SIMODS 2019).

    Args:
      D1: (n, m_1), D2: (m_1, m_2) dictionaries (arrays or ``Dense``).
      support2: (s_2,) distinct int indices of the support of G_2 (a repeated index is a ValueError).
      sigma: the noise standard deviation (traced).

    Returns:
      The scalar mean squared error.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> round(float(sj.multilayer.projection_oracle_mse(jnp.eye(3), jnp.eye(3), jnp.array([0, 2]), 0.1)), 6)
      0.02
    """
    DS, _ = _oracle_basis(D1, D2, support2, None)
    return _sigma(sigma, DS.dtype) ** 2 * _inv_trace(DS)


def holistic_oracle_mse(D1, D2, support2, cosupport1, sigma) -> jax.Array:
    """E||G_2^ - G_2||^2 = sigma^2 tr((N^T D_S^T D_S N)^{-1}) of the holistic oracle, the least squares over the
    (s_2 - l_1)-dim subspace {G_2 supported on S, (D_2 G_2)[C] = 0} (N orthonormal basis of null(D_2[C, S]);
    Aberdam, Sulam, Elad, SIMODS 2019). Never larger than ``projection_oracle_mse``.

    Args:
      D1, D2, support2, sigma: as in ``projection_oracle_mse``.
      cosupport1: (l_1,) int indices of the zeros of G_1 (l_1 < s_2).

    Returns:
      The scalar mean squared error.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> mse = sj.multilayer.holistic_oracle_mse(jnp.eye(3), jnp.eye(3), jnp.array([0, 2]), jnp.array([0]), 0.1)
      >>> round(float(mse), 6)
      0.01
    """
    DS, N = _oracle_basis(D1, D2, support2, cosupport1)
    return _sigma(sigma, DS.dtype) ** 2 * _inv_trace(DS @ N)


def projection_oracle(D1, D2, y, support2) -> jax.Array:
    """The projection oracle estimator: G_2^[S] = (D_S^T D_S)^{-1} D_S^T y, zero elsewhere (Aberdam, Sulam, Elad,
    SIMODS 2019).

    Args:
      D1, D2, support2: as in ``projection_oracle_mse``. y: (n,) the signal.

    Returns:
      The (m_2,) estimate of G_2.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> y, S = jnp.array([1.0, 2.0, 3.0]), jnp.array([0, 2])
      >>> [round(float(v), 4) for v in sj.multilayer.projection_oracle(jnp.eye(3), jnp.eye(3), y, S)]
      [1.0, 0.0, 3.0]
    """
    DS, _ = _oracle_basis(D1, D2, support2, None)
    return _on_support(DS, D2, y, support2, lambda v: _ls(DS, v))


def holistic_oracle(D1, D2, y, support2, cosupport1) -> jax.Array:
    """The holistic oracle estimator: G_2^[S] = N (N^T D_S^T D_S N)^{-1} N^T D_S^T y (so (D_2 G_2^)[C] = 0), zero
    elsewhere (Aberdam, Sulam, Elad, SIMODS 2019).

    Args:
      D1, D2, support2, cosupport1: as in ``holistic_oracle_mse``. y: (n,) the signal.

    Returns:
      The (m_2,) estimate of G_2.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> y, S, C = jnp.array([1.0, 2.0, 3.0]), jnp.array([0, 2]), jnp.array([0])
      >>> [round(float(v), 4) for v in sj.multilayer.holistic_oracle(jnp.eye(3), jnp.eye(3), y, S, C)]
      [0.0, 0.0, 3.0]
    """
    DS, N = _oracle_basis(D1, D2, support2, cosupport1)
    return _on_support(DS, D2, y, support2, lambda v: N @ _ls(DS @ N, v))
