"""Dense dictionary learning: MOD, K-SVD, online (Mairal et al.) and Optax-driven learning.

Problem: given signals y_1..y_N (rows of ``Y``, shape (N, n)) find D in R^{n x m} with unit-norm
columns and sparse codes a_i (rows of ``A``, shape (N, m)) such that y_i ~ D a_i:

    min_{D, A}  1/2 ||Y - A D^T||_F^2   s.t. ||a_i||_0 <= k             (MOD, K-SVD, online with OMP)
    min_{D, A}  1/2 ||Y - A D^T||_F^2 + lam ||A||_1                    (online with Lasso, Optax)

Every method is a pure, jitted step on a ``DictState(D, stats, key)`` NamedTuple, so that
``sparsejax.learn.loop.run_loop`` can checkpoint and resume it exactly:

* ``mod_step``    -- Method of Optimal Directions (Engan, Aase & Husoy, "Method of optimal directions for frame
                     design", ICASSP 1999): Batch-OMP codes, then
                     D = argmin_D ||Y^T - D A^T||_F = Y^T A (A^T A)^{-1} (least squares), normalised.
* ``ksvd_step``   -- K-SVD (Aharon, Elad & Bruckstein, "K-SVD: an algorithm for designing overcomplete
                     dictionaries for sparse representation", IEEE TSP 2006): Batch-OMP codes, then for j = 1..m the
                     rank-1 SVD of the error E_j = Y^T - sum_{i != j} d_i a^i restricted to the signals that
                     use atom j (columns masked, no Python loop over signals) replaces (d_j, a^j).
* ``online_step`` -- online dictionary learning (Mairal, Bach, Ponce & Sapiro, "Online learning for matrix
                     factorization and sparse coding", JMLR 2010, Algorithms 1-2): a mini-batch is coded,
                     the sufficient statistics A_t = beta_t A_{t-1} + <a a^T>, B_t = beta_t B_{t-1} + <y a^T>
                     (forgetting beta_t = (1 - 1/t)^rho) are updated and the dictionary is refined by block
                     coordinate descent u_j = d_j + (b_j - D a_j) / A_jj, d_j = u_j / max(||u_j||, 1).
* ``optax_step``  -- any Optax optimiser on the loss 1/2 ||Y - A(D) D^T||^2 + lam ||A(D)||_1 (means over the
                     batch), A(D) the Lasso codes from a differentiable pursuit
                     (``sparsejax.differentiate.lasso_codes``); atoms renormalised after each step.

Atoms that no signal uses (and, for MOD / K-SVD / online, an atom nearly equal to an earlier one,
|<d_i, d_j>| > ``dup_threshold``) are replaced by the worst-represented signal of the batch, normalised,
as in Aharon et al. 2006. ``learn_dictionary`` is the front door; ``atom_recovery`` the quality measure
of the K-SVD paper's synthetic experiment.

Options of the front door and the steps (scikit-learn's names where it has one): the coder (``coder``: "omp" with
``sparsity``, "lasso" / "lars" with ``lam``, the LARS homotopy of ``lasso_batch``), ``positive_code`` /
``positive_dict`` (projected updates), ``shuffle=False`` (online mini-batches in the order of Y), ``normalize=False``
(an init used exactly as given, the dictionary returned as the method leaves it), ``n_steps=0`` (the init back),
more atoms than signals, and ``partial_fit`` (online learning continued one mini-batch at a time).
"""
from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from sparsejax import _validate as V
from sparsejax.dictionary import normalize_atoms
from sparsejax.differentiate import GRAD_MODES, lasso_codes
from sparsejax.learn.loop import run_loop
from sparsejax.pursuit.lasso_batch import lasso_batch
from sparsejax.pursuit.omp import omp_batch
from sparsejax.solve import check_iteration

__all__ = [
    "DictState",
    "OnlineStats",
    "DictLearnResult",
    "METHODS",
    "CODERS",
    "init_dictionary",
    "init_state",
    "mod_update",
    "ksvd_dictionary_update",
    "online_dictionary_update",
    "mod_step",
    "ksvd_step",
    "online_step",
    "optax_step",
    "partial_fit",
    "learn_dictionary",
    "atom_recovery",
    "representation_error",
]

METHODS = ("ksvd", "mod", "online", "optax")
CODERS = ("omp", "lasso", "lars", "lasso_lars")


class DictState(NamedTuple):
    """State of a dictionary-learning run (a pytree of arrays: checkpointable).

    D: (n, m) dictionary, atoms as columns.
    stats: method state: ``()`` for MOD / K-SVD, ``OnlineStats`` for online learning, the Optax
      optimiser state for ``optax``.
    key: PRNG key (mini-batch sampling).

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn import dense
      >>> st = dense.init_state("ksvd", jnp.eye(4), jax.random.PRNGKey(0))
      >>> st.D.shape, st.stats
      ((4, 4), ())
    """

    D: jax.Array
    stats: Any
    key: jax.Array


class OnlineStats(NamedTuple):
    """Sufficient statistics of online dictionary learning (Mairal et al., JMLR 2010, Algorithm 1):
    A = sum beta a a^T (m, m), B = sum beta y a^T (n, m), t = mini-batches seen (float scalar).

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn import dense
      >>> st = dense.init_state("online", jnp.ones((3, 5)), jax.random.PRNGKey(0)).stats
      >>> st.A.shape, st.B.shape, float(st.t)
      ((5, 5), (3, 5), 0.0)
    """

    A: jax.Array
    B: jax.Array
    t: jax.Array


class DictLearnResult(NamedTuple):
    """Result of ``learn_dictionary``.

    dictionary: (n, m) learned atoms (unit norm; online learning keeps ||d_j|| <= 1, normalised here unless
      ``normalize=False``).
    codes: (N, m) codes of all signals with the learned dictionary (OMP with ``sparsity`` or Lasso with
      ``lam``), or None when ``return_codes=False``.
    loop: the ``sparsejax.learn.loop.LoopResult`` (final state, history of loss / sparsity / ..., steps,
      status "completed" | "diverged" | "stopped", message).
    method: the method name.

    Example: see ``learn_dictionary``.
      >>> from sparsejax.learn.dense import DictLearnResult
      >>> DictLearnResult._fields
      ('dictionary', 'codes', 'loop', 'method')
    """

    dictionary: jax.Array
    codes: Optional[jax.Array]
    loop: Any
    method: str


# ----------------------------------------------------------------------------------------------
# shared pieces (pure, jittable)
# ----------------------------------------------------------------------------------------------

def representation_error(D, Y, codes) -> jax.Array:
    """Relative representation error ||Y - A D^T||_F / ||Y||_F (signals as rows of Y, codes as rows of A).

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.dense import representation_error
      >>> Y = jnp.array([[1.0, 0.0], [0.0, 2.0]])
      >>> round(float(representation_error(jnp.eye(2), Y, jnp.array([[1.0, 0.0], [0.0, 0.0]]))), 4)   # 2 / sqrt 5
      0.8944
    """
    R = Y - codes @ D.T
    return jnp.sqrt(jnp.sum(R * R) / jnp.maximum(jnp.sum(Y * Y), jnp.finfo(Y.dtype).tiny))


