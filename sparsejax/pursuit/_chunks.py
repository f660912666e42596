"""Batch plumbing shared by the batched pursuits: chunks of a batch, and re-solving the signals a fast path left.

* ``map_chunks(fn, xs, chunk)``: apply ``fn`` to a batch in blocks of ``chunk`` rows with ``lax.map`` (memory and
  time per signal stay flat in the batch size), the last block padded with zeros, the results cut back to the batch.
* ``refill(pending, solve, carry, size, max_rounds)``: the lane-refill loop. While some entries are pending, gather
  the first ``size`` of them (``compact``), solve that fixed-size buffer and scatter the results back. A batched
  fast path leaves a few stragglers; this finishes them without running the slow path on the whole batch.

``compact``, ``gather`` and ``scatter`` are the index helpers of that loop (fixed sizes, so everything jits).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["map_chunks", "compact", "gather", "scatter", "refill"]


def _batch_size(xs) -> int:
    return jax.tree_util.tree_leaves(xs)[0].shape[0]


def map_chunks(fn, xs, chunk: int | None):
    """``fn(xs)`` computed ``chunk`` rows at a time (``lax.map``); one call when ``chunk`` is None or >= the batch.

    Args:
      fn: a function of a block (a pytree of arrays with a leading axis of ``chunk`` rows) returning a pytree of
        arrays with the same leading axis.
      xs: a pytree of arrays with a common leading batch axis B.
      chunk: rows per block (static). B need not be a multiple of it: the last block is padded with zeros and
        the padded rows are dropped from the result.

    Returns:
      ``fn``'s pytree with leading axis B.

    Example:
      >>> import jax.numpy as jnp
      >>> out = map_chunks(lambda x: 2 * x, jnp.arange(5.0), 2)      # blocks of 2, 2 and 1 (+ one padded row)
      >>> out.tolist()
      [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    B = _batch_size(xs)
    if chunk is None or chunk >= B:
        return fn(xs)
    nchunk = -(-B // chunk)
    pad = nchunk * chunk - B

    def blocks(x):
        x = jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1)) if pad else x
        return x.reshape((nchunk, chunk) + x.shape[1:])

    out = lax.map(fn, jax.tree_util.tree_map(blocks, xs))
    return jax.tree_util.tree_map(lambda x: x.reshape((nchunk * chunk,) + x.shape[2:])[:B], out)


def compact(mask: jax.Array, size: int):
    """Indices of the first ``size`` True entries of ``mask`` (B,), padded with B, and which of them are real.

    Example:
      >>> import jax.numpy as jnp
      >>> sel, valid = compact(jnp.array([False, True, False, True]), 3)
      >>> sel.tolist(), valid.tolist()
      ([1, 3, 4], [True, True, False])
    """
    B = mask.shape[0]
    pos = jnp.cumsum(mask) - 1
    tgt = jnp.where(mask & (pos < size), pos, size)
    sel = jnp.full((size,), B, jnp.int32).at[tgt].set(jnp.arange(B, dtype=jnp.int32), mode="drop")
    return sel, sel < B


def gather(tree, sel: jax.Array):
    """The rows ``sel`` of every array of ``tree`` (padding indices read the last row; mask them with ``valid``).

    Example:
      >>> import jax.numpy as jnp
      >>> gather(jnp.array([10.0, 11.0, 12.0]), jnp.array([2, 3])).tolist()
      [12.0, 12.0]
    """
    B = _batch_size(tree)
    rows = jnp.minimum(sel, B - 1)
    return jax.tree_util.tree_map(lambda x: x[rows], tree)


def scatter(tree, sel: jax.Array, rows):
    """``tree`` with the rows ``sel`` replaced by ``rows`` (padding indices, = B, are dropped).

    Example:
      >>> import jax.numpy as jnp
      >>> scatter(jnp.zeros(3), jnp.array([1, 3]), jnp.array([5.0, 6.0])).tolist()
      [0.0, 5.0, 0.0]
    """
    return jax.tree_util.tree_map(lambda x, y: x.at[sel].set(y, mode="drop"), tree, rows)


def refill(pending, solve, carry, size: int, max_rounds: int):
    """Re-solve the pending entries of a batch, ``size`` at a time, until none is pending (or ``max_rounds``).

    Each round takes ``sel, valid = compact(pending(carry), size)`` and sets ``carry = solve(carry, sel, valid)``;
    ``solve`` works on the gathered buffer of ``size`` entries, scatters its results back and must clear (or
    advance) the pending flags of the entries it took, so that the loop ends.

    Args:
      pending: ``carry -> (B,) bool``.
      solve: ``(carry, sel, valid) -> carry``.
      carry: the loop state (a pytree).
      size: static buffer size.
      max_rounds: bound on the rounds (a guard: a correct ``solve`` finishes earlier).

    Returns:
      The final carry.

    Example:
      >>> import jax.numpy as jnp
      >>> def double(x, sel, valid):                      # solve: double the gathered entries, mark them done
      ...     todo, v = x
      ...     return scatter(todo, sel, jnp.zeros_like(valid)), scatter(v, sel, 2 * gather(v, sel))
      >>> todo, v = refill(lambda x: x[0], double, (jnp.array([True, False, True]), jnp.arange(3.0)), 1, 3)
      >>> v.tolist()
      [0.0, 1.0, 4.0]
    """
    def cond(c):
        carry, rnd = c
        return jnp.any(pending(carry)) & (rnd < max_rounds)

    def body(c):
        carry, rnd = c
        sel, valid = compact(pending(carry), size)
        return solve(carry, sel, valid), rnd + 1

    carry, _ = lax.while_loop(cond, body, (carry, jnp.asarray(0)))
    return carry
