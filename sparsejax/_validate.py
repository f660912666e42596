"""Argument checks that run in Python, before anything is traced or compiled: the one place for them.

Shape and dtype checks always run (shapes are static even under ``jit``). Value checks (negative
``lam``, non-finite data) run only when the value is concrete; under a user's ``jit`` the value is a
tracer and the check is skipped, which is the only behaviour that never forces a host sync.

Every error names the argument it is about (``"lam must be >= 0, got -1.0"``). The iteration arguments
(``max_iter``, ``tol``, ``mode``) have their own check next to the driver: ``sparsejax.solve.check_iteration``
(``check_tol`` is its tolerance check).

Floating-point data must be float32 or float64: float16 / bfloat16 are refused (``as_float_array``), since the
solvers' tolerances, FFTs and divergence tests assume at least single precision.

Under a user's ``jit`` / ``vmap`` a value check cannot raise; the traced helpers then make the failure visible in
the result instead: ``nan_if_negative`` turns a negative threshold into NaN (an invalid problem, which every
pursuit reports with ``Status.NONFINITE_INPUT``) and ``all_finite`` is the traced test a result's flags use.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

__all__ = ["is_concrete", "as_float_array", "check_ndim", "check_shape", "check_finite", "check_nonnegative",
           "check_scalar", "check_nonnegative_scalar", "check_int", "check_positive_int", "check_choice",
           "broadcastable", "per_layer_scalars", "check_mesh", "check_tol", "check_dictionary", "check_support",
           "check_operator_finite", "check_lasso_point", "nan_if_negative", "all_finite", "FLOAT_DTYPES"]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))   # the floating dtypes sparsejax computes in


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
    """Convert to a floating JAX array; integer, boolean, complex, string or half-precision (float16, bfloat16)
    input is a TypeError naming ``name``.

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
      >>> V.as_float_array("y", np.ones(3, np.float16))
      Traceback (most recent call last):
      ...
      TypeError: y has dtype float16: sparsejax computes in float32 or float64 (half precision is too coarse for its tolerances and divergence tests); convert it with y.astype(jnp.float32)
    """
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real floating-point array, got a boolean")
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be a real floating-point number or array, got the string {x!r}")
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
    if np.dtype(dtype) not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} has dtype {np.dtype(dtype).name}: sparsejax computes in float32 or float64 (half precision is "
            f"too coarse for its tolerances and divergence tests); convert it with {name}.astype(jnp.float32)"
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


def check_tol(tol: Any, name: str = "tol") -> jax.Array:
    """A stopping tolerance: a real, finite scalar >= 0 (a Python number or a 0-d float array; traced is fine).

    A string (``tol="1e-6"``), a boolean, an array of several values or a negative / NaN value raises, naming
    ``name``. Returns the tolerance as a 0-d array.

    Example:
      >>> from sparsejax import _validate as V
      >>> float(V.check_tol(0.0))
      0.0
      >>> V.check_tol("1e-6")
      Traceback (most recent call last):
      ...
      TypeError: tol must be a real floating-point number or array, got the string '1e-6'
    """
    return check_nonnegative_scalar(name, tol)


def check_dictionary(name: str, D: Any, meaning: str = "n x m atoms as columns") -> jax.Array:
    """A dense dictionary (an (n, m) array, or an operator with ``.atoms``): 2-D, float32/float64, at least one row
    and one atom, every entry finite (when concrete). Returns the atoms as a JAX array.

    Example:
      >>> import numpy as np
      >>> from sparsejax import _validate as V
      >>> V.check_dictionary("D", np.ones((4, 3), np.float32)).shape
      (4, 3)
      >>> V.check_dictionary("D", np.ones((4, 0), np.float32))
      Traceback (most recent call last):
      ...
      ValueError: D must have at least one row and one atom (n x m atoms as columns), got shape (4, 0)
    """
    D = as_float_array(name, getattr(D, "atoms", D))
    check_ndim(name, D, (2,), meaning)
    if D.shape[0] == 0 or D.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one atom ({meaning}), got shape {tuple(D.shape)}")
    if is_concrete(D) and not bool(np.all(np.isfinite(np.asarray(D)))):
        bad = np.flatnonzero(~np.all(np.isfinite(np.asarray(D)), axis=0))
        raise ValueError(f"{name} contains NaN or infinite values (atoms {bad[:8].tolist()}"
                         f"{' ...' if bad.size > 8 else ''})")
    return D


def check_operator_finite(name: str, op: Any) -> None:
    """Every floating-point array held by the operator (or pytree) ``op`` is finite, e.g. the atoms of a ``Dense``
    or the filters of a ``Conv`` (skipped for traced leaves). The ValueError names ``name``.

    Example:
      >>> import numpy as np
      >>> from sparsejax import _validate as V
      >>> V.check_operator_finite("layers[1]", {"filters": np.array([1.0, np.inf])})
      Traceback (most recent call last):
      ...
      ValueError: layers[1] contains NaN or infinite values
    """
    for leaf in jax.tree_util.tree_leaves(op):
        if isinstance(leaf, (jax.Array, np.ndarray)) and jnp.issubdtype(leaf.dtype, jnp.inexact):
            check_finite(name, leaf)


def check_support(name: str, idx: Any, size: int) -> jax.Array:
    """A support (list of indices): a 1-D integer array with entries in [0, ``size``) and no index twice (the
    range and duplicate checks run when the value is concrete). Returns it as a JAX array.

    Example:
      >>> import numpy as np
      >>> from sparsejax import _validate as V
      >>> V.check_support("support2", np.array([0, 2]), 3).tolist()
      [0, 2]
      >>> V.check_support("support2", np.array([2, 0, 2]), 3)
      Traceback (most recent call last):
      ...
      ValueError: support2 must not repeat an index, got [2] more than once
    """
    dtype = getattr(idx, "dtype", None)
    if dtype is None:
        idx = np.asarray(idx)
        dtype = idx.dtype
        if idx.size == 0:
            idx, dtype = idx.astype(np.int32), np.dtype(np.int32)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer index array, got dtype {dtype}")
    idx = jnp.asarray(idx)
    check_ndim(name, idx, (1,), "a list of indices")
    if is_concrete(idx) and idx.size:
        v = np.asarray(idx)
        if v.min() < 0 or v.max() >= size:
            raise ValueError(f"{name} must hold indices in [0, {size}), got min {int(v.min())}, max {int(v.max())}")
        values, counts = np.unique(v, return_counts=True)
        if np.any(counts > 1):
            raise ValueError(f"{name} must not repeat an index, got {values[counts > 1][:8].tolist()} more than once")
    return idx


def nan_if_negative(x: Any) -> Any:
    """``x`` with its negative entries replaced by NaN when ``x`` is traced (a concrete value is returned as is: it
    was checked by ``check_nonnegative`` and raised there).

    A threshold or l1 weight must be >= 0; with a negative one the Lasso objective is unbounded below. Under a user's
    ``jit`` the check cannot raise, so the invalid value becomes NaN: every pursuit then reports the problem as
    invalid (``Status.NONFINITE_INPUT``, ``converged`` False) instead of running to an unbounded objective. The
    derivative for valid (>= 0) entries is unchanged.

    Example:
      >>> import jax
      >>> from sparsejax import _validate as V
      >>> jax.jit(V.nan_if_negative)(jax.numpy.array([0.5, -1.0])).tolist()
      [0.5, nan]
    """
    if is_concrete(x):
        return x
    return jnp.where(x >= 0, x, jnp.asarray(jnp.nan, jnp.result_type(x)))


def all_finite(*trees: Any) -> jax.Array:
    """Traced boolean scalar: every floating-point entry of the arrays / pytrees / operators ``trees`` is finite.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax import _validate as V
      >>> bool(V.all_finite(jnp.ones(2), {"b": jnp.array([1.0, jnp.inf])}))
      False
    """
    ok = jnp.asarray(True)
    for leaf in jax.tree_util.tree_leaves(trees):
        if not isinstance(leaf, (jax.Array, np.ndarray, float)):
            continue
        leaf = jnp.asarray(leaf)
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            ok = ok & jnp.all(jnp.isfinite(leaf))
    return ok


def check_lasso_point(D: Any, y: Any, a: Any, lam: Any) -> None:
    """The arguments of a Lasso evaluation at a point (objective, duality gap), checked before tracing: ``D`` a
    non-empty dictionary (an (n, m) array, a ``Dense``, or any operator with ``code_shape`` / ``signal_shape``),
    ``y`` of its signal shape, ``a`` of its code shape, both float32/64 and finite, ``lam`` >= 0 broadcastable to
    the codes. Each error names the argument.

    Example:
      >>> import numpy as np
      >>> from sparsejax import _validate as V
      >>> V.check_lasso_point(np.eye(3), np.ones(3), np.zeros(2), 0.1)
      Traceback (most recent call last):
      ...
      ValueError: a must have shape (3) (one code per atom of D), got (2,)
    """
    if hasattr(D, "code_shape") and not hasattr(D, "atoms"):         # a LinearOperator without explicit atoms
        code_shape, signal_shape = tuple(D.code_shape), tuple(D.signal_shape)
        check_operator_finite("D", D)
    else:
        atoms = check_dictionary("D", D)
        signal_shape, code_shape = (atoms.shape[0],), (atoms.shape[1],)
    y = as_float_array("y", y)
    check_shape("y", y, signal_shape, "the signal shape of D")
    check_finite("y", y)
    a = as_float_array("a", a)
    check_shape("a", a, code_shape, "one code per atom of D")
    check_finite("a", a)
    lam = as_float_array("lam", lam)
    broadcastable("lam", lam, code_shape)
    check_nonnegative("lam", lam)