def _replace_atoms(D, bad, Y, R, positive=False):
    """Replace the atoms flagged in ``bad`` (m,) by the worst-represented signals (largest ||r_i||), normalised.

    The j-th flagged atom gets the j-th worst signal (vectorised, no loop; more flagged atoms than signals cycle
    through the signals again). ``positive``: the signal's non-negative part. A candidate with zero norm leaves
    the atom unchanged.
    """
    err = jnp.sum(R * R, axis=1)
    order = jnp.argsort(-err)                                    # worst first
    rank = jnp.cumsum(bad.astype(jnp.int32)) - 1
    pick = order[jnp.maximum(rank, 0) % Y.shape[0]]
    cand = Y[pick].T                                             # (n, m)
    if positive:
        cand = jnp.maximum(cand, 0.0)
    norms = jnp.linalg.norm(cand, axis=0)
    ok = bad & (norms > 0)
    cand = cand / jnp.where(norms > 0, norms, 1.0)[None, :]
    return jnp.where(ok[None, :], cand, D), ok


def _duplicates(D, threshold):
    """Atoms j with |<d_i, d_j>| > threshold for some earlier i < j (of the normalised atoms)."""
    Dn = normalize_atoms(D)
    G = jnp.abs(Dn.T @ Dn)
    m = G.shape[0]
    earlier = jnp.arange(m)[:, None] < jnp.arange(m)[None, :]
    return jnp.any((G > threshold) & earlier, axis=0)


def _rarely_used(codes, min_usage):
    """Atoms used by fewer than ``min_usage`` x (mean number of signals per atom) signals of the batch."""
    usage = jnp.sum(codes != 0, axis=0).astype(codes.dtype)
    return usage < min_usage * jnp.mean(usage)


def _metrics(D, Y, codes, lam=None):
    R = Y - codes @ D.T
    sq = jnp.sum(R * R, axis=1)
    nnz = jnp.sum(codes != 0, axis=1).astype(Y.dtype)
    loss = 0.5 * jnp.mean(sq)
    if lam is not None:
        loss = loss + lam * jnp.mean(jnp.sum(jnp.abs(codes), axis=1))
    return {
        "loss": loss,
        "rel_error": representation_error(D, Y, codes),
        "nnz": jnp.mean(nnz),
        "sparsity": 1.0 - jnp.mean(nnz) / codes.shape[1],
    }


def _batch(Y, key, batch_size, shuffle=True, t=None):
    """A mini-batch of ``batch_size`` distinct rows of Y (the whole of Y when batch_size is None).

    ``shuffle=False``: the rows in their order, batch t (0-based, ``t`` traced) taking rows
    (t b + i) mod N, i < b, cycling through Y (the key is left as it is).
    """
    if batch_size is None or batch_size >= Y.shape[0]:
        return Y, key
    if not shuffle:
        N = Y.shape[0]
        start = (jnp.asarray(t).astype(jnp.int32) * batch_size) % N
        return Y[(start + jnp.arange(batch_size)) % N], key
    key, sub = jax.random.split(key)
    idx = jax.random.choice(sub, Y.shape[0], (batch_size,), replace=False)
    return Y[idx], key


def _omp_codes(D, Y, k):
    return omp_batch(D, Y, k=k).codes


def _coder(coder, sparsity):
    """The coder a step uses: ``coder`` when given, else OMP with ``sparsity`` or the Lasso."""
    if coder is None:
        return "omp" if sparsity is not None else "lasso"
    return coder


def _codes(D, Y, *, coder, sparsity, lam, positive_code):
    """Codes of the rows of Y: Batch-OMP with ``sparsity`` atoms, or the Lasso with ``lam`` (``lasso_batch``:
    "lasso" its default path, "lars" / "lasso_lars" the LARS homotopy), non-negative with ``positive_code``."""
    if coder == "omp":
        return omp_batch(D, Y, k=sparsity).codes
    method = "auto" if coder == "lasso" else "homotopy"
    return lasso_batch(D, Y, lam, method=method, prox="nonneg_soft" if positive_code else "soft").codes


# ----------------------------------------------------------------------------------------------
# dictionary updates
# ----------------------------------------------------------------------------------------------

def mod_update(Y, codes) -> jax.Array:
    """MOD dictionary update (Engan et al. 1999): D = argmin_D ||Y^T - D A^T||_F^2 = Y^T A (A^T A)^{-1}.

    Solved through the normal equations (A^T A) D^T = A^T Y (a Cholesky-sized m x m solve; an atom that
    no signal uses gets a zero column). Not normalised.

    Args:
      Y: (N, n) signals as rows.
      codes: (N, m) codes as rows.

    Returns:
      (n, m) dictionary.

    Example: exact codes give back the dictionary.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.dense import mod_update
      >>> D = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
      >>> A = jax.random.normal(jax.random.PRNGKey(1), (20, 3))
      >>> bool(jnp.allclose(mod_update(A @ D.T, A), D, atol=1e-4))
      True
    """
    G = codes.T @ codes
    used = jnp.diagonal(G) > 0
    G = G + jnp.diag(jnp.where(used, 0.0, 1.0).astype(G.dtype))       # unused atoms: zero rows of A^T Y
    return jnp.linalg.solve(G, codes.T @ Y).T


