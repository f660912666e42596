"""Argument checks that run in Python, before anything is traced or compiled: the one place for them.

Shape and dtype checks always run (shapes are static even under ``jit``). Value checks (negative
``lam``, non-finite data) run only when the value is concrete; under a user's ``jit`` the value is a
tracer and the check is skipped, which is the only behaviour that never forces a host sync.

Every error names the argument it is about (``"lam must be >= 0, got -1.0"``). The iteration arguments
(``max_iter``, ``tol``, ``mode``) have their own check next to the driver: ``sparsejax.solve.check_iteration``.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

__all__ = ["is_concrete", "as_float_array", "check_ndim", "check_shape", "check_finite", "check_nonnegative",
           "check_scalar", "check_nonnegative_scalar", "check_int", "check_positive_int", "check_choice",
           "broadcastable", "per_layer_scalars", "check_mesh"]


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds a value (not a tracer inside jit/vmap/grad).

    Example:
      >>> import jax
      >>> from sparsejax import _validate as V
      >>> V.is_concrete(1.0), jax.jit(lambda x: V.is_concrete(x) * x)(2.0).item()
      (True, 0.0)
    """
    return not isinstance(x, jax.core.Tracer)


def as_float_array(name: str, x: Any) -> jax.Array:
    """Convert to a floating JAX array; integer, boolean or complex input is a TypeError naming ``name``.

    Python scalars are accepted (they take the default float dtype).

    Example:
      >>> import numpy as np
      >>> from sparsejax import _validate as V
      >>> str(V.as_float_array("y", np.ones(3, np.float32)).dtype)
      'float32'
      >>> V.as_float_array("y", np.arange(3))
      Traceback (most recent call last):
      ...
      TypeError: y must be a real floating-point array (float32 or float64), got dtype int64; convert it with y.astype(jnp.float32)
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
    """``x`` has one of the numbers of dimensions ``ndims``; ``meaning`` says what they are in the message.

    Example:
      >>> import numpy as np
      >>> from sparsejax import _validate as V
      >>> V.check_ndim("D", np.ones(3), (2,), "n x m atoms as columns")
      Traceback (most recent call last):
      ...
      ValueError: D must have 2 dimension(s) (n x m atoms as columns), got shape (3,)
    """
    if jnp.ndim(x) not in tuple(ndims):
        exp = " or ".join(str(d) for d in ndims)
        raise ValueError(
            f"{name} must have {exp} dimension(s){' (' + meaning + ')' if meaning else ''}, "
            f"got shape {tuple(jnp.shape(x))}"
        )


def check_shape(name: str, x: Any, expected: tuple, meaning: str = "") -> None:
    """``x`` has shape ``expected``, which may hold ``None`` for a free dimension.

    Example:
      >>> import numpy as np
      >>> from sparsejax import _validate as V
      >>> V.check_shape("Y", np.ones((5, 3)), (None, 4), "B signals of dimension n = 4")
      Traceback (most recent call last):
      ...
      ValueError: Y must have shape (*, 4) (B signals of dimension n = 4), got (5, 3)
    """
    shape = tuple(jnp.shape(x))
    ok = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected, shape))
    if not ok:
        exp = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(
            f"{name} must have shape {exp}{' (' + meaning + ')' if meaning else ''}, got {shape}"
        )


def check_finite(name: str, x: Any) -> None:
    """No NaN or infinite entry in ``x`` (skipped for a tracer).

    Example:
      >>> import numpy as np
      >>> from sparsejax import _validate as V
      >>> V.check_finite("y", np.array([1.0, np.nan]))
      Traceback (most recent call last):
      ...
      ValueError: y contains NaN or infinite values
    """
    if is_concrete(x) and not bool(np.all(np.isfinite(np.asarray(x)))):
        raise ValueError(f"{name} contains NaN or infinite values")


def check_nonnegative(name: str, x: Any, strict: bool = False) -> None:
    """Scalar or array hyper-parameter that must be >= 0 (or > 0 when ``strict``) and finite (skipped for a tracer).

    Example:
      >>> from sparsejax import _validate as V
      >>> V.check_nonnegative("rho", 0.0, strict=True)
      Traceback (most recent call last):
      ...
      ValueError: rho must be > 0, got 0.0
    """
    if not is_concrete(x):
        return
    v = np.asarray(x)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {v if v.size < 8 else 'an array with NaN/inf'}")
    bad = v <= 0 if strict else v < 0
    if np.any(bad):
        rel = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be {rel}, got {v if v.size < 8 else 'an array with bad entries'}")


def check_scalar(name: str, x: Any) -> jax.Array:
    """A real floating-point scalar (0-d): returns it as a JAX array.

    Example:
      >>> import numpy as np
      >>> from sparsejax import _validate as V
      >>> float(V.check_scalar("tol", 1e-3))
      0.001
      >>> V.check_scalar("lam", np.ones(2))
      Traceback (most recent call last):
      ...
      ValueError: lam must be a scalar, got shape (2,)
    """
    x = as_float_array(name, x)
    if x.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {tuple(x.shape)}")
    return x


def check_nonnegative_scalar(name: str, x: Any, strict: bool = False) -> jax.Array:
    """A finite scalar >= 0 (> 0 when ``strict``): ``check_scalar`` then ``check_nonnegative``; returns the array.

    Example:
      >>> from sparsejax import _validate as V
      >>> float(V.check_nonnegative_scalar("lam", 0.5))
      0.5
      >>> V.check_nonnegative_scalar("lam", -1.0)
      Traceback (most recent call last):
      ...
      ValueError: lam must be >= 0, got -1.0
    """
    x = check_scalar(name, x)
    check_nonnegative(name, x, strict=strict)
    return x


def check_int(name: str, k: Any, lower: int = 0, upper: int | None = None, upper_name: str = "") -> int:
    """A static Python int in [``lower``, ``upper``] (it fixes array sizes or loop lengths, so it may not be traced).

    A non-int (including ``bool`` and floats) is a TypeError, an int out of range a ValueError; both name ``name``.
    ``upper_name`` says where the upper bound comes from. Returns ``int(k)``.

    Example:
      >>> from sparsejax import _validate as V
      >>> V.check_int("npad", 0)
      0
      >>> V.check_int("k", 9, 1, 8, "number of atoms")
      Traceback (most recent call last):
      ...
      ValueError: k must be <= 8 (number of atoms), got 9
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{name} must be a Python int (it is static: it fixes array sizes), got {type(k).__name__}")
    k = int(k)
    if k < lower:
        raise ValueError(f"{name} must be >= {lower}, got {k}")
    if upper is not None and k > upper:
        raise ValueError(f"{name} must be <= {upper}{' (' + upper_name + ')' if upper_name else ''}, got {k}")
    return k


