"""Orthogonal Matching Pursuit (REFERENCE A2): one signal (``omp``) and Batch-OMP (``omp_batch``).

OMP (Pati, Rezaiifar & Krishnaprasad 1993; Tropp 2004). With r_0 = y, S_0 = {}:

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
chosen; ``converged`` = ||r||_2 <= tol (with ``tol``), else k atoms chosen or an exact fit reached.
``Solution.state`` is an ``OMPState`` with the support (chosen atoms in order, -1 for unused slots).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax import _validate as V
from sparsejax.operators import as_operator
from sparsejax.pursuit._batch_omp import batch_omp_core, dependence_tol
from sparsejax.pursuit.problem import prepare_problem
from sparsejax.solve import Solution

__all__ = ["omp", "omp_batch", "OMPState"]

_NNLS_SWEEPS = 60       # coordinate-descent sweeps of the non-negative LS on the support
_DEFAULT_CHUNK = 512    # omp_batch chunk size when the batch is larger than this (arrays stay in L2)


class OMPState(NamedTuple):
    """Diagnostics of an OMP run (leading batch axis for ``omp_batch``).

    support: (k,) int32 indices of the chosen atoms in the order chosen; -1 for unused slots.
    residual_norm2: ||y - D a||_2^2 (energy update).
    """

    support: jax.Array
    residual_norm2: jax.Array


# ----------------------------------------------------------------------------------------------
# validation (Python, before tracing)
# ----------------------------------------------------------------------------------------------

def _atoms_of(op):
    atoms = getattr(op, "atoms", None)
    if atoms is None:
        raise TypeError(
            f"OMP needs a dense dictionary (an (n, m) array or sparsejax.Dense), got {type(op).__name__}"
        )
    return atoms


def _check_k_tol(k, tol, n, m, dtype):
    if k is None:
        k = min(n, m) if tol is not None else max(1, n // 10)
    k = V.check_positive_int("k", k)
    if k > m:
        raise ValueError(f"k must be <= the number of atoms m = {m}, got k = {k}")
    if k > n:
        raise ValueError(
            f"k must be <= the signal dimension n = {n} (more than n atoms are linearly dependent), got k = {k}"
        )
    if tol is None:
        tol2 = jnp.asarray(-1.0, dtype)   # never met: run to k atoms (or an exact fit)
    else:
        tol = V.as_float_array("tol", tol)
        if tol.ndim != 0:
            raise ValueError(f"tol must be a scalar, got shape {tuple(tol.shape)}")
        V.check_nonnegative("tol", tol)
        tol = tol.astype(dtype)
        tol2 = tol * tol
    return k, tol2


def _check_gram(gram, m, dtype):
    if gram is None:
        return None
    gram = V.as_float_array("gram", gram)
    V.check_shape("gram", gram, (m, m), "D^T D, atoms x atoms")
    V.check_finite("gram", gram)
    return gram.astype(dtype)




# ----------------------------------------------------------------------------------------------
# one signal: lax.while_loop, early stop on a traced tol, vmappable
# ----------------------------------------------------------------------------------------------

class _State(NamedTuple):
    j: jax.Array         # atoms chosen so far
    alpha: jax.Array     # (m,) D^T r
    free: jax.Array      # (m,) bool, atom not chosen yet
    U: jax.Array         # (k, k) inverse Cholesky factor of G_SS (rows >= j are zero)
    z: jax.Array         # (k,) coordinates of y in the orthonormalised support
    gamma: jax.Array     # (k,) coefficients on the support (nonneg variant)
    idx: jax.Array       # (k,) support, -1 unused
    energy: jax.Array    # ||r||^2
    r: jax.Array         # (n,) residual (tracked when no Gram matrix is given)
    go: jax.Array        # still running


def _omp_one(atoms, gram, y, tol2, k, nonneg):
    n, m = atoms.shape
    dtype = y.dtype
    alpha0 = atoms.T @ y
    ynorm2 = jnp.sum(y * y)
    diag = jnp.diagonal(gram) if gram is not None else jnp.sum(atoms * atoms, 0)
    slots = jnp.arange(k)
    fit = jnp.finfo(dtype).eps * ynorm2

    def gram_rows(idx):                      # (k, m): G[idx] (rows of unused slots are garbage)
        ii = jnp.maximum(idx, 0)
        if gram is not None:
            return gram[ii]
        return atoms[:, ii].T @ atoms

    def cond(s):
        return s.go & (s.j < k)

    def body(s):
        score = s.alpha if nonneg else jnp.abs(s.alpha)
        score = jnp.where(s.free, score, -jnp.inf)
        new = jnp.argmax(score).astype(jnp.int32)
        best = score[new]
        g_new = gram[new] if gram is not None else atoms.T @ atoms[:, new]
        used = slots < s.j
        v = jnp.where(used, g_new[jnp.maximum(s.idx, 0)], 0.0)
        ej = (slots == s.j).astype(dtype)
        idx = jnp.where(slots == s.j, new, s.idx)
        if not nonneg:
            w = s.U @ v
            d2 = diag[new] - jnp.sum(w * w)
            ok = (s.energy > tol2) & (s.energy > fit) & (best > 0) & (d2 > dependence_tol(dtype) * diag[new])
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
            alpha = s.alpha - zj * p
            gamma = s.gamma
        else:
            # non-negative OMP: LS on the support replaced by NNLS (coordinate descent, warm start)
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
            alpha = alpha0 - gamma @ rows_used
            energy = ynorm2 - 2.0 * jnp.sum(gamma * b) + gamma @ (GSS * Gs) @ gamma
            d2 = diag[new]
            ok = (s.energy > tol2) & (s.energy > fit) & (best > 0) & (d2 > 0)
            U, z, r = s.U, s.z, s.r
            gamma = jnp.where(ok, gamma, s.gamma)
        keep = lambda a, b_: jnp.where(ok, a, b_)  # noqa: E731
        return _State(
            j=s.j + ok.astype(jnp.int32),
            alpha=keep(alpha, s.alpha),
            free=s.free & ~((jnp.arange(m) == new) & ok),
            U=keep(U, s.U),
            z=keep(z, s.z),
            gamma=gamma,
            idx=keep(idx, s.idx),
            energy=keep(energy, s.energy),
            r=keep(r, s.r),
            go=ok,
        )

    s0 = _State(
        j=jnp.asarray(0, jnp.int32),
        alpha=alpha0,
        free=jnp.ones((m,), bool),
        U=jnp.zeros((k, k), dtype),
        z=jnp.zeros((k,), dtype),
        gamma=jnp.zeros((k,), dtype),
        idx=jnp.full((k,), -1, jnp.int32),
        energy=ynorm2,
        r=y,
        go=jnp.asarray(True),
    )
    s = lax.while_loop(cond, body, s0)
    gamma = s.gamma if nonneg else s.U.T @ s.z
    used = s.idx >= 0
    codes = jnp.zeros((m,), dtype).at[jnp.where(used, s.idx, m)].add(
        jnp.where(used, gamma, 0.0), mode="drop")
    energy = jnp.maximum(s.energy, 0.0)
    return _finish(codes, s.j, energy, tol2, k, s.idx, ynorm2, jnp.all(jnp.isfinite(gamma)))


def _finish(codes, nsteps, energy, tol2, k, idx, ynorm2, finite):
    dtype = codes.dtype
    met_tol = energy <= tol2
    exact = energy <= 1e3 * jnp.finfo(dtype).eps * ynorm2
    converged = jnp.where(tol2 >= 0, met_tol, (nsteps == k) | exact)
    finite = finite & jnp.isfinite(energy)
    return Solution(
        codes=codes,
        num_steps=nsteps.astype(jnp.int32),
        converged=converged & finite,
        diverged=~finite,
        objective=0.5 * energy,
        error=jnp.sqrt(energy),
        state=OMPState(support=idx, residual_norm2=energy),
    )


@partial(jax.jit, static_argnames=("k", "nonneg"))
def _omp_jit(atoms, gram, y, tol2, *, k, nonneg):
    return _omp_one(atoms, gram, y, tol2, k, nonneg)


def omp(D, y, *, k: int | None = None, tol=None, gram=None, nonneg: bool = False) -> Solution:
    """Orthogonal Matching Pursuit for one signal (jittable, vmappable; batch many with ``omp_batch``).

    Greedily picks i = argmax_{i not chosen} |d_i^T r| (``nonneg``: argmax d_i^T r > 0), refits
    a_S = argmin ||y - D_S a_S||_2 (``nonneg``: with a_S >= 0, by coordinate descent) and stops after
    ``k`` atoms or when ||r||_2 <= ``tol``. A ``lax.while_loop`` with fixed-size state (support of
    length k, masks, inverse Cholesky factor of G_SS), so under ``jax.vmap`` each signal stops on its own.

    Guarantee (T2, Donoho-Elad-Temlyakov 2006): for y = D a + v, ||v|| <= eps, unit-norm atoms and
    ||a||_0 < (1 + 1/mu)/2 - eps / (mu |a_min|), OMP with tol = eps finds supp(a) exactly.

    Args:
      D: (n, m) atoms (columns; unit norm for the theory) or ``sparsejax.Dense``.
      y: (n,) signal.
      k: maximum number of atoms (static Python int, <= min(n, m)). Default: min(n, m) when ``tol`` is
        given, else max(1, n // 10) (scikit-learn's default).
      tol: stop when ||r||_2 <= tol (traced; a norm, *not* scikit-learn's squared norm).
      gram: optional precomputed G = D^T D (m, m); else Gram rows are computed from D on the fly.
      nonneg: non-negative OMP (Bruckstein, Elad & Zibulevsky 2008).

    Returns:
      ``Solution``: codes (m,), num_steps = atoms chosen, converged, objective = ||r||^2/2,
      error = ||r||, state = ``OMPState(support, residual_norm2)``.
    """
    op, y, _, dtype = prepare_problem(D, y)
    atoms = _atoms_of(op).astype(dtype)
    n, m = atoms.shape
    k, tol2 = _check_k_tol(k, tol, n, m, dtype)
    gram = _check_gram(gram, m, dtype)
    return _omp_jit(atoms, gram, y, tol2, k=k, nonneg=bool(nonneg))


# ----------------------------------------------------------------------------------------------
# Batch-OMP: batched array ops over the rows of Y
# ----------------------------------------------------------------------------------------------







@partial(jax.jit, static_argnames=("k", "chunk"))
def _omp_batch_jit(atoms, gram, Y, tol2, *, k, chunk):
    G = atoms.T @ atoms if gram is None else gram

    def block(Yb):
        return batch_omp_core(G, Yb @ atoms, jnp.sum(Yb * Yb, axis=1), tol2, k)

    B = Y.shape[0]
    if chunk is None or chunk >= B:
        codes, nsteps, energy, idx, finite = block(Y)
    else:
        nc = -(-B // chunk)
        Yp = jnp.pad(Y, ((0, nc * chunk - B), (0, 0))).reshape(nc, chunk, Y.shape[1])
        out = lax.map(block, Yp)
        codes, nsteps, energy, idx, finite = jax.tree_util.tree_map(
            lambda x: x.reshape((nc * chunk,) + x.shape[2:])[:B], out)
    ynorm2 = jnp.sum(Y * Y, axis=1)
    return _finish(codes, nsteps, energy, tol2, k, idx, ynorm2, finite)


def omp_batch(D, Y, *, k: int | None = None, tol=None, gram=None, chunk_size: int | None = None) -> Solution:
    """Batch-OMP (Rubinstein, Zibulevsky & Elad 2008) on the rows of ``Y``: the same pursuit as ``omp``
    for every signal, as batched array operations (no per-signal loop).

    G = D^T D and alpha0 = Y D are computed once (one matrix product); each of the k steps then
    costs O(B m j) (gathers of Gram rows) plus O(B j^2) for the inverse-Cholesky update. Signals that
    reach ||r||_2 <= tol (energy formula ||r_j||^2 = ||y||^2 - sum_i z_i^2) stop changing.

    Args:
      D: (n, m) atoms or ``sparsejax.Dense``.
      Y: (B, n) signals, one per row.
      k: maximum number of atoms (static Python int, <= min(n, m)); default as in ``omp``.
      tol: per-signal stop ||r||_2 <= tol (scalar, traced).
      gram: optional precomputed D^T D.
      chunk_size: process the batch in blocks of this many rows with ``lax.map`` (memory and time per
        signal stay flat in B). Default: 512 when B > 512, else one block.

    Returns:
      ``Solution`` with codes (B, m) and per-signal num_steps, converged, objective (= ||r||^2/2),
      error (= ||r||) and state = ``OMPState(support (B, k), residual_norm2 (B,))``.
    """
    op = as_operator(D)
    atoms = _atoms_of(op)
    Y = V.as_float_array("Y", Y)
    V.check_ndim("Y", Y, (2,), "a batch of signals, one per row: (B, n)")
    n, m = atoms.shape
    if Y.shape[1] != n:
        raise ValueError(f"Y must have shape (B, {n}) (signals as rows, n = D.shape[0]), got {tuple(Y.shape)}")
    V.check_finite("Y", Y)
    V.check_finite("D", atoms)
    dtype = jnp.result_type(atoms.dtype, Y.dtype)
    atoms, Y = atoms.astype(dtype), Y.astype(dtype)
    k, tol2 = _check_k_tol(k, tol, n, m, dtype)
    gram = _check_gram(gram, m, dtype)
    B = Y.shape[0]
    if chunk_size is None:
        chunk = _DEFAULT_CHUNK if B > _DEFAULT_CHUNK else None
    else:
        chunk = V.check_positive_int("chunk_size", chunk_size)
    return _omp_batch_jit(atoms, gram, Y, tol2, k=k, chunk=chunk)