def ksvd_dictionary_update(D, Y, codes, *, positive_dict: bool = False, positive_code: bool = False):
    """The K-SVD dictionary stage (Aharon, Elad & Bruckstein 2006) for fixed supports.

    For j = 1..m (``lax.fori_loop``), with omega_j the signals whose code uses atom j:

        E_j = Y^T - sum_{i != j} d_i a^i   (residual without atom j),  restricted to the columns in omega_j,
        E_j^R = u s v^T + ...   (rank-1 SVD),   d_j <- u,   a^j_R <- s v^T,

    (u = the top eigenvector of the n x n matrix E_j^R E_j^R^T, s v^T = u^T E_j^R: the same rank-1 SVD,
    at O(N n^2) instead of an SVD of the n x N matrix),

    which minimises ||Y^T - D A^T||_F over (d_j, a^j) with supp(a^j) kept, so the representation error
    never increases. Restriction is a column mask (no gather of a variable number of signals). Atoms
    that no signal uses are left for the caller (their code row is zero).

    Non-negative variants (projected, in the spirit of the NN-K-SVD of Aharon, Elad & Bruckstein, SPIE 2005):
    ``positive_dict`` takes the sign of u with the larger non-negative part, clips it to u >= 0 and renormalises;
    ``positive_code`` clips s v^T to >= 0 (for a unit atom the best non-negative codes of fixed support). The
    projected pair replaces (d_j, a^j) only when it does not increase ||E_j - a^j d_j^T||, so the error still
    never grows.

    Args:
      D: (n, m) dictionary.
      Y: (N, n) signals as rows.
      codes: (N, m) codes as rows.
      positive_dict, positive_code: keep atoms / codes non-negative (static Python bools).

    Returns:
      (D_new, codes_new, unused) with ``unused`` the (m,) mask of atoms with no user.

    Example: the representation error does not grow, an atom nobody uses is flagged.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.learn.dense import ksvd_dictionary_update, representation_error
      >>> D = sj.normalize_atoms(jax.random.normal(jax.random.PRNGKey(0), (6, 4)))
      >>> Y = jax.random.normal(jax.random.PRNGKey(1), (30, 6))
      >>> codes = sj.omp_batch(D[:, :3], Y, k=2).codes
      >>> codes = jnp.concatenate([codes, jnp.zeros((30, 1))], axis=1)        # atom 3 unused
      >>> D1, C1, unused = ksvd_dictionary_update(D, Y, codes)
      >>> bool(representation_error(D1, Y, C1) <= representation_error(D, Y, codes)), unused.tolist()
      (True, [False, False, False, True])
    """
    R0 = Y - codes @ D.T                                        # (N, n)

    def atom(j, carry):
        D, C, R = carry
        d, a = D[:, j], C[:, j]
        users = a != 0
        E = (R + a[:, None] * d[None, :]) * users[:, None]        # rows outside omega_j zeroed
        _, vecs = jnp.linalg.eigh(E.T @ E)                       # right singular vectors of E^T
        u = vecs[:, -1]
        u = jnp.where(jnp.dot(u, d) < 0, -u, u)                    # keep the sign of the old atom
        if positive_dict:
            pos, neg = jnp.maximum(u, 0.0), jnp.maximum(-u, 0.0)
            u = jnp.where(jnp.sum(neg * neg) > jnp.sum(pos * pos), neg, pos)
            nu = jnp.linalg.norm(u)
            u = jnp.where(nu > 0, u / jnp.where(nu > 0, nu, 1.0), d)
        a_new = E @ u                                             # = s v on omega_j, 0 elsewhere
        if positive_code:
            a_new = jnp.maximum(a_new, 0.0)
        keep = jnp.any(users)
        if positive_dict or positive_code:                        # accept only if ||E - a d^T|| does not grow
            Ed = E @ d
            old = -2.0 * jnp.dot(a, Ed) + jnp.dot(a, a) * jnp.dot(d, d)
            new = -2.0 * jnp.dot(a_new, E @ u) + jnp.dot(a_new, a_new) * jnp.dot(u, u)
            keep = keep & (new <= old)
        d_new = jnp.where(keep, u, d)
        a_new = jnp.where(keep, a_new, a)
        R = R + a[:, None] * d[None, :] - a_new[:, None] * d_new[None, :]
        return D.at[:, j].set(d_new), C.at[:, j].set(a_new), R

    D, C, _ = lax.fori_loop(0, D.shape[1], atom, (D, codes, R0))
    unused = ~jnp.any(C != 0, axis=0)
    return D, C, unused


def online_dictionary_update(D, stats: OnlineStats, n_sweeps: int = 1, positive: bool = False):
    """Block coordinate descent of Mairal et al., "Online learning for matrix factorization and sparse coding",
    JMLR 2010 (Algorithm 2) on min_D 1/2 Tr(D^T D A) - Tr(D^T B), ||d_j|| <= 1:

        u_j = d_j + (b_j - D a_j) / A_jj,   d_j = u_j / max(||u_j||_2, 1),

    atoms with A_jj = 0 (unused since the statistics were reset) are left unchanged. ``positive``: u_j is
    clipped to u_j >= 0 before the scaling (the projected block step of scikit-learn's ``positive_dict``).

    Args:
      D: (n, m) current dictionary (warm start).
      stats: ``OnlineStats`` (A (m, m), B (n, m)).
      n_sweeps: static number of passes over the atoms.
      positive: keep the atoms non-negative (static).

    Returns:
      (n, m) updated dictionary.

    Example: with A = I and B = T (a unit-norm target) one sweep reaches D = T.
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.dense import OnlineStats, online_dictionary_update
      >>> T = jnp.array([[0.6, 0.0], [0.8, 1.0]])
      >>> online_dictionary_update(jnp.zeros((2, 2)), OnlineStats(jnp.eye(2), T, jnp.asarray(1.0))).round(4).tolist()
      [[0.6, 0.0], [0.8, 1.0]]
    """
    D = V.as_float_array("D", D)
    A, B = jnp.asarray(stats.A, D.dtype), jnp.asarray(stats.B, D.dtype)    # NumPy statistics: indexed by tracers
    m = D.shape[1]

    def atom(i, D):
        j = i % m
        ajj = A[j, j]
        u = D[:, j] + (B[:, j] - D @ A[:, j]) / jnp.where(ajj > 0, ajj, 1.0)
        if positive:
            u = jnp.maximum(u, 0.0)
        u = u / jnp.maximum(jnp.linalg.norm(u), 1.0)
        return D.at[:, j].set(jnp.where(ajj > 0, u, D[:, j]))

    return lax.fori_loop(0, n_sweeps * m, atom, D)


# ----------------------------------------------------------------------------------------------
# jitted steps: (state, Y, ...) -> (state, metrics)
# ----------------------------------------------------------------------------------------------

_STEP_STATIC = ("sparsity", "batch_size", "dup_threshold", "coder", "positive_code", "positive_dict")


