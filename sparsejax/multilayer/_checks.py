"""Argument checks of the multi-layer pursuits, run before tracing: the layers chain, the signal fits the first
layer, per-layer thresholds and steps have one entry per layer, dense dictionary pairs fit each other.

A multi-layer model is a tuple of ``LinearOperator`` layers (D_1, ..., D_K) with G_{i-1} = D_i G_i, so layer
i's signal shape must equal layer i-1's code shape (Papyan, Romano, Elad, "Convolutional neural networks analyzed
via convolutional sparse coding", JMLR 2017).
"""
from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax import _validate as V
from sparsejax.operators import Dense, LinearOperator

__all__ = ["check_layers", "check_y", "per_layer", "code_weight", "check_steps", "common_dtype",
           "dense_atoms", "dense_pair"]


def check_layers(layers) -> Tuple[LinearOperator, ...]:
    """The layers as a tuple of ``LinearOperator`` s that chain (``layers[i].signal_shape ==
    layers[i-1].code_shape``, i.e. G_{i-1} = D_i G_i fits).

    Args:
      layers: a tuple or list (D_1, ..., D_K) of ``Dense`` / ``Conv`` operators (K >= 1).

    Returns:
      The layers as a tuple. Raises TypeError (not operators) or ValueError (empty, shapes that do not chain).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.multilayer.layered import check_layers
      >>> len(check_layers([sj.Dense(jnp.ones((4, 3))), sj.Dense(jnp.ones((3, 2)))]))
      2
    """
    if isinstance(layers, LinearOperator) or not isinstance(layers, (tuple, list)):
        raise TypeError(f"layers must be a tuple of LinearOperators (D_1, ..., D_K), got {type(layers).__name__}")
    layers = tuple(layers)
    if len(layers) == 0:
        raise ValueError("layers must hold at least one LinearOperator, got an empty tuple")
    for i, D in enumerate(layers):
        if not isinstance(D, LinearOperator):
            raise TypeError(f"layers[{i}] must be a LinearOperator (Dense or Conv), got {type(D).__name__}")
    for i in range(1, len(layers)):
        prev, cur = layers[i - 1], layers[i]
        if tuple(cur.signal_shape) != tuple(prev.code_shape):
            raise ValueError(
                f"layers do not chain: layers[{i}].signal_shape {tuple(cur.signal_shape)} must equal "
                f"layers[{i - 1}].code_shape {tuple(prev.code_shape)} (G_{i} = D_{i + 1} G_{i + 1})")
    return layers


def check_y(layers, y) -> jax.Array:
    """``y`` as a finite float array of the first layer's signal shape (one signal; batch with ``jax.vmap``).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> check_y((sj.Dense(jnp.ones((4, 3))),), jnp.zeros(4)).shape
      (4,)
    """
    y = V.as_float_array("y", y)
    if tuple(y.shape) != tuple(layers[0].signal_shape):
        raise ValueError(f"y must have the first layer's signal shape {tuple(layers[0].signal_shape)}, "
                         f"got {tuple(y.shape)} (layers[0] is D_1); for a batch use jax.vmap")
    V.check_finite("y", y)
    return y


def code_weight(name, value, D, dtype, meaning) -> jax.Array:
    """A non-negative weight on the codes of the layer ``D`` (threshold, l1 weight): a scalar, or an array that
    broadcasts against ``D.code_shape`` (per atom / per channel), returned as ``dtype`` and broadcast to the code
    shape (a scalar stays a scalar).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> code_weight("lam", jnp.ones((3, 1)), sj.Dense(jnp.ones((4, 3))), jnp.float32, "the codes").shape
      Traceback (most recent call last):
      ...
      ValueError: lam of shape (3, 1) must broadcast against the codes of shape (3,)
      >>> code_weight("lam", 0.5, sj.Dense(jnp.ones((4, 3))), jnp.float32, "the codes").shape
      ()
    """
    v = V.as_float_array(name, value)
    shape = tuple(D.code_shape)
    V.broadcastable(name, v, shape, meaning)
    if np.broadcast_shapes(tuple(v.shape), shape) != shape:      # e.g. (3, 1) against codes (3,)
        raise ValueError(f"{name} of shape {tuple(v.shape)} must broadcast against {meaning} of shape {shape}")
    V.check_nonnegative(name, v)
    v = v.astype(dtype)
    return jnp.broadcast_to(v, shape) if v.ndim > 0 else v


def per_layer(name, values, layers, dtype) -> Tuple[jax.Array, ...]:
    """One ``code_weight`` per layer: a length-K sequence, or one value for every layer.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> layers = (sj.Dense(jnp.ones((4, 3))), sj.Dense(jnp.ones((3, 2))))
      >>> [w.shape for w in per_layer("lams", (0.1, jnp.array([0.1, 0.2])), layers, jnp.float32)]
      [(), (2,)]
    """
    K = len(layers)
    if not isinstance(values, (tuple, list)):
        values = (values,) * K
    if len(values) != K:
        raise ValueError(f"{name} must have one entry per layer ({K}), got {len(values)}")
    return tuple(code_weight(f"{name}[{i}]", v, D, dtype, f"the codes of layers[{i}]")
                 for i, (v, D) in enumerate(zip(values, layers)))


def check_steps(steps, layers, dtype):
    """None, or a length-K sequence (or one value for every layer) of scalar step sizes r_i > 0, as ``dtype``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> layers = (sj.Dense(jnp.ones((4, 3))), sj.Dense(jnp.ones((3, 2))))
      >>> [float(r) for r in check_steps(0.5, layers, jnp.float32)]
      [0.5, 0.5]
    """
    return None if steps is None else V.per_layer_scalars("steps", steps, len(layers), dtype, strict=True)


def common_dtype(layers, y):
    """The floating dtype that holds ``y`` and every layer.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> common_dtype((sj.Dense(jnp.ones((2, 2), jnp.float32)),), jnp.zeros(2, jnp.float32))
      dtype('float32')
    """
    return jnp.result_type(y.dtype, *[D.dtype for D in layers])


def dense_atoms(name, D) -> jax.Array:
    """A dense dictionary (a 2-D array or a ``Dense``) as a finite float (rows x atoms) array.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> dense_atoms("D", sj.Dense(jnp.ones((4, 3)))).shape
      (4, 3)
    """
    D = V.as_float_array(name, D.atoms if isinstance(D, Dense) else D)
    V.check_ndim(name, D, (2,), "a dense dictionary (rows x atoms)")
    V.check_finite(name, D)
    return D


def dense_pair(D1, D2):
    """The two dictionaries of the two-layer dense model, D_1 (n, m_1) and D_2 (m_1, m_2), as arrays of one
    dtype (``dense_atoms`` each; D_2 needs one row per atom of D_1).

    Example:
      >>> import jax.numpy as jnp
      >>> A1, A2 = dense_pair(jnp.ones((4, 3)), jnp.ones((3, 5)))
      >>> A1.shape, A2.shape
      ((4, 3), (3, 5))
    """
    A1 = dense_atoms("D1", D1)
    A2 = dense_atoms("D2", D2)
    if A2.shape[0] != A1.shape[1]:
        raise ValueError(f"D2 must have m_1 = {A1.shape[1]} rows (one per atom of D1), got shape {tuple(A2.shape)}")
    dtype = jnp.result_type(A1.dtype, A2.dtype)
    return A1.astype(dtype), A2.astype(dtype)
