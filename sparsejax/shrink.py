"""Shrinkage (proximal) operators, elementwise with traced thresholds (REFERENCE section 3).

Every threshold is an ordinary array argument: a scalar, one value per atom, or anything that
broadcasts against ``z``. Changing it never recompiles and ``jax.grad`` flows through it.

========================  ===============================================  ======================================
operator                  formula                                          proximal operator of
========================  ===============================================  ======================================
``soft(z, b)``            sign(z) max(|z| - b, 0)                          b ||a||_1
``hard(z, b)``            z 1{|z| > b}                                     (b^2/2) ||a||_0
``nonneg_soft(z, b)``     max(z - b, 0) = ReLU(z - b)                       b ||a||_1 + indicator(a >= 0)
``top_k(z, k)``           keep the k entries of largest |z|                indicator(||a||_0 <= k)
``group_soft(z, b, ax)``  z max(1 - b / ||z_g||_2, 0), groups along ``ax``  b sum_g ||a_g||_2
``firm(z, b, c)``         Gao-Bruce firm shrinkage, 0 < b < c               (non-convex; between soft and hard)
========================  ===============================================  ======================================

With ``nonneg_soft`` a CNN layer ReLU(W^T x + bias) is a shrinkage with b = -bias.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax._validate import check_positive_int


def _thr(b, like: jax.Array) -> jax.Array:
    """The threshold as an array of ``like``'s dtype, explicitly broadcast to its shape (so that
    per-atom thresholds work under ``jax_numpy_rank_promotion='raise'``)."""
    return jnp.broadcast_to(jnp.asarray(b, dtype=like.dtype), like.shape)


__all__ = ["soft", "hard", "nonneg_soft", "top_k", "group_soft", "firm", "get", "PROXES"]


def soft(z: jax.Array, b) -> jax.Array:
    """Soft thresholding S_b(z) = sign(z) max(|z| - b, 0) = z - clip(z, -b, b).

    The clip form has a defined (sub)gradient everywhere: d/dz = 1{|z| > b}, d/db = -sign(z) 1{|z| > b}.
    """
    b = _thr(b, z)
    return z - jnp.clip(z, -b, b)


def hard(z: jax.Array, b) -> jax.Array:
    """Hard thresholding H_b(z) = z 1{|z| > b} (prox of (b^2/2)||.||_0)."""
    b = _thr(b, z)
    return jnp.where(jnp.abs(z) > b, z, jnp.zeros_like(z))


def nonneg_soft(z: jax.Array, b) -> jax.Array:
    """Non-negative soft thresholding S+_b(z) = max(z - b, 0) = ReLU(z - b)."""
    b = _thr(b, z)
    return jax.nn.relu(z - b)


def top_k(z: jax.Array, k: int) -> jax.Array:
    """Projection onto {a : ||a||_0 <= k}: keep the ``k`` entries of largest magnitude of the whole array.

    ``k`` is static (it fixes sizes). Ties are broken by position (lowest index kept), so exactly
    ``min(k, z.size)`` entries survive. Batch with ``jax.vmap``.
    """
    k = check_positive_int("k", k)
    flat = z.reshape(-1)
    k = min(k, flat.shape[0])
    _, idx = lax.top_k(jnp.abs(flat), k)
    mask = jnp.zeros(flat.shape, dtype=bool).at[idx].set(True)
    return jnp.where(mask, flat, jnp.zeros_like(flat)).reshape(z.shape)


def group_soft(z: jax.Array, b, axis=-1) -> jax.Array:
    """Group (block) soft thresholding: z_g max(1 - b/||z_g||_2, 0), each group a slice along ``axis``.

    ``b`` broadcasts against the group norms (shape of ``z`` with ``axis`` kept as size 1).
    Safe at z_g = 0 (value 0, finite gradient).
    """
    sq = jnp.sum(z * z, axis=axis, keepdims=True)
    b = _thr(b, sq)
    pos = sq > 0
    norm = jnp.sqrt(jnp.where(pos, sq, jnp.ones_like(sq)))
    scale = jnp.where(pos, jax.nn.relu(1.0 - b / norm), jnp.zeros_like(sq))
    return z * scale


def firm(z: jax.Array, b, c) -> jax.Array:
    """Firm shrinkage (Gao & Bruce 1997): 0 for |z| <= b, z for |z| > c, linear in between (0 < b < c)."""
    b = _thr(b, z)
    c = _thr(c, z)
    a = jnp.abs(z)
    mid = jnp.sign(z) * c * (a - b) / (c - b)
    return jnp.where(a <= b, jnp.zeros_like(z), jnp.where(a > c, z, mid))


PROXES: dict[str, Callable] = {"soft": soft, "hard": hard, "nonneg_soft": nonneg_soft}


def get(prox) -> Callable:
    """Resolve a shrinkage by name ('soft', 'hard', 'nonneg_soft') or pass a callable ``(z, b) -> z`` through."""
    if callable(prox):
        return prox
    if prox not in PROXES:
        raise ValueError(f"prox must be one of {tuple(PROXES)} or a callable (z, threshold) -> z, got {prox!r}")
    return PROXES[prox]