@partial(jax.jit, static_argnames=_STEP_STATIC)
def mod_step(state: DictState, Y, lam=None, *, sparsity: int | None = None, batch_size: int | None = None,
             dup_threshold: float = 0.99, min_usage=0.0, coder: str | None = None, positive_code: bool = False,
             positive_dict: bool = False):
    """One MOD iteration: Batch-OMP codes with ``sparsity`` atoms (or Lasso codes with ``lam``),
    D = Y^T A (A^T A)^{-1}, unit-norm atoms, unused and duplicated atoms replaced by the worst-represented signals.

    Args:
      state: ``DictState``.
      Y: (N, n) signals as rows.
      lam: l1 weight of a Lasso coder (traced).
      sparsity: atoms per signal of the OMP coder (static).
      batch_size: signals per step drawn without replacement (None: all).
      dup_threshold: replace an atom with |<d_i, d_j>| above this for an earlier atom (>= 1: never).
      min_usage: also replace atoms used by fewer than this fraction of the mean usage.
      coder: "omp" (needs ``sparsity``), "lasso" (``lasso_batch``), "lars" / "lasso_lars" (``lasso_batch`` by its
        LARS homotopy); default "omp" when ``sparsity`` is given, else "lasso".
      positive_code: non-negative Lasso codes (not with OMP).
      positive_dict: non-negative atoms: the least-squares dictionary is clipped to D >= 0 before the
        normalisation (a projection of the MOD update, not the non-negative least-squares solution).

    Returns:
      (new_state, metrics) with metrics loss = mean 1/2||y - D a||^2, rel_error, nnz, sparsity (measured at the
      sparse-coding stage, with the dictionary on entry), replaced.

    Engan, Aase & Husoy, "Method of optimal directions for frame design", ICASSP 1999.

    Example:
      >>> import jax
      >>> from sparsejax.learn import dense
      >>> Y = jax.random.normal(jax.random.PRNGKey(0), (40, 6))
      >>> st = dense.init_state("mod", dense.init_dictionary(Y, 8, jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
      >>> st, metrics = dense.mod_step(st, Y, sparsity=2)
      >>> st.D.shape, sorted(metrics)
      ((6, 8), ['loss', 'nnz', 'rel_error', 'replaced', 'sparsity'])
    """
    Yb, key = _batch(Y, state.key, batch_size)
    coder = _coder(coder, sparsity)
    codes = _codes(state.D, Yb, coder=coder, sparsity=sparsity, lam=lam, positive_code=positive_code)
    metrics = _metrics(state.D, Yb, codes, None if coder == "omp" else lam)
    D = mod_update(Yb, codes)
    if positive_dict:
        D = jnp.maximum(D, 0.0)
    norms = jnp.linalg.norm(D, axis=0)
    unused = (norms <= jnp.finfo(D.dtype).eps * jnp.max(norms)) | ~jnp.any(codes != 0, axis=0)
    D = jnp.where(unused[None, :], state.D, D)
    D = normalize_atoms(D)
    R = Yb - codes @ D.T
    bad = unused | _rarely_used(codes, min_usage) | (_duplicates(D, dup_threshold) if dup_threshold < 1 else False)
    D, replaced = _replace_atoms(D, bad, Yb, R, positive_dict)
    metrics["replaced"] = jnp.sum(replaced).astype(Y.dtype)
    return DictState(D, state.stats, key), metrics


@partial(jax.jit, static_argnames=_STEP_STATIC)
def ksvd_step(state: DictState, Y, lam=None, *, sparsity: int | None = None, batch_size: int | None = None,
              dup_threshold: float = 0.99, min_usage=0.0, coder: str | None = None, positive_code: bool = False,
              positive_dict: bool = False):
    """One K-SVD iteration (Aharon, Elad & Bruckstein, "K-SVD: an algorithm for designing overcomplete dictionaries
    for sparse representation", IEEE TSP 2006): Batch-OMP codes with ``sparsity`` atoms, the atom-by-atom rank-1 SVD
    update (``ksvd_dictionary_update``), then unused atoms and atoms duplicating an earlier one
    (|<d_i, d_j>| > ``dup_threshold``) replaced by the worst-represented signals.

    Args: as ``mod_step``; ``positive_dict`` / ``positive_code`` as in ``ksvd_dictionary_update`` (the codes
    are non-negative from the coder already with ``positive_code``).

    Returns:
      (new_state, metrics), metrics as in ``mod_step`` plus ``rel_error_after`` (after the dictionary stage).

    Example:
      >>> import jax
      >>> from sparsejax.learn import dense
      >>> Y = jax.random.normal(jax.random.PRNGKey(0), (40, 6))
      >>> st = dense.init_state("ksvd", dense.init_dictionary(Y, 8, jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
      >>> st, metrics = dense.ksvd_step(st, Y, sparsity=2)
      >>> bool(metrics["rel_error_after"] <= metrics["rel_error"])
      True
    """
    Yb, key = _batch(Y, state.key, batch_size)
    coder = _coder(coder, sparsity)
    codes = _codes(state.D, Yb, coder=coder, sparsity=sparsity, lam=lam, positive_code=positive_code)
    metrics = _metrics(state.D, Yb, codes, None if coder == "omp" else lam)
    D, C, unused = ksvd_dictionary_update(state.D, Yb, codes, positive_dict=positive_dict,
                                          positive_code=positive_code)
    metrics["rel_error_after"] = representation_error(D, Yb, C)
    R = Yb - C @ D.T
    bad = unused | _rarely_used(C, min_usage) | (_duplicates(D, dup_threshold) if dup_threshold < 1 else False)
    D, replaced = _replace_atoms(D, bad, Yb, R, positive_dict)
    metrics["replaced"] = jnp.sum(replaced).astype(Y.dtype)
    return DictState(D, state.stats, key), metrics


@partial(jax.jit, static_argnames=_STEP_STATIC + ("n_sweeps", "shuffle"))
def online_step(state: DictState, Y, lam=None, *, sparsity: int | None = None, batch_size: int | None = None,
                forget=1.0, n_sweeps: int = 1, dup_threshold: float = 0.99, min_usage=0.0, coder: str | None = None,
                positive_code: bool = False, positive_dict: bool = False, shuffle: bool = True):
    """One mini-batch of online dictionary learning (Mairal, Bach, Ponce & Sapiro, "Online learning for matrix
    factorization and sparse coding", JMLR 2010).

    Codes a_i of the mini-batch (Batch-OMP with ``sparsity`` atoms when given, else the Lasso with ``lam``
    by ``lasso_batch``; ``coder`` as in ``mod_step``), then with t <- t + 1 and beta_t = (1 - 1/t)^forget

        A_t = beta_t A_{t-1} + mean_i a_i a_i^T,    B_t = beta_t B_{t-1} + mean_i y_i a_i^T,

    and ``n_sweeps`` passes of block coordinate descent (``online_dictionary_update``). An atom never used
    (A_jj = 0) or duplicating an earlier one is replaced by the worst-represented signal of the batch and
    its statistics are reset.

    Args:
      state: ``DictState`` whose ``stats`` are ``OnlineStats``.
      Y: (N, n) signals as rows; lam: l1 weight of the Lasso coder (when ``sparsity`` is None).
      sparsity: atoms per signal of the OMP coder (static), or None.
      batch_size: mini-batch size (None: all of Y); forget: the exponent rho of beta_t;
      n_sweeps: coordinate-descent passes (static); dup_threshold, min_usage: as ``mod_step``.
      coder, positive_code: as ``mod_step``; positive_dict: projected block steps (``online_dictionary_update``).
      shuffle: True: each mini-batch drawn at random (the state's key); False: the rows of Y in order, mini-batch
        t taking rows (t b + i) mod N (t = ``state.stats.t``), so a run is a deterministic pass through Y.

    Returns:
      (new_state, metrics) as in ``mod_step``.

    Example:
      >>> import jax
      >>> from sparsejax.learn import dense
      >>> Y = jax.random.normal(jax.random.PRNGKey(0), (40, 6))
      >>> st = dense.init_state("online", dense.init_dictionary(Y, 8, jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
      >>> st, metrics = dense.online_step(st, Y, sparsity=2, batch_size=16)
      >>> float(st.stats.t), st.stats.A.shape
      (1.0, (8, 8))
    """
    st: OnlineStats = state.stats
    Yb, key = _batch(Y, state.key, batch_size, shuffle, st.t)
    coder = _coder(coder, sparsity)
    Dn = normalize_atoms(state.D)
    if coder == "omp":
        codes = _omp_codes(Dn, Yb, sparsity)
    else:
        codes = _codes(state.D, Yb, coder=coder, sparsity=sparsity, lam=lam, positive_code=positive_code)
        Dn = state.D
    metrics = _metrics(Dn, Yb, codes, None if coder == "omp" else lam)
    if coder == "omp":                       # codes for the normalised atoms -> codes for D
        codes = codes / jnp.maximum(jnp.linalg.norm(state.D, axis=0), jnp.finfo(Y.dtype).tiny)[None, :]
    t = st.t + 1
    beta = (1.0 - 1.0 / t) ** forget
    nb = Yb.shape[0]
    A = beta * st.A + codes.T @ codes / nb
    B = beta * st.B + Yb.T @ codes / nb
    D = online_dictionary_update(state.D, OnlineStats(A, B, t), n_sweeps, positive_dict)
    R = Yb - codes @ D.T
    bad = (jnp.diagonal(A) <= 0) | _rarely_used(codes, min_usage)
    bad = bad | (_duplicates(D, dup_threshold) if dup_threshold < 1 else False)
    D, replaced = _replace_atoms(D, bad, Yb, R, positive_dict)
    A = jnp.where(replaced[:, None] | replaced[None, :], 0.0, A)
    B = jnp.where(replaced[None, :], 0.0, B)
    metrics["replaced"] = jnp.sum(replaced).astype(Y.dtype)
    return DictState(D, OnlineStats(A, B, t), key), metrics