def check_positive_int(name: str, k: Any, upper: int | None = None, upper_name: str = "") -> int:
    """``check_int`` with lower bound 1.

    Example:
      >>> from sparsejax import _validate as V
      >>> V.check_positive_int("n", 0)
      Traceback (most recent call last):
      ...
      ValueError: n must be >= 1, got 0
    """
    return check_int(name, k, 1, upper, upper_name)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """``value`` is one of ``choices``; the error names ``name`` and lists them.

    Example:
      >>> from sparsejax import _validate as V
      >>> V.check_choice("method", "qr", ("dense", "cg"))
      Traceback (most recent call last):
      ...
      ValueError: method must be one of ('dense', 'cg'), got 'qr'
    """
    if value not in tuple(choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def broadcastable(name: str, x: Any, target_shape: tuple, meaning: str = "") -> None:
    """``x`` broadcasts against an array of ``target_shape`` (``meaning`` names that array; default the codes).

    Example:
      >>> import numpy as np
      >>> from sparsejax import _validate as V
      >>> V.broadcastable("lam", np.ones(3), (5,))
      Traceback (most recent call last):
      ...
      ValueError: lam of shape (3,) must broadcast against the codes of shape (5,)
    """
    try:
        np.broadcast_shapes(tuple(jnp.shape(x)), tuple(target_shape))
    except ValueError:
        raise ValueError(
            f"{name} of shape {tuple(jnp.shape(x))} must broadcast against {meaning or 'the codes'} "
            f"of shape {tuple(target_shape)}"
        ) from None


def per_layer_scalars(name: str, values: Any, K: int, dtype, strict: bool = False) -> tuple:
    """One non-negative scalar per layer (``strict``: positive), given as one value for every layer or a length-K
    sequence; returns a tuple of K 0-d arrays of ``dtype``.

    Example:
      >>> import numpy as np
      >>> from sparsejax import _validate as V
      >>> [float(v) for v in V.per_layer_scalars("xi", 0.5, 3, np.float32)]
      [0.5, 0.5, 0.5]
      >>> V.per_layer_scalars("xi", (0.5, 1.0), 3, np.float32)
      Traceback (most recent call last):
      ...
      ValueError: xi must be one value or one entry per layer (3), got 2
    """
    if not isinstance(values, (tuple, list)):
        values = (values,) * K
    if len(values) != K:
        raise ValueError(f"{name} must be one value or one entry per layer ({K}), got {len(values)}")
    return tuple(check_nonnegative_scalar(f"{name}[{i}]", v, strict=strict).astype(dtype)
                 for i, v in enumerate(values))


def check_mesh(mesh: Any, count: int, count_name: str) -> int:
    """A 1-D ``jax.sharding.Mesh`` whose number of devices divides ``count`` (the ``count_name`` split over the
    devices, e.g. the filters); returns the number of devices.

    Example:
      >>> import jax
      >>> import numpy as np
      >>> from sparsejax import _validate as V
      >>> mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("filters",))
      >>> V.check_mesh(mesh, 8, "the number of filters M")
      1
      >>> V.check_mesh("cpu", 8, "the number of filters M")
      Traceback (most recent call last):
      ...
      ValueError: mesh must be a 1-D jax.sharding.Mesh, got 'cpu'
    """
    if not isinstance(mesh, Mesh) or len(mesh.axis_names) != 1:
        raise ValueError(f"mesh must be a 1-D jax.sharding.Mesh, got {mesh!r}")
    ndev = int(mesh.devices.size)
    if count % ndev:
        raise ValueError(f"mesh: {count_name} = {count} must be a multiple of the {ndev} devices")
    return ndev
