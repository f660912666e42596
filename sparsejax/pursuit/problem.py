"""The Lasso / BPDN problem min_a 1/2 ||y - D a||_2^2 + lam ||a||_1: argument checks before tracing, the objective,
and the ``prox=`` argument of the pursuits.

``prox`` names the shrinkage (``sparsejax.shrink``) that defines the codes: "soft" (signed codes, l1), "nonneg_soft"
(non-negative codes, l1 + indicator(a >= 0)), "hard", or a callable ``(z, threshold) -> z``. Proximal-gradient
pursuits (ISTA / FISTA, thresholding) take any of them; the pursuits whose algebra is specific to the l1 norm (OMP,
the LARS homotopy, ADMM, the batched Lasso) take "soft" or "nonneg_soft" (``sign_constraint``).
"""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.operators import LinearOperator, as_operator

__all__ = ["prepare_problem", "prepare_batch", "prepare_init", "dense_atoms", "l1_objective", "objective_l1",
           "resolve_prox", "sign_constraint", "SIGN_PROXES"]

SIGN_PROXES = shrink.SIGN_PROXES  # the one tuple of the l1 shrinkages, defined in sparsejax.shrink


def resolve_prox(prox) -> Callable:
    """The shrinkage named by ``prox`` (a name of ``sparsejax.shrink.PROXES`` or a callable), checked before tracing.

    Raises ValueError naming ``prox`` otherwise (a boolean, the old ``nonneg=`` flag, gets a hint).

    Example:
      >>> import jax.numpy as jnp
      >>> resolve_prox("nonneg_soft")(jnp.array([-1.0, 2.0]), 0.5).tolist()
      [0.0, 1.5]
    """
    if isinstance(prox, bool):
        raise ValueError(f"prox must be a shrinkage name {tuple(shrink.PROXES)} or a callable (z, threshold) -> z, "
                         f"got the boolean {prox} (nonneg=True is now prox='nonneg_soft')")
    return shrink.get(prox)


def sign_constraint(prox, algorithm: str) -> bool:
    """Check ``prox`` for a pursuit that supports signed ("soft") or non-negative ("nonneg_soft") codes only;
    return True for non-negative codes.

    Example:
      >>> sign_constraint("nonneg_soft", "OMP")
      True
    """
    if isinstance(prox, bool) or prox not in SIGN_PROXES:
        hint = " (nonneg=True is now prox='nonneg_soft')" if isinstance(prox, bool) else ""
        raise ValueError(f"prox must be one of {SIGN_PROXES} for {algorithm} (signed or non-negative codes), "
                         f"got {prox!r}{hint}")
    return prox == "nonneg_soft"


def prepare_problem(D, y, lam=None, *, lam_name: str = "lam"):
    """Validate ``D`` (operator or (n, m) array), ``y`` (one signal) and ``lam``; return ``(op, y, lam, dtype)``.

    Raises TypeError for non-float data (float16 included), ValueError for an empty dictionary (no atom or no
    row), shape mismatch, negative or non-finite ``lam`` and non-finite ``y`` or atoms (value checks only when
    values are concrete). A traced negative ``lam`` becomes NaN (``_validate.nan_if_negative``), so that the
    pursuit reports the invalid problem (``Status.NONFINITE_INPUT``) instead of running to an unbounded objective.

    Example:
      >>> import jax.numpy as jnp
      >>> op, y, lam, dtype = prepare_problem(jnp.eye(3), jnp.ones(3), 0.1)
      >>> tuple(op.code_shape), float(lam)
      ((3,), 0.1)
    """
    op = as_operator(D)
    if any(int(d) == 0 for d in tuple(op.code_shape) + tuple(op.signal_shape)):
        raise ValueError(f"D must have at least one atom and a non-empty signal shape, got code shape "
                         f"{tuple(op.code_shape)} and signal shape {tuple(op.signal_shape)}")
    y = V.as_float_array("y", y)
    if tuple(y.shape) != tuple(op.signal_shape):
        raise ValueError(
            f"y must have the dictionary's signal shape {tuple(op.signal_shape)}, got {tuple(y.shape)}; "
            "for a batch of signals use jax.vmap or sparsejax.pursuit.encode"
        )
    V.check_finite("y", y)
    if isinstance(op, LinearOperator) and hasattr(op, "atoms"):
        V.check_dictionary("D", op.atoms)
    else:
        V.check_operator_finite("D", op)
    dtype = jnp.result_type(op.dtype, y.dtype)
    y = y.astype(dtype)
    if lam is not None:
        lam = V.as_float_array(lam_name, lam)
        V.broadcastable(lam_name, lam, tuple(op.code_shape))
        V.check_nonnegative(lam_name, lam)
        lam = V.nan_if_negative(lam.astype(dtype))
        if lam.ndim > 0:  # explicit broadcast: strict rank promotion stays happy downstream
            lam = jnp.broadcast_to(lam, tuple(op.code_shape))
    return op, y, lam, dtype