def _batch_lasso_codes(D, Y, lam, mode, grad, max_iter, tol):
    L = jnp.linalg.norm(D, 2) ** 2                                  # ||D||_2^2, once for the batch
    return jax.vmap(lambda y: lasso_codes(D, y, lam, mode=mode, grad=grad, max_iter=max_iter, tol=tol, L=L))(Y)


@partial(jax.jit, static_argnames=("mode", "grad", "max_iter"))
def _optax_codes(D, Y, lam, *, mode, grad, max_iter, tol=1e-6):
    return _batch_lasso_codes(D, Y, lam, mode, grad, max_iter, tol)


@partial(jax.jit, static_argnames=("optimizer", "batch_size", "mode", "grad", "max_iter"))
def optax_step(state: DictState, Y, lam, *, optimizer, batch_size: int | None = None, mode: str | None = None,
               max_iter: int = 100, tol=1e-6, grad: str | None = None):
    """One Optax step on L(D) = mean_i [1/2 ||y_i - D a_i(D)||^2 + lam ||a_i(D)||_1], a_i(D) the Lasso codes
    of a differentiable pursuit (``sparsejax.differentiate.lasso_codes`` with its ``mode``), then
    D <- normalise(optax.apply_updates(D, updates)).

    Args:
      state: ``DictState`` whose ``stats`` is ``optimizer.init(D)``.
      Y: (N, n) signals; lam: l1 weight (traced).
      optimizer: an ``optax.GradientTransformation`` (static: hashed by identity).
      batch_size: mini-batch size (None: all of Y).
      mode: how the codes are differentiated, one of ``sparsejax.solve.MODES`` (default "scan", unrolled).
      max_iter, tol: the pursuit's iterations and tolerance (``lasso_codes``).
      grad: deprecated alias of ``mode`` ("unrolled", "checkpointed", "implicit").

    Returns:
      (new_state, metrics) as in ``mod_step`` (loss includes lam ||a||_1), plus ``grad_norm``.

    Example:
      >>> import jax
      >>> import optax
      >>> from sparsejax.learn import dense
      >>> Y = jax.random.normal(jax.random.PRNGKey(0), (16, 6))
      >>> opt = optax.adam(1e-2)
      >>> D0 = dense.init_dictionary(Y, 8, jax.random.PRNGKey(1))
      >>> st = dense.init_state("optax", D0, jax.random.PRNGKey(2), optimizer=opt)
      >>> st, metrics = dense.optax_step(st, Y, 0.1, optimizer=opt, max_iter=20)
      >>> st.D.shape, bool(metrics["grad_norm"] > 0)
      ((6, 8), True)
    """

    Yb, key = _batch(Y, state.key, batch_size)

    def loss_fn(D):
        codes = _batch_lasso_codes(D, Yb, lam, mode, grad, max_iter, tol)
        R = Yb - codes @ D.T
        loss = 0.5 * jnp.mean(jnp.sum(R * R, axis=1)) + lam * jnp.mean(jnp.sum(jnp.abs(codes), axis=1))
        return loss, codes

    (_, codes), g = jax.value_and_grad(loss_fn, has_aux=True)(state.D)
    metrics = _metrics(state.D, Yb, codes, lam)
    updates, opt_state = optimizer.update(g, state.stats, state.D)
    D = normalize_atoms(optax.apply_updates(state.D, updates))
    metrics["grad_norm"] = jnp.linalg.norm(g)
    return DictState(D, opt_state, key), metrics


# ----------------------------------------------------------------------------------------------
# front door
# ----------------------------------------------------------------------------------------------

@partial(jax.jit, static_argnames=("n_atoms", "kind", "positive"))
def _init_jit(Y, key, *, n_atoms, kind, positive=False):
    # the random draws do not depend on Y's dtype: float32 and float64 runs start from the same atoms
    N, n = Y.shape
    R = jax.random.normal(jax.random.fold_in(key, 1) if kind == "data" else key, (n, n_atoms),
                          jnp.float32).astype(Y.dtype)
    if kind == "random":
        D = R
    else:                                       # distinct nonzero signals, in a random order
        order = jax.random.permutation(key, N)
        zero = jnp.sum(Y * Y, axis=1)[order] == 0
        take = min(N, n_atoms)
        idx = order[jnp.argsort(zero, stable=True)[:take]]                # nonzero signals first
        D = Y[idx].T
        if take < n_atoms:                      # more atoms than signals: Gaussian atoms for the rest
            D = jnp.concatenate([D, R[:, take:]], axis=1)
        # zero signals (fewer nonzero signals than atoms): Gaussian atoms instead
        D = jnp.where(jnp.sum(D * D, axis=0)[None, :] > 0, D, R)
    if positive:
        D = jnp.abs(D)
    return normalize_atoms(D)


