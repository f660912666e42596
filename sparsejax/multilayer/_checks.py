"""Argument checks of the multi-layer pursuits, run before tracing: the layers chain, the signal fits the first
layer, per-layer thresholds and steps have one entry per layer.

A multi-layer model is a tuple of ``LinearOperator`` layers (D_1, ..., D_K) with G_{i-1} = D_i G_i, so layer
i's signal shape must equal layer i-1's code shape (Papyan, Romano, Elad, "Convolutional neural networks analyzed
via convolutional sparse coding", JMLR 2017).
"""
from __future__ import annotations

from typing import Tuple

import jax.numpy as jnp

from sparsejax import _validate as V
from sparsejax.operators import LinearOperator

__all__ = ["check_layers", "check_y", "per_layer", "check_steps", "common_dtype"]


def check_layers(layers) -> Tuple[LinearOperator, ...]:
    """The layers as a tuple of ``LinearOperator`` that chain (D_{i+1}.signal_shape == D_i.code_shape)."""
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


def check_y(layers, y):
    """``y`` as a finite float array of the first layer's signal shape."""
    y = V.as_float_array("y", y)
    if tuple(y.shape) != tuple(layers[0].signal_shape):
        raise ValueError(f"y must have the first layer's signal shape {tuple(layers[0].signal_shape)}, "
                         f"got {tuple(y.shape)} (layers[0] is D_1); for a batch use jax.vmap")
    V.check_finite("y", y)
    return y


def per_layer(name, values, layers, dtype, *, positive=False, allow_none=False):
    """A length-K sequence (or one value for every layer) of scalars / per-code arrays, broadcast to
    each layer's code shape (scalars stay scalars)."""
    K = len(layers)
    if values is None and allow_none:
        return None
    if not isinstance(values, (tuple, list)):
        values = (values,) * K
    if len(values) != K:
        raise ValueError(f"{name} must have one entry per layer ({K}), got {len(values)}")
    out = []
    for i, (v, D) in enumerate(zip(values, layers)):
        nm = f"{name}[{i}]"
        v = V.as_float_array(nm, v)
        V.broadcastable(nm, v, tuple(D.code_shape), f"the codes of layers[{i}]")
        V.check_nonnegative(nm, v, strict=positive)
        v = v.astype(dtype)
        if v.ndim > 0:
            v = jnp.broadcast_to(v, tuple(D.code_shape))
        out.append(v)
    return tuple(out)


def check_steps(steps, layers, dtype):
    """None, or a length-K sequence (or one value for every layer) of scalar step sizes r_i > 0, as ``dtype``."""
    return None if steps is None else V.per_layer_scalars("steps", steps, len(layers), dtype, strict=True)


def common_dtype(layers, y):
    """The floating dtype that holds ``y`` and every layer."""
    return jnp.result_type(y.dtype, *[D.dtype for D in layers])