def dense_atoms(D, algorithm: str):
    """The (n, m) atoms of a dense dictionary (an array or an operator with ``.atoms``); TypeError otherwise.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.operators import Dense
      >>> dense_atoms(Dense(jnp.eye(2)), "OMP").shape
      (2, 2)
    """
    if isinstance(D, LinearOperator):
        atoms = getattr(D, "atoms", None)
        if atoms is None:
            raise TypeError(f"{algorithm} needs a dense dictionary (an (n, m) array or sparsejax.Dense), "
                            f"got {type(D).__name__}")
        return atoms
    return D


def prepare_batch(D, Y, algorithm: str):
    """Validate a dense dictionary and a batch of signals (rows of ``Y``); return ``(atoms, Y, dtype)`` cast to
    the common floating dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> atoms, Y, dtype = prepare_batch(jnp.eye(3), jnp.ones((5, 3)), "OMP")
      >>> Y.shape
      (5, 3)
    """
    atoms = V.check_dictionary("D", dense_atoms(D, algorithm), "n signal dimensions x m atoms")
    Y = V.as_float_array("Y", Y)
    V.check_ndim("Y", Y, (2,), "a batch of signals, one per row: (B, n)")
    n = atoms.shape[0]
    if Y.shape[1] != n:
        raise ValueError(f"Y must have shape (B, {n}) (signals as rows, n = D.shape[0]) to match D of shape "
                         f"{tuple(atoms.shape)}, got {tuple(Y.shape)}")
    V.check_finite("Y", Y)
    dtype = jnp.result_type(atoms.dtype, Y.dtype)
    return atoms.astype(dtype), Y.astype(dtype), dtype


def l1_objective(op, y, a, lam):
    """F(a) = 1/2 ||y - D a||_2^2 + sum(lam * |a|) for an operator ``op`` (arguments: dictionary, signal, codes, lam).

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.operators import Dense
      >>> round(float(l1_objective(Dense(jnp.eye(2)), jnp.array([1.0, 0.0]), jnp.array([0.5, 0.0]), 0.2)), 6)
      0.225
    """
    r = op.apply(a) - y
    return 0.5 * jnp.sum(r * r) + jnp.sum(lam * jnp.abs(a))


def objective_l1(op, y, lam, a):
    """Deprecated alias of ``l1_objective`` with the old argument order ``(op, y, lam, a)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.operators import Dense
      >>> round(float(objective_l1(Dense(jnp.eye(2)), jnp.array([1.0, 0.0]), 0.2, jnp.array([0.5, 0.0]))), 6)
      0.225
    """
    return l1_objective(op, y, a, lam)


def prepare_init(x0, op, dtype, name: str = "x0"):
    """The warm start: zeros of the code shape when ``x0`` is None, else ``x0`` checked against it.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.operators import Dense
      >>> prepare_init(None, Dense(jnp.eye(2)), jnp.float32).tolist()
      [0.0, 0.0]
    """
    if x0 is None:
        return jnp.zeros(op.code_shape, dtype)
    x0 = V.as_float_array(name, x0)
    V.check_shape(name, x0, tuple(op.code_shape), "the code shape of D")
    return x0.astype(dtype)