def init_dictionary(Y, n_atoms: int, key, init="data", *, normalize: bool = True,
                    positive: bool = False) -> jax.Array:
    """Initial dictionary: ``"data"`` = ``n_atoms`` distinct signals drawn at random, normalised (as in the
    K-SVD paper, Aharon, Elad & Bruckstein, IEEE TSP 2006; with more atoms than nonzero signals the rest are
    unit-norm Gaussian atoms); ``"random"`` = unit-norm Gaussian atoms; or an (n, n_atoms) array (normalised
    unless ``normalize=False``).

    Args:
      Y: (N, n) signals as rows.
      n_atoms: m (may exceed N).
      key: PRNG key.
      init: "data", "random" or an (n, m) array.
      normalize: False: an array ``init`` is used exactly as given (only cast to Y's dtype).
      positive: non-negative atoms: the generated inits take absolute values; an array ``init`` with a negative
        entry is refused (ValueError), never clipped silently.

    Returns:
      (n, m) dictionary (unit-norm atoms, except an array init with ``normalize=False``).

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.dense import init_dictionary
      >>> Y = jax.random.normal(jax.random.PRNGKey(0), (20, 5))
      >>> D = init_dictionary(Y, 7, jax.random.PRNGKey(1))
      >>> D.shape, bool(jnp.allclose(jnp.linalg.norm(D, axis=0), 1.0, atol=1e-5))
      ((5, 7), True)
    """
    Y = jnp.asarray(Y)
    n = Y.shape[1]
    if isinstance(init, str):
        V.check_choice("init", init, ("data", "random"))
        return _init_jit(Y, key, n_atoms=n_atoms, kind=init, positive=bool(positive))
    D = V.as_float_array("init", init)
    V.check_shape("init", D, (n, n_atoms), "initial dictionary (n, n_atoms)")
    V.check_finite("init", D)
    if positive and bool(jnp.any(D < 0)):
        raise ValueError("init has negative entries but positive_dict=True asks for a non-negative dictionary: "
                         "give a non-negative init (it is not clipped silently)")
    D = D.astype(Y.dtype)
    return normalize_atoms(D) if normalize else D


def init_state(method: str, D, key, *, optimizer=None) -> DictState:
    """The initial ``DictState`` of a method for the dictionary ``D`` (n, m): empty statistics for "mod" / "ksvd",
    zero ``OnlineStats`` for "online", ``optimizer.init(D)`` for "optax".

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optax
      >>> from sparsejax.learn.dense import init_state
      >>> st = init_state("optax", jnp.eye(3), jax.random.PRNGKey(0), optimizer=optax.sgd(0.1))
      >>> st.D.shape, type(st.stats).__name__
      ((3, 3), 'tuple')
    """
    V.check_choice("method", method, METHODS)
    D = jnp.asarray(D)
    n, m = D.shape
    if method == "online":
        stats = OnlineStats(jnp.zeros((m, m), D.dtype), jnp.zeros((n, m), D.dtype), jnp.zeros((), D.dtype))
    elif method == "optax":
        stats = optimizer.init(D)
    else:
        stats = ()
    return DictState(D, stats, key)


def _check_inputs(Y, n_atoms, method, sparsity, lam, n_steps, batch_size):
    Y = V.as_float_array("Y", Y)
    V.check_ndim("Y", Y, (2,), "signals as rows: (N, n)")
    N, n = Y.shape
    if N < 1:
        raise ValueError("Y must hold at least one signal (a row)")
    n_atoms = V.check_positive_int("n_atoms", n_atoms)
    V.check_choice("method", method, METHODS)
    V.check_finite("Y", Y)
    n_steps = V.check_int("n_steps", n_steps)
    if batch_size is not None:
        batch_size = V.check_positive_int("batch_size", batch_size, N, "number of signals")
    if sparsity is not None:
        sparsity = V.check_positive_int("sparsity", sparsity, min(n, n_atoms), "min(signal dimension, n_atoms)")
    if lam is not None:
        lam = V.check_nonnegative_scalar("lam", lam).astype(Y.dtype)
    if method == "ksvd" and sparsity is None:
        raise ValueError("method='ksvd' codes with OMP (its atom update keeps the supports): give sparsity (atoms "
                         "per signal, an int)")
    if method == "mod" and sparsity is None and lam is None:
        raise ValueError("method='mod' needs sparsity (OMP codes, atoms per signal) or lam (Lasso codes)")
    if method == "optax" and lam is None:
        raise ValueError("method='optax' learns through the Lasso: give lam (l1 weight >= 0)")
    if method == "online" and sparsity is None and lam is None:
        raise ValueError("method='online' needs sparsity (OMP codes) or lam (Lasso codes)")
    return Y, n_atoms, sparsity, lam, n_steps, batch_size


def _check_coder(method, coder, sparsity, lam, positive_code, positive_dict):
    """The coder options before tracing: returns the coder name ("omp", "lasso", "lars", "lasso_lars")."""
    for name, v in (("positive_code", positive_code), ("positive_dict", positive_dict)):
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {type(v).__name__}")
    if method == "optax":
        if coder is not None or positive_code or positive_dict:
            raise ValueError("method='optax' learns through its differentiable Lasso: coder, positive_code and "
                             "positive_dict need method 'ksvd', 'mod' or 'online'")
        return None
    if coder is not None:
        V.check_choice("coder", coder, CODERS)
    coder = _coder(coder, sparsity)
    if method == "ksvd" and coder != "omp":
        raise ValueError(f"method='ksvd' codes with OMP (its atom update keeps the supports), got coder={coder!r}: "
                         "use method 'mod' or 'online' for a Lasso / LARS coder")
    if coder == "omp" and sparsity is None:
        raise ValueError("coder='omp' needs sparsity (atoms per signal, an int)")
    if coder != "omp" and lam is None:
        raise ValueError(f"coder={coder!r} is a Lasso coder: give lam (l1 weight >= 0)")
    if coder == "omp" and positive_code:
        raise ValueError("positive_code=True needs a Lasso coder (coder='lasso' or 'lars' with lam): OMP codes "
                         "are signed (as scikit-learn, which refuses positive codes with OMP)")
    return coder


def _check_optax_pursuit(mode, grad, max_iter):
    """The Optax learner's pursuit arguments before tracing: ``mode`` one of ``sparsejax.solve.MODES``, ``grad``
    (its deprecated alias) one of ``sparsejax.differentiate.GRAD_MODES``, ``max_iter`` a positive int
    (``lasso_codes`` maps ``grad`` to its ``mode`` and refuses both at once)."""
    check_iteration(max_iter, mode=mode, min_iter=1)
    if grad is not None:
        V.check_choice("grad", grad, GRAD_MODES)


