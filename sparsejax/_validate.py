"""Argument checks that run in Python, before anything is traced or compiled.

Shape and dtype checks always run (shapes are static even under ``jit``). Value checks (negative
``lam``, non-finite data) run only when the value is concrete; under a user's ``jit`` the value is a
tracer and the check is skipped, which is the only behaviour that never forces a host sync.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds a value (not a tracer inside jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def as_float_array(name: str, x: Any) -> jax.Array:
    """Convert to a floating JAX array; integer, boolean or complex input is a TypeError.

    Python scalars are accepted (they take the default float dtype).
    """
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real floating-point array, got a boolean")
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return jnp.asarray(x, dtype=jnp.result_type(float))
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        x = np.asarray(x)
        dtype = x.dtype
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"{name} must be a real floating-point array (float32 or float64), got dtype {dtype}; "
            f"convert it with {name}.astype(jnp.float32)"
        )
    return jnp.asarray(x)


def check_ndim(name: str, x: Any, ndims: Sequence[int], meaning: str = "") -> None:
    if jnp.ndim(x) not in tuple(ndims):
        exp = " or ".join(str(d) for d in ndims)
        raise ValueError(
            f"{name} must have {exp} dimension(s){' (' + meaning + ')' if meaning else ''}, "
            f"got shape {tuple(jnp.shape(x))}"
        )


def check_shape(name: str, x: Any, expected: tuple, meaning: str = "") -> None:
    """``expected`` may hold ``None`` for a free dimension."""
    shape = tuple(jnp.shape(x))
    ok = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected, shape))
    if not ok:
        exp = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(
            f"{name} must have shape {exp}{' (' + meaning + ')' if meaning else ''}, got {shape}"
        )


def check_finite(name: str, x: Any) -> None:
    if is_concrete(x) and not bool(np.all(np.isfinite(np.asarray(x)))):
        raise ValueError(f"{name} contains NaN or infinite values")


def check_nonnegative(name: str, x: Any, strict: bool = False) -> None:
    """Scalar or array hyper-parameter that must be >= 0 (or > 0 when ``strict``) and finite."""
    if not is_concrete(x):
        return
    v = np.asarray(x)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {v if v.size < 8 else 'an array with NaN/inf'}")
    bad = v <= 0 if strict else v < 0
    if np.any(bad):
        rel = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be {rel}, got {v if v.size < 8 else 'an array with bad entries'}")


def check_positive_int(name: str, k: Any, upper: int | None = None, upper_name: str = "") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{name} must be a Python int (it is static: it fixes array sizes), got {type(k).__name__}")
    k = int(k)
    if k < 1:
        raise ValueError(f"{name} must be >= 1, got {k}")
    if upper is not None and k > upper:
        raise ValueError(f"{name} must be <= {upper}{' (' + upper_name + ')' if upper_name else ''}, got {k}")
    return k


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in tuple(choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def broadcastable(name: str, x: Any, target_shape: tuple, meaning: str = "") -> None:
    try:
        np.broadcast_shapes(tuple(jnp.shape(x)), tuple(target_shape))
    except ValueError:
        raise ValueError(
            f"{name} of shape {tuple(jnp.shape(x))} must broadcast against {meaning or 'the codes'} "
            f"of shape {tuple(target_shape)}"
        ) from None


def per_layer_scalars(name: str, values: Any, K: int, dtype, strict: bool = False) -> tuple:
    """One non-negative scalar per layer (``strict``: positive), given as one value for every layer or a length-K
    sequence; returns a tuple of K 0-d arrays of ``dtype``."""
    if not isinstance(values, (tuple, list)):
        values = (values,) * K
    if len(values) != K:
        raise ValueError(f"{name} must be one value or one entry per layer ({K}), got {len(values)}")
    out = []
    for i, v in enumerate(values):
        v = as_float_array(f"{name}[{i}]", v)
        if v.ndim != 0:
            raise ValueError(f"{name}[{i}] must be a scalar, got shape {tuple(v.shape)}")
        check_nonnegative(f"{name}[{i}]", v, strict=strict)
        out.append(v.astype(dtype))
    return tuple(out)
