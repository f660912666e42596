"""Orthogonal Matching Pursuit: one signal (``omp``, a ``Solver`` run by ``iterate``) and Batch-OMP (``omp_batch``).

OMP (Pati, Rezaiifar & Krishnaprasad, "Orthogonal matching pursuit: recursive function approximation with
applications to wavelet decomposition", Asilomar 1993; Tropp, "Greed is good", IEEE Trans. Inf. Theory 2004).
With r_0 = y, S_0 = {}:

    i_j = argmax_{i not in S} |d_i^T r_{j-1}|,   S_j = S_{j-1} + {i_j},
    a_S = argmin ||y - D_S a_S||_2 = (D_S^T D_S)^{-1} D_S^T y,   r_j = y - D_S a_S,

until ``k`` atoms are chosen or ||r_j||_2 <= ``tol``.

Both functions run the Gram form of Batch-OMP (Rubinstein, Zibulevsky & Elad, "Efficient
implementation of the K-SVD algorithm using Batch Orthogonal Matching Pursuit", Technion CS-2008-08):
with G = D^T D and alpha0 = D^T y, the correlations are never recomputed from the residual,

    alpha_j = D^T r_j = alpha0 - G_{:,S} a_S,

and the least-squares solve uses an incrementally grown *inverse* Cholesky factor U = L^{-1} of
G_SS = L L^T (lower triangular, zero-padded to k x k). Adding atom i with v = G_{S,i}:

    w = U v,   d = sqrt(G_ii - ||w||^2),   new row of U = [-(U^T w)^T / d, 1/d],
    z_j = (alpha0_i - w^T z) / d     (so L z = alpha0_S),   a_S = U^T z,

i.e. q_j = D_S U_{j,:}^T is the Gram-Schmidt orthonormalisation of the chosen atoms, z_j = q_j^T y,
alpha_j = alpha_{j-1} - z_j G_{:,S} U_{j,:}^T and ||r_j||^2 = ||y||^2 - ||z||^2 (the Batch-OMP
energy update). An atom whose d^2 falls below ~32 eps G_ii (linearly dependent on the support, e.g.
after an exact fit) is never added: the pursuit stops there instead.

Conventions: ``Solution.objective`` = ||r||_2^2 / 2 and ``Solution.error`` = ||r||_2. ``omp`` without
``gram`` tracks r itself (exact); with ``gram`` and in ``omp_batch`` they come from the energy update,
accurate to about sqrt(eps) ||y|| in the residual norm, so a ``tol`` below that acts as "exact fit";
the pursuit also stops once ||r||^2 <= eps ||y||^2 (an exact fit to rounding); ``num_steps`` = atoms
chosen; ``converged`` = ||r||_2 <= tol (with ``tol``), else k atoms chosen or an exact fit reached
(to 1000 eps ||y||^2). A pursuit that stops short of that target (no atom can join: the best one is linearly
dependent on the support or uncorrelated with r) reports status MAX_STEPS. ``Solution.state`` is an
``OMPState`` with the support (chosen atoms in order, -1 for unused slots).

Non-negative OMP (``prox="nonneg_soft"``; Bruckstein, Elad & Zibulevsky, "On the uniqueness of nonnegative sparse
solutions to underdetermined systems of equations", IEEE Trans. Inf. Theory 2008) picks argmax d_i^T r > 0 and
refits a_S >= 0 by coordinate descent on the support.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sparsejax import _validate as V
from sparsejax._backend import tuned
from sparsejax.cores import split_devices, split_rows
from sparsejax.pursuit._batch_omp import (
    UNROLL_MAX_K,
    batch_omp_core,
    batch_omp_unrolled,
    codes_from_slots,
    dependence_tol,
)
from sparsejax.pursuit._chunks import map_chunks
from sparsejax.pursuit.problem import (
    dense_atoms,
    prepare_batch,
    prepare_problem,
    sign_constraint,
)
from sparsejax.solve import Solution, Solver, check_iteration, iterate, stop_status

__all__ = ["omp", "omp_batch", "omp_gram", "omp_solver", "OMPState", "OMPIterate", "check_gram_matches",
           "least_squares_path"]

_NNLS_SWEEPS = 60       # coordinate-descent sweeps of the non-negative LS on the support
# omp_batch rows per block when the batch is larger: tuned("omp_chunk") (sparsejax._backend). On XLA:CPU 256 (a
# block's (rows, m) arrays stay in L2; 10,000 x 256 atoms, k = 8, one core: 256 rows 26 ms CPU, 512 rows 30 ms,
# 1024 rows 35 ms); on an accelerator one block of up to 65,536 rows.


class OMPState(NamedTuple):
    """Diagnostics of an OMP run (``Solution.state``; leading batch axis for ``omp_batch``).

    Attributes:
      support: (k,) int32 indices of the chosen atoms in the order chosen; -1 for unused slots.
      residual_norm2: ||y - D a||_2^2 (energy update).
      early_stop: True when the pursuit stopped before k atoms without reaching ``tol``: the best remaining atom was
        numerically in the span of the support (a Cholesky pivot d^2 <= 32 eps G_ii), or the residual was
        numerically zero or uncorrelated with every free atom. Expected once k > rank(D) (e.g. k > n); with an exact
        fit the solve still ``converged``, otherwise its status is MAX_STEPS.
      path: with ``return_path=True``, (k, m) codes after each step (row j: the least-squares codes on the first
        j + 1 chosen atoms, as scikit-learn's ``return_path``; rows after the pursuit stopped repeat the final
        codes); else None.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.omp(jnp.eye(3), jnp.array([0.0, 2.0, -1.0]), k=2).state.support.tolist()
      [1, 2]
    """

    support: jax.Array
    residual_norm2: jax.Array
    early_stop: jax.Array = None
    path: jax.Array = None


class OMPIterate(NamedTuple):
    """The state of ``omp_solver`` after j atoms.

    Attributes:
      j: atoms chosen so far.
      alpha: (m,) correlations D^T r.
      free: (m,) bool, atom not chosen yet.
      U: (k, k) inverse Cholesky factor of G_SS (rows >= j are zero).
      z: (k,) coordinates of y in the orthonormalised support.
      gamma: (k,) coefficients on the support (non-negative variant).
      idx: (k,) support, -1 unused.
      energy: ||r||^2.
      r: (n,) residual (tracked when no Gram matrix is given).
      go: False once no atom could join (the pursuit stopped).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.pursuit import omp_solver
      >>> st = sj.iterate(omp_solver(jnp.eye(3), jnp.array([0.0, 2.0, -1.0]), 2), max_iter=2, tol=0.0).state
      >>> int(st.j), st.idx.tolist(), float(st.energy)
      (2, [1, 2], 0.0)
    """

    j: jax.Array
    alpha: jax.Array
    free: jax.Array
    U: jax.Array
    z: jax.Array
    gamma: jax.Array
    idx: jax.Array
    energy: jax.Array
    r: jax.Array
    go: jax.Array


# ----------------------------------------------------------------------------------------------
# validation (Python, before tracing)
# ----------------------------------------------------------------------------------------------

def _check_k_tol(k, tol, n, m, dtype):
    if k is None:                # defaults are clipped to what the dictionary allows; explicit values are checked
        k = min(n, m) if tol is not None else min(max(1, n // 10), n, m)
    k = V.check_positive_int("k", k)
    if k > m:
        raise ValueError(f"k must be <= the number of atoms m = {m}, got k = {k}")
    # n < k <= m is allowed: more than n atoms are linearly dependent, so the pursuit stops at the first atom that is
    # numerically in the span of its support (or at a numerically zero residual) and says so (OMPState.early_stop)
    check_iteration(k, tol, min_iter=1)
    return k, (None if tol is None else V.as_float_array("tol", tol).astype(dtype))


def _check_gram(gram, m, dtype, atoms=None):
    if gram is None:
        return None
    gram = V.as_float_array("gram", gram)
    V.check_shape("gram", gram, (m, m), "D^T D, atoms x atoms")
    V.check_finite("gram", gram)
    if atoms is not None:
        check_gram_matches(gram, atoms)
    return gram.astype(dtype)


def check_gram_matches(gram, atoms) -> None:
    """Check (in Python, before anything is compiled) that a supplied Gram matrix is D^T D for the atoms D.

    One probe with a fixed random vector v (O(n m + m^2), not the O(n m^2) of forming D^T D): the check passes when
    ||G v - D^T (D v)|| <= rtol ||D^T (D v)|| + tiny, rtol = 10 sqrt(eps) of the less precise of the two inputs
    (3.5e-3 for float32, 1.5e-7 for float64), so a Gram formed from D in either precision passes and a Gram of
    another dictionary (other atoms, other normalisation, transposed layout) fails. Skipped under ``jit`` (tracers).

    Raises:
      ValueError naming ``gram`` when it does not match.

    Example:
      >>> import numpy as np
      >>> D = np.eye(3)[:, :2] * 2.0
      >>> check_gram_matches(D.T @ D, D)
      >>> check_gram_matches(np.eye(2), D)
      Traceback (most recent call last):
      ...
      ValueError: gram does not match the dictionary: ||G v - D^T D v|| / ||D^T D v|| = 0.75 for a random probe v (tolerance 1.5e-07); pass gram = D^T D of the same D (atoms as columns), or leave gram=None
    """
    if not (V.is_concrete(gram) and V.is_concrete(atoms)):
        return
    G = np.asarray(gram, np.float64)
    A = np.asarray(atoms, np.float64)
    eps = max(float(np.finfo(np.asarray(gram).dtype).eps), float(np.finfo(np.asarray(atoms).dtype).eps))
    rtol = 10.0 * np.sqrt(eps)
    v = np.random.default_rng(0).standard_normal(A.shape[1])
    ref = A.T @ (A @ v)
    err = np.linalg.norm(G @ v - ref)
    scale = np.linalg.norm(ref)
    if not err <= rtol * scale + np.finfo(np.float64).tiny:
        rel = err / scale if scale > 0 else np.inf
        raise ValueError(f"gram does not match the dictionary: ||G v - D^T D v|| / ||D^T D v|| = {rel:.3g} for a "
                         f"random probe v (tolerance {rtol:.2g}); pass gram = D^T D of the same D (atoms as "
                         f"columns), or leave gram=None")


# ----------------------------------------------------------------------------------------------
# the stopping target, shared by the solver and the fused batch
# ----------------------------------------------------------------------------------------------

def _target_reached(energy, nsteps, ynorm2, k, tol2, stopped):
    """OMP's target: ||r||^2 <= tol^2 with a tolerance (``tol2``), else k atoms chosen or, once the pursuit has
    ``stopped``, an exact fit (||r||^2 <= 1000 eps ||y||^2)."""
    if tol2 is not None:
        return energy <= tol2
    exact = energy <= 1e3 * jnp.finfo(energy.dtype).eps * ynorm2
    return (nsteps == k) | (exact & stopped)


def omp_solver(atoms, y, k: int, tol=None, gram=None, prox="soft") -> Solver:
    """OMP as a ``Solver``: ``step`` adds one atom, ``error`` is 0 once the target is met (||r||_2 <= tol; without
    ``tol``: k atoms or an exact fit) and ||r||_2 before; run it with ``iterate(..., max_iter=k, tol=0)``.

    Args:
      atoms: (n, m) dictionary. y: (n,) signal. k: maximum number of atoms (static).
      tol: residual norm to reach (traced scalar) or None.
      gram: optional precomputed D^T D; without it the residual is tracked exactly.
      prox: "soft" (OMP) or "nonneg_soft" (non-negative OMP).

    Returns:
      the ``Solver``; its state is an ``OMPIterate`` (``state.j`` = atoms chosen), its objective ||r||^2 / 2.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.pursuit import omp_solver
      >>> sol = sj.iterate(omp_solver(jnp.eye(4), jnp.array([0.0, 2.0, 0.0, -1.0]), 3), max_iter=3, tol=0.0)
      >>> sol.codes.tolist(), int(sol.state.j), bool(sol.converged)
      ([0.0, 2.0, 0.0, -1.0], 2, True)
    """
    nonneg = sign_constraint(prox, "OMP")
    n, m = atoms.shape
    dtype = y.dtype
    tol2 = None if tol is None else jnp.asarray(tol, dtype) ** 2
    stop2 = jnp.asarray(-1.0, dtype) if tol2 is None else tol2      # -1: never met, run to k atoms
    alpha0 = atoms.T @ y
    ynorm2 = jnp.sum(y * y)
    diag = jnp.diagonal(gram) if gram is not None else jnp.sum(atoms * atoms, 0)
    slots = jnp.arange(k)
    fit = jnp.finfo(dtype).eps * ynorm2       # below this the fit is exact to rounding: no further atom

    def gram_rows(idx):                      # (k, m): G[idx] (rows of unused slots are garbage)
        ii = jnp.maximum(idx, 0)
        if gram is not None:
            return gram[ii]
        return atoms[:, ii].T @ atoms

    def least_squares(s, new, ok_common):
        """Add atom ``new`` to the support by the inverse-Cholesky update (signed OMP)."""
        g_new = gram[new] if gram is not None else atoms.T @ atoms[:, new]
        v = jnp.where(slots < s.j, g_new[jnp.maximum(s.idx, 0)], 0.0)
        ej = (slots == s.j).astype(dtype)
        idx = jnp.where(slots == s.j, new, s.idx)
        w = s.U @ v
        d2 = diag[new] - jnp.sum(w * w)
        ok = ok_common & (d2 > dependence_tol(dtype) * diag[new])
        dinv = jnp.where(ok, lax.rsqrt(jnp.where(ok, d2, 1.0)), 0.0)
        urow = (ej - s.U.T @ w) * dinv
        zj = (alpha0[new] - jnp.sum(w * s.z)) * dinv
        U = s.U + ej[:, None] * urow[None, :]
        z = s.z + ej * zj
        if gram is not None:
            p = urow @ gram_rows(idx)
            energy = s.energy - zj * zj
            r = s.r
        else:                                        # track r itself: exact ||r||^2
            q = atoms[:, jnp.maximum(idx, 0)] @ urow
            p = atoms.T @ q
            r = s.r - zj * q
            energy = jnp.sum(r * r)
        return ok, s._replace(alpha=s.alpha - zj * p, U=U, z=z, idx=idx, energy=energy, r=r)

    def nonneg_least_squares(s, new, ok_common):
        """Add atom ``new`` and refit a_S >= 0 by coordinate descent, warm-started (non-negative OMP)."""
        idx = jnp.where(slots == s.j, new, s.idx)
        Gs = jnp.where(slots[:, None] <= s.j, 1.0, 0.0) * jnp.where(slots[None, :] <= s.j, 1.0, 0.0)
        rows = gram_rows(idx)                               # (k, m)
        GSS = rows[:, jnp.maximum(idx, 0)] * Gs
        GSS = GSS + jnp.diag(jnp.where(slots <= s.j, 0.0, 1.0))
        b = jnp.where(slots <= s.j, alpha0[jnp.maximum(idx, 0)], 0.0)
        dg = jnp.diagonal(GSS)

        def sweep(_, gam):
            def coord(i, gam):
                gi = jnp.maximum(gam[i] + (b[i] - GSS[i] @ gam) / dg[i], 0.0)
                return gam.at[i].set(gi)
            return lax.fori_loop(0, k, coord, gam)

        gamma = lax.fori_loop(0, _NNLS_SWEEPS, sweep, s.gamma)
        rows_used = rows * (slots <= s.j)[:, None].astype(dtype)
        energy = ynorm2 - 2.0 * jnp.sum(gamma * b) + gamma @ (GSS * Gs) @ gamma
        ok = ok_common & (diag[new] > 0)
        return ok, s._replace(alpha=alpha0 - gamma @ rows_used, gamma=gamma, idx=idx, energy=energy)

    def step(s: OMPIterate) -> OMPIterate:
        score = s.alpha if nonneg else jnp.abs(s.alpha)
        score = jnp.where(s.free, score, -jnp.inf)
        new = jnp.argmax(score).astype(jnp.int32)
        ok_common = s.go & (s.j < k) & (s.energy > stop2) & (s.energy > fit) & (score[new] > 0)
        ok, t = (nonneg_least_squares if nonneg else least_squares)(s, new, ok_common)
        keep = lambda a, b: jnp.where(ok, a, b)  # noqa: E731
        return OMPIterate(
            j=s.j + ok.astype(jnp.int32),
            alpha=keep(t.alpha, s.alpha),
            free=s.free & ~((jnp.arange(m) == new) & ok),
            U=keep(t.U, s.U),
            z=keep(t.z, s.z),
            gamma=keep(t.gamma, s.gamma),
            idx=keep(t.idx, s.idx),
            energy=keep(t.energy, s.energy),
            r=keep(t.r, s.r),
            go=ok,
        )

    def init() -> OMPIterate:
        return OMPIterate(j=jnp.asarray(0, jnp.int32), alpha=alpha0, free=jnp.ones((m,), bool),
                          U=jnp.zeros((k, k), dtype), z=jnp.zeros((k,), dtype), gamma=jnp.zeros((k,), dtype),
                          idx=jnp.full((k,), -1, jnp.int32), energy=ynorm2, r=y, go=jnp.asarray(True))

    def codes(s: OMPIterate):
        gamma = s.gamma if nonneg else s.U.T @ s.z
        used = s.idx >= 0
        return jnp.zeros((m,), dtype).at[jnp.where(used, s.idx, m)].add(jnp.where(used, gamma, 0.0), mode="drop")

    def error(old, new: OMPIterate):
        reached = _target_reached(new.energy, new.j, ynorm2, k, tol2, ~new.go | (new.energy <= fit))
        return jnp.where(reached, jnp.zeros_like(new.energy), jnp.sqrt(jnp.maximum(new.energy, 0.0)))

    return Solver(init=init, step=step, codes=codes, error=error,
                  objective=lambda s: 0.5 * jnp.maximum(s.energy, 0.0))


def least_squares_path(GSS, a0S, used):
    """The OMP path from the chosen support: codes (in slot order) after each step.

    Row j solves the least-squares problem on the first j + 1 chosen atoms, G_{S_j S_j} a = (D^T y)_{S_j}. With the
    Cholesky factor G_SS = L L^T and z = L^{-1} (D^T y)_S, the leading (j + 1) x (j + 1) block of L factors
    G_{S_j S_j}, so row j = L^{-T} (z_0, ..., z_j, 0, ..., 0): one factorisation for the whole path.

    Args:
      GSS: (..., k, k) Gram matrix of the support in slot order. a0S: (..., k) correlations D^T y of the support.
      used: (..., k) bool, slot in use (unused slots come last; they contribute nothing).

    Returns:
      (..., k, k): row j = the codes of the slots after step j (rows past the used slots repeat the last one).

    Example:
      >>> import jax.numpy as jnp
      >>> G = jnp.array([[1.0, 0.5], [0.5, 1.0]])
      >>> least_squares_path(G, jnp.array([1.0, 1.0]), jnp.array([True, True])).round(4).tolist()
      [[1.0, 0.0], [0.6667, 0.6667]]
    """
    k = used.shape[-1]
    dtype = GSS.dtype
    both = used[..., :, None] & used[..., None, :]
    M = jnp.where(both, GSS, jnp.eye(k, dtype=dtype))
    b = jnp.where(used, a0S, 0.0)
    L = jnp.linalg.cholesky(M)
    z = jax.scipy.linalg.solve_triangular(L, b[..., None], lower=True)[..., 0]            # L z = b
    lower = jnp.arange(k)[:, None] >= jnp.arange(k)[None, :]                              # row j keeps z_0..z_j
    Z = jnp.where(lower, z[..., None, :], 0.0)                                             # (..., j, l)
    # row j of the path: L^T x = Z[j]  ->  X^T = L^{-T} Z^T
    X = jax.scipy.linalg.solve_triangular(jnp.swapaxes(L, -1, -2), jnp.swapaxes(Z, -1, -2), lower=False)
    return jnp.swapaxes(X, -1, -2)


def _path_dense(idx, slot_path, m):
    """(B, k, k) slot-order path -> (B, k, m) dense codes per step."""
    B, k = idx.shape
    rep = jnp.repeat(idx, k, axis=0)                                 # (B k, k): the support of every row
    return codes_from_slots(rep, slot_path.reshape(B * k, k), m).reshape(B, k, m)


def _batch_path(G, alpha0, idx):
    """OMP path (B, k, m) from the supports ``idx`` (B, k), the Gram matrix and the correlations alpha0 (B, m)."""
    safe = jnp.maximum(idx, 0)
    GSS = G[safe[:, :, None], safe[:, None, :]]
    a0S = jnp.take_along_axis(alpha0, safe, axis=1)
    return _path_dense(idx, least_squares_path(GSS, a0S, idx >= 0), G.shape[0])


def _early_stop(energy, nsteps, k, tol2):
    """Stopped before k atoms without reaching the tolerance (linear dependence or a numerically zero residual)."""
    short = nsteps < k
    return short if tol2 is None else short & ~(energy <= tol2)


def _run_omp(atoms, gram, y, tol, k, prox, return_path=False):
    """``omp_solver`` through ``iterate`` (flags and status from the driver), reported in OMP's conventions:
    num_steps = atoms chosen, error = ||r||_2, state = ``OMPState``."""
    sol = iterate(omp_solver(atoms, y, k, tol, gram, prox), max_iter=k, tol=0.0, mode="while")
    energy = jnp.maximum(sol.state.energy, 0.0)
    idx = sol.state.idx
    path = None
    if return_path:
        safe = jnp.maximum(idx, 0)
        GSS = gram[safe[:, None], safe[None, :]] if gram is not None else atoms[:, safe].T @ atoms[:, safe]
        slot_path = least_squares_path(GSS, atoms[:, safe].T @ y, idx >= 0)
        path = _path_dense(idx[None], slot_path[None], atoms.shape[1])[0]
    tol2 = None if tol is None else tol * tol
    return sol._replace(num_steps=sol.state.j, error=jnp.sqrt(energy),
                        state=OMPState(support=idx, residual_norm2=energy,
                                       early_stop=_early_stop(energy, sol.state.j, k, tol2), path=path))


@partial(jax.jit, static_argnames=("k", "prox", "return_path"))
def _omp_jit(atoms, gram, y, tol, *, k, prox, return_path):
    return _run_omp(atoms, gram, y, tol, k, prox, return_path)


def _check_return_path(return_path, prox):
    if not isinstance(return_path, (bool, np.bool_)):
        raise TypeError(f"return_path must be True or False, got {return_path!r}")
    if return_path and prox != "soft":
        raise ValueError(f"return_path=True is implemented for OMP with signed codes (prox='soft'), got prox={prox!r}")
    return bool(return_path)


def omp(D, y, *, k: int | None = None, tol=None, gram=None, prox="soft", return_path: bool = False) -> Solution:
    """Orthogonal Matching Pursuit for one signal (jittable, vmappable; batch many with ``omp_batch``).

    Greedily picks i = argmax_{i not chosen} |d_i^T r| (``prox="nonneg_soft"``: argmax d_i^T r > 0), refits
    a_S = argmin ||y - D_S a_S||_2 (non-negative: with a_S >= 0, by coordinate descent) and stops after
    ``k`` atoms or when ||r||_2 <= ``tol``. The pursuit is ``omp_solver`` run by ``sparsejax.solve.iterate`` (a
    ``lax.while_loop`` with fixed-size state: support of length k, masks, inverse Cholesky factor of G_SS), so
    under ``jax.vmap`` each signal stops on its own and the flags and status come from the driver.

    Guarantee: for y = D a + v, ||v|| <= eps, unit-norm atoms and ||a||_0 < (1 + 1/mu)/2 - eps / (mu |a_min|),
    OMP with tol = eps finds supp(a) exactly (Donoho, Elad & Temlyakov, "Stable recovery of sparse overcomplete
    representations in the presence of noise", IEEE Trans. Inf. Theory 2006, theorem 5.1).

    Args:
      D: (n, m) atoms (columns; unit norm for the theory) or ``sparsejax.Dense``.
      y: (n,) signal.
      k: maximum number of atoms (static Python int, <= m). Default: min(n, m) when ``tol`` is
        given, else max(1, n // 10) (scikit-learn's default) clipped to min(n, m). A k above rank(D) (e.g. n < k <= m)
        is allowed: the pursuit stops at the first atom that is numerically in the span of the support, or at a
        numerically zero residual, and reports it in ``state.early_stop`` (scikit-learn warns and stops there).
      tol: stop when ||r||_2 <= tol (traced; a norm, *not* scikit-learn's squared norm).
      gram: optional precomputed G = D^T D (m, m); else Gram rows are computed from D on the fly. Checked against
        D before compilation (``check_gram_matches``: a ValueError naming ``gram`` when it is not D^T D).
      prox: "soft" (OMP, signed codes) or "nonneg_soft" (non-negative OMP).
      return_path: also return the codes after every step in ``state.path`` (k, m) (scikit-learn's
        ``return_path``; signed OMP only).

    Returns:
      ``Solution``: codes (m,), num_steps = atoms chosen, converged, status, objective = ||r||^2/2,
      error = ||r||, state = ``OMPState(support, residual_norm2, early_stop, path)``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = jnp.eye(4); y = jnp.array([0.0, 2.0, 0.0, -1.0])
      >>> sol = sj.omp(D, y, k=3)
      >>> sol.codes.tolist(), int(sol.num_steps), bool(sol.converged)    # exact fit after 2 atoms
      ([0.0, 2.0, 0.0, -1.0], 2, True)
      >>> sj.omp(D, y, k=1, prox="nonneg_soft").codes.tolist()
      [0.0, 2.0, 0.0, 0.0]
      >>> sj.omp(D, y, k=2, return_path=True).state.path.tolist()
      [[0.0, 2.0, 0.0, 0.0], [0.0, 2.0, 0.0, -1.0]]
    """
    op, y, _, dtype = prepare_problem(D, y)
    atoms = dense_atoms(op, "OMP").astype(dtype)
    n, m = atoms.shape
    sign_constraint(prox, "OMP")
    return_path = _check_return_path(return_path, prox)
    k, tol = _check_k_tol(k, tol, n, m, dtype)
    gram = _check_gram(gram, m, dtype, atoms)
    return _omp_jit(atoms, gram, y, tol, k=k, prox=prox, return_path=return_path)


# ----------------------------------------------------------------------------------------------
# Batch-OMP: batched array ops over the rows of Y
# ----------------------------------------------------------------------------------------------

def _blocks(fn, X, chunk):
    """``fn`` over blocks of ``chunk`` rows of the arrays X (a pytree with a common leading axis B) read in place
    (``lax.map`` over block starts); when chunk does not divide B the last block is the last ``chunk`` rows (it
    overlaps the one before; only its new rows are kept). Unlike padding, no copy of X (at 10^6 signals that copy
    was 244 MB), and ``fn`` is compiled for one shape."""
    B = jax.tree_util.tree_leaves(X)[0].shape[0]
    if chunk is None or chunk >= B:
        return fn(X)
    nfull, rest = divmod(B, chunk)
    starts = jnp.arange(nfull) * chunk
    if rest:
        starts = jnp.concatenate([starts, jnp.array([B - chunk])])
    out = lax.map(lambda i: fn(jax.tree_util.tree_map(lambda x: lax.dynamic_slice_in_dim(x, i, chunk), X)), starts)

    def join(x):
        full = x[:nfull].reshape((nfull * chunk,) + x.shape[2:])
        return jnp.concatenate([full, x[nfull, chunk - rest:]]) if rest else full

    return jax.tree_util.tree_map(join, out)


def _batch_gram(G, correlations, X, tol, k, chunk, return_path):
    """Batch-OMP from the Gram matrix: ``correlations(Xb)`` gives a block's (alpha0 (rows, m), ||y||^2 (rows,)) from
    its rows of the pytree X. Returns the ``Solution`` (codes (B, m), ...)."""
    tol2 = None if tol is None else tol * tol
    m = G.shape[0]
    dtype = G.dtype
    stop2 = jnp.asarray(-1.0, dtype) if tol2 is None else tol2

    def block(Xb):
        A0, yn2 = correlations(Xb)
        if k <= UNROLL_MAX_K:
            gamma, nsteps, energy, idx, finite = batch_omp_unrolled(G, A0, yn2, stop2, k)
            codes = None
        else:
            codes, nsteps, energy, idx, finite = batch_omp_core(G, A0, yn2, stop2, k)
            gamma = None
        path = _batch_path(G, A0, idx) if return_path else None
        return codes, gamma, nsteps, energy, idx, finite, yn2, path

    codes, gamma, nsteps, energy, idx, finite, ynorm2, path = _blocks(block, X, chunk)
    if codes is None:       # the unrolled kernel returns (rows, k) slots: the dense codes are written once, here
        codes = codes_from_slots(idx, gamma, m)
    finite = finite & jnp.isfinite(energy)
    converged = _target_reached(energy, nsteps, ynorm2, k, tol2, True) & finite
    return Solution(codes=codes, num_steps=nsteps.astype(jnp.int32), converged=converged, diverged=~finite,
                    objective=0.5 * energy, error=jnp.sqrt(energy),
                    state=OMPState(support=idx, residual_norm2=energy,
                                   early_stop=_early_stop(energy, nsteps, k, tol2), path=path),
                    status=stop_status(converged, ~finite, ~jnp.isfinite(ynorm2)))


@partial(jax.jit, static_argnames=("k", "chunk", "prox", "return_path", "devices"))
def _omp_batch_jit(atoms, gram, Y, tol, *, k, chunk, prox, return_path=False, devices=None):
    def local(Y, consts):
        atoms, gram, tol = consts
        if prox == "nonneg_soft":        # no fused kernel for the non-negative refit: the solver, vmapped
            return map_chunks(jax.vmap(lambda y: _run_omp(atoms, gram, y, tol, k, prox)), Y, chunk)
        G = atoms.T @ atoms if gram is None else gram
        return _batch_gram(G, lambda Yb: (Yb @ atoms, jnp.sum(Yb * Yb, axis=1)), Y, tol, k, chunk, return_path)

    return split_rows(local, devices, Y, (atoms, gram, tol))


def omp_batch(D, Y, *, k: int | None = None, tol=None, gram=None, chunk: int | None = None,
              prox="soft", return_path: bool = False, devices=None) -> Solution:
    """Batch-OMP (Rubinstein, Zibulevsky & Elad 2008) on the rows of ``Y``: the same pursuit as ``omp``
    for every signal, as batched array operations (no per-signal loop).

    G = D^T D once; per block of ``chunk`` rows alpha0 = Y_b D (one matrix product), then each of the k steps
    costs O(B m j) (j gathered Gram rows) plus O(B j^2) for the inverse-Cholesky update, all k steps of a block
    while its (rows, m) arrays are in cache (for k <= 8 the steps are unrolled; the dense codes are scattered
    once at the end). Signals that reach ||r||_2 <= tol (energy formula ||r_j||^2 = ||y||^2 - sum_i z_i^2) stop
    changing.

    Args:
      D: (n, m) atoms or ``sparsejax.Dense``.
      Y: (B, n) signals, one per row.
      k: maximum number of atoms (static Python int, <= m; n < k allowed as in ``omp``); default as in ``omp``.
      tol: per-signal stop ||r||_2 <= tol (scalar, traced).
      gram: optional precomputed D^T D, checked against D before compilation (``check_gram_matches``).
      chunk: process the batch in blocks of this many rows with ``lax.map`` (memory and time per
        signal stay flat in B). Default: 256 when B > 256, else one block.
      prox: "soft" (Batch-OMP) or "nonneg_soft" (non-negative OMP: ``omp``'s solver, vmapped).
      return_path: also return the codes after every step, ``state.path`` (B, k, m) (signed OMP only).
      devices: split the batch by rows over devices (``sparsejax.cores``): None splits over every CPU core after
        ``sparsejax.use_cpu_cores()`` (else one device); 1 never splits; an int n or a list of devices splits over
        those. The codes are the same either way.

    Returns:
      ``Solution`` with codes (B, m) and per-signal num_steps, converged, status, objective (= ||r||^2/2),
      error (= ||r||) and state = ``OMPState(support (B, k), residual_norm2 (B,), early_stop (B,), path)``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> Y = jnp.array([[0.0, 2.0, 0.0, -1.0], [3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.5]])
      >>> sol = sj.omp_batch(jnp.eye(4), Y, k=2, chunk=2)
      >>> bool(jnp.allclose(sol.codes, Y)), sol.num_steps.tolist()
      (True, [2, 1, 2])
    """
    sign_constraint(prox, "OMP")
    return_path = _check_return_path(return_path, prox)
    atoms, Y, dtype = prepare_batch(D, Y, "OMP")
    n, m = atoms.shape
    k, tol = _check_k_tol(k, tol, n, m, dtype)
    gram = _check_gram(gram, m, dtype, atoms)
    B = Y.shape[0]
    devices = split_devices(devices, B, (D, Y, gram))
    chunk = _check_chunk(chunk, B if devices is None else -(-B // len(devices)))
    return _omp_batch_jit(atoms, gram, Y, tol, k=k, chunk=chunk, prox=prox, return_path=return_path,
                          devices=devices)


def _check_chunk(chunk, B):
    if chunk is None:
        default = tuned("omp_chunk")
        return default if B > default else None
    return V.check_positive_int("chunk", chunk)


@partial(jax.jit, static_argnames=("k", "chunk", "return_path", "devices"))
def _omp_gram_jit(gram, Dty, ynorm2, tol, *, k, chunk, return_path, devices=None):
    return split_rows(lambda X, c: _batch_gram(c[0], lambda Xb: Xb, X, c[1], k, chunk, return_path), devices,
                      (Dty, ynorm2), (gram, tol))


def omp_gram(gram, Dty, ynorm2, *, k: int | None = None, tol=None, chunk: int | None = None,
             return_path: bool = False, devices=None) -> Solution:
    """OMP from the Gram matrix alone: G = D^T D, D^T y and ||y||^2 (scikit-learn's ``orthogonal_mp_gram``), batched.

    The same pursuit as ``omp`` / ``omp_batch`` (Batch-OMP, Rubinstein, Zibulevsky & Elad, Technion CS-2008-08,
    2008), which never needs D itself: atom selection uses alpha = D^T y - G_{:,S} a_S, the least squares
    G_SS a_S = (D^T y)_S, and the residual energy ||r||^2 = ||y||^2 - (D^T y)_S^T a_S. Useful when G and D^T Y are
    cheaper to keep than D and Y (n >> m, or statistics accumulated over many signals).

    Differences from scikit-learn: ``tol`` is the residual *norm* ||r||_2 (scikit-learn's ``tol`` is its square;
    ``sparsejax.interop.omp_tol_from_sklearn`` converts), and ``ynorm2`` is always required (it gives the residual
    reported in ``error`` and the exact-fit stop).

    Args:
      gram: (m, m) G = D^T D (symmetric; not checked against a D, which this form never sees).
      Dty: (m,) D^T y for one signal, or (B, m) for a batch (rows: signals; scikit-learn's ``Xy`` transposed).
      ynorm2: ||y||^2: a scalar for one signal, (B,) for a batch.
      k: maximum number of atoms (static int, <= m). Default: m with ``tol``, else max(1, m // 10) (scikit-learn's
        ``orthogonal_mp_gram`` default). A k above rank(G) stops at linear dependence (``state.early_stop``).
      tol: stop when ||r||_2 <= tol (traced scalar).
      chunk: rows per block for large batches (default 256 when B > 256).
      return_path: also return the codes after each step, ``state.path`` ((k, m), or (B, k, m)).
      devices: split the batch over devices, as in ``omp_batch``.

    Returns:
      ``Solution`` as ``omp`` (one signal) or ``omp_batch`` (a batch): codes, num_steps, converged, status,
      objective = ||r||^2 / 2, error = ||r||, state = ``OMPState``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.pursuit.omp import omp_gram
      >>> D = jnp.eye(4); y = jnp.array([0.0, 2.0, 0.0, -1.0])
      >>> sol = omp_gram(D.T @ D, D.T @ y, y @ y, k=2)
      >>> sol.codes.tolist(), float(sol.error)
      ([0.0, 2.0, 0.0, -1.0], 0.0)
    """
    return_path = _check_return_path(return_path, "soft")
    gram = V.as_float_array("gram", gram)
    V.check_ndim("gram", gram, (2,), "G = D^T D, atoms x atoms")
    m = gram.shape[0]
    V.check_shape("gram", gram, (m, m), "G = D^T D, atoms x atoms (square)")
    V.check_finite("gram", gram)
    if V.is_concrete(gram):
        Gh = np.asarray(gram, np.float64)
        scale = np.max(np.abs(np.diagonal(Gh))) if m else 0.0
        if not np.allclose(Gh, Gh.T, rtol=0.0, atol=1e-5 * max(scale, np.finfo(np.float64).tiny)):
            raise ValueError("gram must be symmetric (G = D^T D), got a matrix with G != G^T")
        if np.any(np.diagonal(Gh) < 0):
            raise ValueError("gram must have a non-negative diagonal (G_ii = ||d_i||^2)")
    Dty = V.as_float_array("Dty", Dty)
    V.check_ndim("Dty", Dty, (1, 2), "D^T y: (m,) for one signal or (B, m) for a batch")
    if Dty.shape[-1] != m:
        raise ValueError(f"Dty must have {m} entries per signal (one per atom, m = gram.shape[0]), got shape "
                         f"{tuple(Dty.shape)}")
    V.check_finite("Dty", Dty)
    single = Dty.ndim == 1
    B = 1 if single else Dty.shape[0]
    if B == 0:
        raise ValueError("Dty must hold at least one signal")
    ynorm2 = V.as_float_array("ynorm2", ynorm2)
    want = () if single else (B,)
    if tuple(ynorm2.shape) != want:
        raise ValueError(f"ynorm2 must have shape {want} (||y||^2 per signal, matching Dty of shape "
                         f"{tuple(Dty.shape)}), got {tuple(ynorm2.shape)}")
    V.check_finite("ynorm2", ynorm2)
    V.check_nonnegative("ynorm2", ynorm2)
    dtype = jnp.result_type(gram.dtype, Dty.dtype, ynorm2.dtype)
    if k is None:
        k = m if tol is not None else max(1, m // 10)
    k, tol = _check_k_tol(k, tol, m, m, dtype)
    devices = split_devices(devices, B, (gram, Dty, ynorm2))
    chunk = _check_chunk(chunk, B if devices is None else -(-B // len(devices)))
    sol = _omp_gram_jit(gram.astype(dtype), Dty.reshape(B, m).astype(dtype), ynorm2.reshape(B).astype(dtype), tol,
                        k=k, chunk=chunk, return_path=return_path, devices=devices)
    return jax.tree_util.tree_map(lambda x: x[0], sol) if single else sol