def learn_dictionary(Y, n_atoms: int, *, method: str = "ksvd", sparsity: int | None = None, lam=None,
                     n_steps: int = 50, batch_size: int | None = None, key=None, init="data", optimizer=None,
                     forget: float = 10.0, n_sweeps: int = 1, mode: str | None = None, max_iter: int = 100,
                     dup_threshold: float = 0.99, min_usage: float = 0.0, checkpoint_dir=None,
                     checkpoint_every: int = 50,
                     resume: bool = True, progress: bool = True, stop_after: int | None = None,
                     return_codes: bool = True, grad: str | None = None, coder: str | None = None,
                     positive_code: bool = False, positive_dict: bool = False, shuffle: bool = True,
                     normalize: bool = True) -> DictLearnResult:
    """Learn an (n, n_atoms) dictionary for the signals in the rows of ``Y`` (MOD, K-SVD, online or Optax).

    Runs ``n_steps`` of ``<method>_step`` through ``sparsejax.learn.loop.run_loop`` (progress bar, atomic
    checkpoints of the full state every ``checkpoint_every`` steps, exact resume, divergence stop).

    Args:
      Y: (N, n) training signals, one per row (finite; N may be smaller than n_atoms: the "data" init then
        fills the missing atoms with Gaussian ones, and unused atoms keep being replaced by signals).
      n_atoms: number of atoms m.
      method: "ksvd" (Aharon, Elad & Bruckstein, IEEE TSP 2006), "mod" (Engan, Aase & Husoy, ICASSP 1999),
        "online" (Mairal, Bach, Ponce & Sapiro, JMLR 2010) or "optax" (gradient-based through a differentiable
        Lasso).
      sparsity: atoms per signal for the OMP coder (the default coder when given).
      lam: l1 weight of the Lasso coder ("optax", and the other methods without ``sparsity``), per signal:
        1/2 ||y - D a||^2 + lam ||a||_1 (scikit-learn's ``alpha``).
      n_steps: iterations (full passes for ksvd / mod, mini-batches for online / optax); 0 returns the initial
        dictionary (with ``normalize=False`` and an array ``init``: that array unchanged).
      batch_size: signals per step (default: all for ksvd / mod, min(N, 256) for online / optax).
      key: PRNG key (initialisation and mini-batches); default PRNGKey(0).
      init: "data" (random signals, normalised), "random" or an (n, n_atoms) array.
      optimizer: Optax optimiser for "optax" (default ``optax.adam(3e-2)``).
      forget: online forgetting exponent rho in beta_t = (1 - 1/t)^rho.
      n_sweeps: online block-coordinate-descent sweeps per mini-batch.
      mode, max_iter: how the "optax" pursuit is differentiated (one of ``sparsejax.solve.MODES``, default "scan":
        unrolled) and its iterations (``sparsejax.differentiate.lasso_codes``).
      dup_threshold: replace an atom with |<d_i, d_j>| above this for an earlier atom i (>= 1: never).
      min_usage: also replace atoms used by fewer than ``min_usage`` x (mean signals per atom) signals of the
        batch (0: only unused atoms; ~0.25 escapes the "dead atom" local minima of planted problems).
      checkpoint_dir, checkpoint_every, resume, progress, stop_after: passed to ``run_loop``.
      return_codes: also code all of ``Y`` with the learned dictionary (the coder of the run).
      grad: deprecated alias of ``mode`` ("unrolled", "checkpointed", "implicit").
      coder: "omp" (``sparsity``), "lasso" (``lasso_batch``, ``lam``) or "lars" / "lasso_lars" (``lasso_batch``'s
        LARS homotopy, ``lam``); default "omp" when ``sparsity`` is given, else "lasso". Not for "optax".
      positive_code: non-negative codes (a Lasso coder; scikit-learn's ``positive_code``).
      positive_dict: non-negative atoms (scikit-learn's ``positive_dict``): projected updates (online: clipped
        block steps as scikit-learn; MOD: the clipped least-squares update; K-SVD: the clipped rank-1 atom,
        accepted when it lowers the error); the "data" / "random" inits take absolute values.
      shuffle: "online" mini-batches drawn at random (True) or taken in the order of Y, cycling (False:
        deterministic, as scikit-learn's ``shuffle=False``); with "ksvd" / "mod" only without ``batch_size``.
      normalize: True: an array ``init`` and the learned dictionary have unit-norm atoms. False: the init is
        used exactly as given and the dictionary is returned as the method leaves it (MOD / K-SVD unit atoms
        after a step, online ||d_j|| <= 1 as scikit-learn).

    Returns:
      ``DictLearnResult(dictionary, codes, loop, method)``.

    Example: K-SVD recovers a planted dictionary from 300 signals of 2 atoms each.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.learn.dense import atom_recovery, learn_dictionary
      >>> k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
      >>> D = sj.normalize_atoms(jax.random.normal(k1, (10, 12)))
      >>> support = jax.vmap(lambda k: jax.random.choice(k, 12, (2,), replace=False))(jax.random.split(k2, 300))
      >>> A = jnp.zeros((300, 12)).at[jnp.arange(300)[:, None], support].set(jax.random.normal(k3, (300, 2)))
      >>> res = learn_dictionary(A @ D.T, 12, sparsity=2, n_steps=40, progress=False, key=jax.random.PRNGKey(1))
      >>> res.loop.status, res.dictionary.shape, atom_recovery(res.dictionary, D) >= 0.9
      ('completed', (10, 12), True)
    """
    Y, n_atoms, sparsity, lam, n_steps, batch_size = _check_inputs(Y, n_atoms, method, sparsity, lam, n_steps,
                                                                    batch_size)
    coder = _check_coder(method, coder, sparsity, lam, positive_code, positive_dict)
    if method == "optax":
        _check_optax_pursuit(mode, grad, max_iter)
    if not isinstance(shuffle, (bool, np.bool_)) or not isinstance(normalize, (bool, np.bool_)):
        raise TypeError(f"shuffle and normalize must be bools, got {type(shuffle).__name__} and "
                        f"{type(normalize).__name__}")
    if not shuffle and method in ("ksvd", "mod") and batch_size is not None and batch_size < Y.shape[0]:
        raise ValueError(f"shuffle=False orders mini-batches of method 'online'; method={method!r} with "
                         "batch_size draws them at random: leave batch_size=None (all signals every step)")
    if not shuffle and method == "optax":
        raise ValueError("shuffle=False needs method 'online' (or 'ksvd' / 'mod' without batch_size)")
    positive_code, positive_dict = bool(positive_code), bool(positive_dict)

    key = jax.random.PRNGKey(0) if key is None else key
    key, sub = jax.random.split(key)
    D0 = init_dictionary(Y, n_atoms, sub, init, normalize=normalize, positive=positive_dict)
    if method in ("online", "optax") and batch_size is None:
        batch_size = min(Y.shape[0], 256)
    if method == "optax":
        if optimizer is None:
            optimizer = optax.adam(3e-2)
        state = init_state(method, D0, key, optimizer=optimizer)
    else:
        state = init_state(method, D0, key)

    opts = dict(coder=coder, positive_code=positive_code, positive_dict=positive_dict)
    if coder == "omp":
        sparse_kw = dict(sparsity=sparsity)
    else:                                          # a Lasso coder: sparsity (if also given) is not used
        sparse_kw = dict(sparsity=None, lam=lam)
    if method == "mod":
        step = partial(mod_step, Y=Y, batch_size=batch_size, dup_threshold=dup_threshold,
                       min_usage=jnp.asarray(min_usage, Y.dtype), **sparse_kw, **opts)
    elif method == "ksvd":
        step = partial(ksvd_step, Y=Y, batch_size=batch_size, dup_threshold=dup_threshold,
                       min_usage=jnp.asarray(min_usage, Y.dtype), **sparse_kw, **opts)
    elif method == "online":
        step = partial(online_step, Y=Y, batch_size=batch_size, forget=jnp.asarray(forget, Y.dtype),
                       n_sweeps=n_sweeps, dup_threshold=dup_threshold, min_usage=jnp.asarray(min_usage, Y.dtype),
                       shuffle=bool(shuffle), **sparse_kw, **opts)
    else:
        step = partial(optax_step, Y=Y, lam=lam, optimizer=optimizer, batch_size=batch_size, mode=mode, grad=grad,
                       max_iter=max_iter)

    loop = run_loop(step, state, n_steps, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                    resume=resume, progress=progress, desc=f"{method} dictionary learning", stop_after=stop_after)
    D = normalize_atoms(loop.state.D) if normalize else loop.state.D
    codes = None
    if return_codes:
        if method == "optax":                    # the pursuit the dictionary was trained with
            codes = (omp_batch(D, Y, k=sparsity).codes if sparsity is not None
                     else _optax_codes(D, Y, lam, mode=mode, grad=grad, max_iter=max_iter))
        elif coder == "omp":
            codes = omp_batch(D, Y, k=sparsity).codes
        else:
            codes = lasso_batch(D, Y, lam, method="auto" if coder == "lasso" else "homotopy",
                                prox="nonneg_soft" if positive_code else "soft").codes
    return DictLearnResult(D, codes, loop, method)


