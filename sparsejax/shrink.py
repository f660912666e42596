"""Shrinkage (proximal) operators, elementwise with traced thresholds.

Every threshold is an ordinary array argument: a scalar, one value per atom, or anything that
broadcasts against ``z``. Changing it never recompiles and ``jax.grad`` flows through it.

=========================  ================================================  ===================================
operator                   formula                                           proximal operator of
=========================  ================================================  ===================================
``soft(z, b)``             sign(z) max(|z| - b, 0)                           b ||a||_1
``hard(z, b)``             z 1{|z| > b}                                      (b^2/2) ||a||_0
``nonneg_soft(z, b)``      max(z - b, 0) = ReLU(z - b)                       b ||a||_1 + indicator(a >= 0)
``top_k(z, k)``            keep the k entries of largest |z|                 indicator(||a||_0 <= k)
``group_soft(z, b, ax)``   z max(1 - b / ||z_g||_2, 0), groups along ``ax``  b sum_g ||a_g||_2
``firm(z, b, c)``          Gao-Bruce firm shrinkage, 0 < b < c               (non-convex; between soft and hard)
``joint_soft(z, b, c)``    group_soft(soft(z, b), c), groups along ``ax``    b ||a||_1 + c sum_g ||a_g||_2
``elastic_soft(z, b, c)``  soft(z, b) / (1 + c)                              b ||a||_1 + (c/2) ||a||_2^2
``project_l1_ball(z, r)``  soft(z, theta), ||result||_1 = r (or z inside)    indicator(||a||_1 <= r)
=========================  ================================================  ===================================

``group_soft`` on the rows of a coefficient matrix (one row per atom, one column per signal) is the prox of the
l2,1 norm sum_j ||A_j,:||_2 of joint sparsity (multi-task Lasso; Obozinski, Taskar & Jordan, "Joint covariate
selection and joint subspace selection for multiple classification problems", Stat. Comput. 2010).

With ``nonneg_soft`` a CNN layer ReLU(W^T x + bias) is a shrinkage with b = -bias (Papyan, Romano & Elad,
"Convolutional neural networks analyzed via convolutional sparse coding", JMLR 2017, section 2).

The pursuits and networks choose their shrinkage with one argument, ``prox=``: a name of ``PROXES`` or a
callable ``(z, threshold) -> z``, resolved by ``get``.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax._validate import check_positive_int

__all__ = ["soft", "hard", "nonneg_soft", "top_k", "group_soft", "firm", "joint_soft", "elastic_soft",
           "project_l1_ball", "get", "PROXES", "SIGN_PROXES"]


def _thr(b, like: jax.Array) -> jax.Array:
    """The threshold as an array of ``like``'s dtype, explicitly broadcast to its shape (so that
    per-atom thresholds work under ``jax_numpy_rank_promotion='raise'``)."""
    return jnp.broadcast_to(jnp.asarray(b, dtype=like.dtype), like.shape)


def soft(z: jax.Array, b) -> jax.Array:
    """Soft thresholding S_b(z) = sign(z) max(|z| - b, 0) = z - clip(z, -b, b), the prox of b ||.||_1
    (Donoho, "De-noising by soft-thresholding", IEEE Trans. Inf. Theory 1995).

    The clip form has a defined (sub)gradient everywhere: d/dz = 1{|z| > b}, d/db = -sign(z) 1{|z| > b}.

    Args:
      z: array.
      b: threshold >= 0, broadcastable against ``z`` (traced).

    Returns:
      array of ``z``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.shrink.soft(jnp.array([-2.0, 0.5, 3.0]), 1.0).tolist()
      [-1.0, 0.0, 2.0]
    """
    b = _thr(b, z)
    return z - jnp.clip(z, -b, b)


def hard(z: jax.Array, b) -> jax.Array:
    """Hard thresholding H_b(z) = z 1{|z| > b}, the prox of (b^2/2) ||.||_0 (Donoho & Johnstone, "Ideal spatial
    adaptation by wavelet shrinkage", Biometrika 1994).

    Args:
      z: array.
      b: threshold >= 0, broadcastable against ``z`` (traced).

    Returns:
      array of ``z``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.shrink.hard(jnp.array([-2.0, 0.5, 3.0]), 1.0).tolist()
      [-2.0, 0.0, 3.0]
    """
    b = _thr(b, z)
    return jnp.where(jnp.abs(z) > b, z, jnp.zeros_like(z))


def nonneg_soft(z: jax.Array, b) -> jax.Array:
    """Non-negative soft thresholding S+_b(z) = max(z - b, 0) = ReLU(z - b), the prox of b ||.||_1 plus the
    indicator of a >= 0 (a CNN's ReLU with bias -b; Papyan, Romano & Elad, JMLR 2017).

    Args:
      z: array.
      b: threshold, broadcastable against ``z`` (traced).

    Returns:
      array of ``z``'s shape and dtype, >= 0.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.shrink.nonneg_soft(jnp.array([-2.0, 0.5, 3.0]), 1.0).tolist()
      [0.0, 0.0, 2.0]
    """
    b = _thr(b, z)
    return jax.nn.relu(z - b)


def top_k(z: jax.Array, k: int) -> jax.Array:
    """Projection onto {a : ||a||_0 <= k}: keep the ``k`` entries of largest magnitude of the whole array (the
    step of iterative hard thresholding; Blumensath & Davies, "Iterative hard thresholding for compressed
    sensing", Appl. Comput. Harmon. Anal. 2009).

    ``k`` is static (it fixes sizes). Ties are broken by position (lowest index kept), so exactly
    ``min(k, z.size)`` entries survive. Batch with ``jax.vmap``.

    Args:
      z: array.
      k: number of entries kept, a positive Python int.

    Returns:
      array of ``z``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.shrink.top_k(jnp.array([0.5, -3.0, 1.0, 2.0]), 2).tolist()
      [0.0, -3.0, 0.0, 2.0]
    """
    k = check_positive_int("k", k)
    flat = z.reshape(-1)
    k = min(k, flat.shape[0])
    _, idx = lax.top_k(jnp.abs(flat), k)
    mask = jnp.zeros(flat.shape, dtype=bool).at[idx].set(True)
    return jnp.where(mask, flat, jnp.zeros_like(flat)).reshape(z.shape)


def group_soft(z: jax.Array, b, axis=-1) -> jax.Array:
    """Group (block) soft thresholding z_g max(1 - b/||z_g||_2, 0), the prox of b sum_g ||a_g||_2 (group Lasso;
    Yuan & Lin, "Model selection and estimation in regression with grouped variables", J. R. Stat. Soc. B 2006);
    each group is a slice along ``axis``.

    ``b`` broadcasts against the group norms (shape of ``z`` with ``axis`` kept as size 1).
    Safe at z_g = 0 (value 0, finite gradient).

    Args:
      z: array.
      b: threshold >= 0, broadcastable against the group norms (traced).
      axis: the axis (or axes) along which a group runs.

    Returns:
      array of ``z``'s shape and dtype.

    Example: the group (3, 4) has norm 5, so threshold 2.5 halves it.
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.shrink.group_soft(jnp.array([[3.0, 4.0], [0.3, 0.4]]), 2.5).tolist()
      [[1.5, 2.0], [0.0, 0.0]]
    """
    sq = jnp.sum(z * z, axis=axis, keepdims=True)
    b = _thr(b, sq)
    pos = sq > 0
    norm = jnp.sqrt(jnp.where(pos, sq, jnp.ones_like(sq)))
    scale = jnp.where(pos, jax.nn.relu(1.0 - b / norm), jnp.zeros_like(sq))
    return z * scale


def firm(z: jax.Array, b, c) -> jax.Array:
    """Firm shrinkage (Gao & Bruce, "WaveShrink with firm shrinkage", Statistica Sinica 1997): 0 for |z| <= b,
    z for |z| > c, linear in between, sign(z) c (|z| - b) / (c - b) (0 < b < c).

    Args:
      z: array.
      b, c: lower and upper thresholds, 0 < b < c, broadcastable against ``z`` (traced).

    Returns:
      array of ``z``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.shrink.firm(jnp.array([0.5, 1.5, -3.0]), 1.0, 2.0).tolist()
      [0.0, 1.0, -3.0]
    """
    b = _thr(b, z)
    c = _thr(c, z)
    a = jnp.abs(z)
    mid = jnp.sign(z) * c * (a - b) / (c - b)
    return jnp.where(a <= b, jnp.zeros_like(z), jnp.where(a > c, z, mid))


def joint_soft(z: jax.Array, b, c, axis=-1, nonneg: bool = False) -> jax.Array:
    """The prox of b ||a||_1 + c sum_g ||a_g||_2 (the sparse group Lasso, SPORCO's BPDNJoint penalty with
    b = lambda, c = mu), groups along ``axis``: group_soft(soft(z, b), c) (Friedman, Hastie & Tibshirani, "A note
    on the group lasso and a sparse group lasso", arXiv:1001.0736, 2010). With ``nonneg=True`` also the indicator
    of a >= 0: group_soft(nonneg_soft(z, b), c). b = 0 gives ``group_soft``, c = 0 gives ``soft``.

    Args:
      z: array.
      b: l1 threshold >= 0, broadcastable against ``z`` (traced).
      c: group threshold >= 0, broadcastable against the group norms (traced).
      axis: the axis (or axes) along which a group runs.
      nonneg: also constrain a >= 0 (static).

    Returns:
      array of ``z``'s shape and dtype.

    Example: soft(., 1) gives the row (2, 0) of norm 2, which the group threshold 1 halves.
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.shrink.joint_soft(jnp.array([[3.0, -0.5], [0.5, 1.2]]), 1.0, 1.0).tolist()
      [[1.0, 0.0], [0.0, 0.0]]
    """
    inner = nonneg_soft(z, b) if nonneg else soft(z, b)
    return group_soft(inner, c, axis)


def elastic_soft(z: jax.Array, b, c) -> jax.Array:
    """The prox of b ||a||_1 + (c/2) ||a||_2^2 (the Elastic Net penalty; Zou & Hastie, "Regularization and
    variable selection via the elastic net", J. R. Stat. Soc. B 2005): soft(z, b) / (1 + c).

    Args:
      z: array.
      b: l1 threshold >= 0, broadcastable against ``z`` (traced).
      c: l2 weight >= 0, broadcastable against ``z`` (traced).

    Returns:
      array of ``z``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.shrink.elastic_soft(jnp.array([-3.0, 0.5, 2.0]), 1.0, 1.0).tolist()
      [-1.0, 0.0, 0.5]
    """
    return soft(z, b) / (1.0 + _thr(c, z))


def project_l1_ball(z: jax.Array, radius, nonneg: bool = False) -> jax.Array:
    """Euclidean projection of the whole array ``z`` onto the l1 ball {a : ||a||_1 <= radius} (the prox of its
    indicator): soft(z, theta) with theta = max(0, max_j (S_j - radius) / j), S_j the sum of the j largest |z_i|
    (the sort-based projection of Held, Wolfe & Crowder, Math. Program. 1974; Duchi, Shalev-Shwartz, Singer &
    Chandra, "Efficient projections onto the l1-ball for learning in high dimensions", ICML 2008). Exact, one
    sort, O(n log n); z itself when it lies inside the ball; 0 for radius 0. With ``nonneg=True`` the projection onto
    the ball's non-negative part {a >= 0, sum(a) <= radius}: the l1-ball projection of max(z, 0).

    Batch with ``jax.vmap``.

    Args:
      z: array.
      radius: the ball's radius, a scalar >= 0 (traced).
      nonneg: project onto the non-negative part of the ball (static).

    Returns:
      array of ``z``'s shape and dtype.

    Example: theta = 1 brings (3, -2, 0.5) to l1 norm 3.
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.shrink.project_l1_ball(jnp.array([3.0, -2.0, 0.5]), 3.0).tolist()
      [2.0, -1.0, 0.0]
      >>> sj.shrink.project_l1_ball(jnp.array([0.5, -0.25]), 3.0).tolist()
      [0.5, -0.25]
    """
    if nonneg:
        z = jax.nn.relu(z)
    a = jnp.abs(z).reshape(-1)
    u = -jnp.sort(-a)                                         # |z| in decreasing order
    j = jnp.arange(1, u.shape[0] + 1, dtype=z.dtype)
    r = jnp.asarray(radius, dtype=z.dtype)
    theta = jax.nn.relu(jnp.max((jnp.cumsum(u) - r) / j))
    return soft(z, theta)


PROXES: dict[str, Callable] = {"soft": soft, "hard": hard, "nonneg_soft": nonneg_soft}
# the l1 shrinkages, signed or non-negative codes: the ``allowed`` names of the pursuits whose algebra is that of the
# l1 norm (OMP, LARS, ADMM, the implicit Lasso derivative)
SIGN_PROXES = ("soft", "nonneg_soft")


def get(prox, allowed: Optional[Sequence[str]] = None) -> Callable:
    """The one resolver of ``prox=``: a name of ``PROXES`` (``"soft"``, ``"hard"``, ``"nonneg_soft"``) or a
    callable ``(z, threshold) -> z``, passed through.

    An algorithm that supports only some shrinkages (e.g. signed or non-negative codes, for which it knows the
    optimality conditions) names them in ``allowed``: then ``prox`` must be one of those names (a callable is
    refused). Call it before tracing: the ValueError names ``prox`` and lists the allowed values.

    Args:
      prox: a name or a callable.
      allowed: the names an algorithm accepts, or None (every name of ``PROXES``, or a callable).

    Returns:
      the shrinkage function.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.shrink.get("nonneg_soft") is sj.shrink.nonneg_soft
      True
      >>> sj.shrink.get(lambda z, b: z)(jnp.ones(2), 0.5).tolist()
      [1.0, 1.0]
      >>> sj.shrink.get("hard", allowed=sj.shrink.SIGN_PROXES)
      Traceback (most recent call last):
      ...
      ValueError: prox must be one of ('soft', 'nonneg_soft'), got 'hard'
    """
    if allowed is not None:
        if not (isinstance(prox, str) and prox in tuple(allowed)):
            raise ValueError(f"prox must be one of {tuple(allowed)}, got {prox!r}")
        return PROXES[prox]
    if callable(prox):
        return prox
    if not (isinstance(prox, str) and prox in PROXES):
        raise ValueError(f"prox must be one of {tuple(PROXES)} or a callable (z, threshold) -> z, got {prox!r}")
    return PROXES[prox]
