"""The Lasso / BPDN problem min_a 1/2 ||y - D a||_2^2 + lam ||a||_1: argument checks before tracing, the objective."""
from __future__ import annotations

import jax.numpy as jnp

from sparsejax import _validate as V
from sparsejax.operators import LinearOperator, as_operator


def prepare_problem(D, y, lam=None, *, lam_name: str = "lam"):
    """Validate ``D`` (operator or (n, m) array), ``y`` (one signal) and ``lam``; return arrays.

    Raises TypeError for non-float data, ValueError for shape mismatch, negative or non-finite
    ``lam`` and non-finite ``y`` (value checks only when values are concrete).
    """
    op = as_operator(D)
    y = V.as_float_array("y", y)
    if tuple(y.shape) != tuple(op.signal_shape):
        raise ValueError(
            f"y must have the dictionary's signal shape {tuple(op.signal_shape)}, got {tuple(y.shape)}; "
            "for a batch of signals use jax.vmap or sparsejax.pursuit.encode"
        )
    V.check_finite("y", y)
    if isinstance(op, LinearOperator) and hasattr(op, "atoms"):
        V.check_finite("D", op.atoms)
    dtype = jnp.result_type(op.dtype, y.dtype)
    y = y.astype(dtype)
    if lam is not None:
        lam = V.as_float_array(lam_name, lam)
        V.broadcastable(lam_name, lam, tuple(op.code_shape))
        V.check_nonnegative(lam_name, lam)
        lam = lam.astype(dtype)
        if lam.ndim > 0:  # explicit broadcast: strict rank promotion stays happy downstream
            lam = jnp.broadcast_to(lam, tuple(op.code_shape))
    return op, y, lam, dtype


def objective_l1(op, y, lam, a):
    """1/2 ||y - D a||_2^2 + sum(lam * |a|)."""
    r = op.apply(a) - y
    return 0.5 * jnp.sum(r * r) + jnp.sum(lam * jnp.abs(a))


def prepare_init(x0, op, dtype, name: str = "x0"):
    if x0 is None:
        return jnp.zeros(op.code_shape, dtype)
    x0 = V.as_float_array(name, x0)
    V.check_shape(name, x0, tuple(op.code_shape), "the code shape of D")
    return x0.astype(dtype)
