"""Linear operators: the one interface every pursuit accepts (dense now, convolutional and chained later).

An operator A maps codes (shape ``code_shape``) to signals (shape ``signal_shape``):

    A.apply(codes)   = D a          (synthesis)
    A.adjoint(sig)   = D^T y        (analysis)
    A.normal(codes)  = D^T D a
    A.lipschitz()    = ||D||_2^2    (Lipschitz constant of the gradient of 1/2||y - D a||^2)

Operators are immutable pytrees: their arrays are leaves (traced, differentiable, never baked into
a compiled function), their geometry is static aux data. Pursuits handle one signal; batch with
``jax.vmap`` (for ``Dense`` XLA turns the vmapped mat-vecs into one matrix product).
"""
from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax._validate import as_float_array, check_ndim
from sparsejax.dictionary import mutual_coherence

__all__ = ["LinearOperator", "Dense", "power_iteration", "as_operator", "shifted_normal_solver"]


def _vdot(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.sum(a * b)


def power_iteration(normal_fn, code_shape, dtype, num_iter: int = 100, key=None) -> jax.Array:
    """Largest eigenvalue of the PSD map ``normal_fn`` (= ||A||_2^2 for ``A^T A``) by power iteration.

    Runs a fixed number of steps (``lax.fori_loop``), so it is jittable and differentiable.
    The estimate converges from below; pursuits use it as L in a step 1/L.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    v = jax.random.normal(key, code_shape, dtype=dtype)
    v = v / jnp.sqrt(_vdot(v, v))

    def body(_, v):
        w = normal_fn(v)
        return w / jnp.maximum(jnp.sqrt(_vdot(w, w)), jnp.finfo(dtype).tiny)

    v = lax.fori_loop(0, num_iter, body, v)
    return _vdot(v, normal_fn(v))


class LinearOperator:
    """Base class. Subclasses implement ``apply``, ``adjoint``, ``code_shape``, ``signal_shape``, ``dtype``
    and register themselves as pytrees."""

    code_shape: Tuple[int, ...]
    signal_shape: Tuple[int, ...]

    def apply(self, codes: jax.Array) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def adjoint(self, signal: jax.Array) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def dtype(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def normal(self, codes: jax.Array) -> jax.Array:
        """D^T D a."""
        return self.adjoint(self.apply(codes))

    def lipschitz(self, num_iter: int = 100, key=None) -> jax.Array:
        """||D||_2^2 by power iteration on D^T D."""
        return power_iteration(self.normal, self.code_shape, self.dtype, num_iter, key)

    @property
    def T(self) -> "Adjoint":
        return Adjoint(self)


@jax.tree_util.register_pytree_node_class
class Adjoint(LinearOperator):
    """The adjoint D^T of an operator, as an operator (codes and signals swap roles)."""

    def __init__(self, op: LinearOperator):
        self.op = op

    code_shape = property(lambda self: self.op.signal_shape)
    signal_shape = property(lambda self: self.op.code_shape)
    dtype = property(lambda self: self.op.dtype)

    def apply(self, x):
        return self.op.adjoint(x)

    def adjoint(self, y):
        return self.op.apply(y)

    def tree_flatten(self):
        return (self.op,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


@jax.tree_util.register_pytree_node_class
class Dense(LinearOperator):
    """A dense dictionary D in R^{n x m}: atoms are the columns.

    Args:
      atoms: (n, m) floating array. Not normalised here: use ``dictionary.normalize_atoms``.

    Example:
      >>> D = Dense(normalize_atoms(jax.random.normal(key, (64, 256))))
      >>> y = D.apply(a); a_back = D.adjoint(y)
    """

    def __init__(self, atoms):
        atoms = as_float_array("atoms", atoms)
        check_ndim("atoms", atoms, (2,), "n signal dimensions x m atoms")
        self.atoms = atoms

    # -- geometry ---------------------------------------------------------
    @property
    def code_shape(self):
        return (self.atoms.shape[1],)

    @property
    def signal_shape(self):
        return (self.atoms.shape[0],)

    @property
    def num_atoms(self) -> int:
        return self.atoms.shape[1]

    @property
    def dtype(self):
        return self.atoms.dtype

    # -- maps -------------------------------------------------------------
    def apply(self, codes):
        return self.atoms @ codes

    def adjoint(self, signal):
        return self.atoms.T @ signal

    def gram(self) -> jax.Array:
        """G = D^T D (m x m)."""
        return self.atoms.T @ self.atoms

    def lipschitz(self, num_iter: int = 100, key=None) -> jax.Array:
        """||D||_2^2, exactly: largest eigenvalue of the smaller of D D^T and D^T D."""
        n, m = self.atoms.shape
        small = self.atoms @ self.atoms.T if n <= m else self.atoms.T @ self.atoms
        return jnp.linalg.eigvalsh(small)[-1]

    def coherence(self) -> jax.Array:
        return mutual_coherence(self.atoms)

    # -- pytree -----------------------------------------------------------
    def tree_flatten(self):
        return (self.atoms,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.atoms = children[0]
        return obj

    def __repr__(self):
        return f"Dense(n={self.atoms.shape[0]}, m={self.atoms.shape[1]}, dtype={self.atoms.dtype})"


def as_operator(D) -> LinearOperator:
    """Accept an operator or a 2-D array (wrapped as ``Dense``)."""
    if isinstance(D, LinearOperator):
        return D
    if hasattr(D, "shape") or isinstance(D, (list, tuple)):
        return Dense(D)
    raise TypeError(f"D must be a LinearOperator or an (n, m) array of atoms, got {type(D).__name__}")


def shifted_normal_solver(op: "LinearOperator", sigma, cg_iter: int):
    """A solver of the shifted normal equations (D^T D + sigma I) x = q, as ``solve(q, x_prev) -> x``.

    The ADMM x-update of BPDN (Boyd et al., "Distributed optimization and statistical learning via the alternating
    direction method of multipliers", 2011, section 6.4). For a ``Dense`` dictionary (n x m) it is exact: a Cholesky
    factor of D^T D + sigma I (m <= n) or, by the Woodbury identity, of D D^T + sigma I (m > n), computed once. For
    any other operator it is ``cg_iter`` steps of conjugate gradients (``jax.scipy.sparse.linalg.cg``) warm-started
    from ``x_prev``.

    Args:
      op: the dictionary D.
      sigma: the shift (> 0, may be traced).
      cg_iter: conjugate-gradient steps for a matrix-free operator.

    Returns:
      ``solve(q, x_prev)``.

    Example:
      >>> import jax.numpy as jnp
      >>> D = Dense(jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
      >>> solve = shifted_normal_solver(D, 1.0, cg_iter=10)
      >>> x = solve(jnp.ones(3), jnp.zeros(3))
      >>> bool(jnp.allclose(D.normal(x) + x, jnp.ones(3), atol=1e-5))
      True
    """
    dtype = op.dtype
    if hasattr(op, "atoms"):
        D = op.atoms.astype(dtype)
        n, m = D.shape
        if m <= n:
            cf = jax.scipy.linalg.cho_factor(D.T @ D + sigma * jnp.eye(m, dtype=dtype), lower=True)
            return lambda q, _: jax.scipy.linalg.cho_solve(cf, q)
        cf = jax.scipy.linalg.cho_factor(D @ D.T + sigma * jnp.eye(n, dtype=dtype), lower=True)
        return lambda q, _: (q - D.T @ jax.scipy.linalg.cho_solve(cf, D @ q)) / sigma

    def solve_cg(q, x0):
        return jax.scipy.sparse.linalg.cg(lambda x: op.normal(x) + sigma * x, q, x0=x0, tol=0.0, atol=0.0,
                                          maxiter=cg_iter)[0]

    return solve_cg