def partial_fit(state: DictState, batch, lam=None, *, sparsity: int | None = None, coder: str | None = None,
                positive_code: bool = False, positive_dict: bool = False, forget=1.0, n_sweeps: int = 1,
                dup_threshold: float = 0.99, min_usage=0.0):
    """Continue online dictionary learning with one more mini-batch (scikit-learn's ``partial_fit``).

    The whole ``batch`` is the mini-batch of one ``online_step`` (Mairal, Bach, Ponce & Sapiro, JMLR 2010):
    its codes update the sufficient statistics (A, B, t) held in ``state.stats`` and the atoms follow by block
    coordinate descent. Calling it on consecutive slices Y[0:b], Y[b:2b], ... gives the same dictionary as
    ``learn_dictionary(Y, method="online", batch_size=b, shuffle=False)`` from the same initial state.

    Args:
      state: a ``DictState`` of online learning: ``init_state("online", D0, key)`` for a fresh start, or the
        state returned by the previous call / ``learn_dictionary(...).loop.state``.
      batch: (b, n) signals as rows (finite), n the dictionary's rows.
      lam, sparsity, coder, positive_code, positive_dict, forget, n_sweeps, dup_threshold, min_usage: as
        ``online_step`` / ``learn_dictionary`` (give ``sparsity`` for OMP codes or ``lam`` for Lasso codes).

    Returns:
      (new_state, metrics) as ``online_step`` (metrics measured on this batch).

    Example: two batches, the statistics count them.
      >>> import jax
      >>> from sparsejax.learn import dense
      >>> Y = jax.random.normal(jax.random.PRNGKey(0), (32, 6))
      >>> st = dense.init_state("online", dense.init_dictionary(Y, 8, jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
      >>> st, _ = dense.partial_fit(st, Y[:16], 0.1)
      >>> st, metrics = dense.partial_fit(st, Y[16:], 0.1)
      >>> float(st.stats.t), bool(metrics["loss"] > 0)
      (2.0, True)
    """
    if not isinstance(state, DictState) or not isinstance(state.stats, OnlineStats):
        raise TypeError("state must be the DictState of online learning (init_state('online', D, key) or the "
                        f"state a previous partial_fit returned), got {type(state).__name__}")
    D = V.as_float_array("state.D", state.D)
    V.check_ndim("state.D", D, (2,), "dictionary (n, m)")
    batch = V.as_float_array("batch", batch)
    V.check_ndim("batch", batch, (2,), "signals as rows: (b, n)")
    if batch.shape[1] != D.shape[0] or batch.shape[0] < 1:
        raise ValueError(f"batch must have shape (b, {D.shape[0]}) with b >= 1 (signals as rows, n = the "
                         f"dictionary's rows), got {tuple(batch.shape)}")
    V.check_finite("batch", batch)
    if sparsity is not None:
        sparsity = V.check_positive_int("sparsity", sparsity, min(D.shape), "min(signal dimension, n_atoms)")
    if lam is not None:
        lam = V.check_nonnegative_scalar("lam", lam).astype(D.dtype)
    if sparsity is None and lam is None:
        raise ValueError("partial_fit needs sparsity (OMP codes) or lam (Lasso codes)")
    coder = _check_coder("online", coder, sparsity, lam, positive_code, positive_dict)
    n_sweeps = V.check_positive_int("n_sweeps", n_sweeps)
    return online_step(state, batch.astype(D.dtype), lam, sparsity=sparsity if coder == "omp" else None,
                       batch_size=None, forget=jnp.asarray(forget, D.dtype), n_sweeps=n_sweeps,
                       dup_threshold=dup_threshold, min_usage=jnp.asarray(min_usage, D.dtype), coder=coder,
                       positive_code=bool(positive_code), positive_dict=bool(positive_dict))


def atom_recovery(D_learned, D_true, threshold: float = 0.99) -> float:
    """Fraction of true atoms recovered: #{j : max_i |<d_i, t_j>| > threshold} / m_true, atoms normalised
    (the success measure of Aharon, Elad & Bruckstein 2006, who use 1 - |<d_i, t_j>| < 0.01).

    Args:
      D_learned: (n, m) learned dictionary; D_true: (n, m_true) planted dictionary.
      threshold: correlation above which an atom counts as recovered.

    Returns:
      Python float in [0, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.dense import atom_recovery
      >>> T = jnp.eye(3)
      >>> atom_recovery(-T[:, ::-1], T), atom_recovery(jnp.ones((3, 3)), T)      # sign and order do not matter
      (1.0, 0.0)
    """
    D_learned = V.as_float_array("D_learned", getattr(D_learned, "atoms", D_learned))
    D_true = V.as_float_array("D_true", getattr(D_true, "atoms", D_true))
    V.check_ndim("D_learned", D_learned, (2,), "atoms as columns")
    V.check_ndim("D_true", D_true, (2,), "atoms as columns")
    if D_learned.shape[0] != D_true.shape[0]:
        raise ValueError(f"D_learned and D_true must have the same signal dimension (rows), got "
                         f"{D_learned.shape[0]} and {D_true.shape[0]}")
    A = np.asarray(normalize_atoms(D_learned), np.float64)
    T = np.asarray(normalize_atoms(D_true), np.float64)
    best = np.max(np.abs(A.T @ T), axis=0)
    return float(np.mean(best > threshold))
