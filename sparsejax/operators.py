"""Linear operators: the one interface every pursuit accepts (dense, convolutional and chained).

An operator A maps codes (shape ``code_shape``) to signals (shape ``signal_shape``):

    A.apply(codes)   = D a          (synthesis)
    A.adjoint(sig)   = D^T y        (analysis)
    A.normal(codes)  = D^T D a
    A.lipschitz()    = ||D||_2^2    (Lipschitz constant of the gradient of 1/2||y - D a||^2)

Operators are immutable pytrees: their arrays are leaves (traced, differentiable, never baked into
a compiled function), their geometry is static aux data. Pursuits handle one signal; batch with
``jax.vmap`` (for ``Dense`` XLA turns the vmapped mat-vecs into one matrix product).

Two numerical tools of every operator live here, written once: ``power_iteration`` (the largest eigenvalue of
D^T D, for the step sizes of the proximal-gradient pursuits) and ``shifted_normal_solver`` (the solve of
(D^T D + sigma I) x = q of the ADMM pursuits: Cholesky for a dense dictionary, conjugate gradients otherwise).
"""
from __future__ import annotations

import math
from typing import Tuple

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax._validate import as_float_array, check_choice, check_ndim
from sparsejax.dictionary import mutual_coherence

__all__ = ["LinearOperator", "Dense", "power_iteration", "as_operator", "shifted_normal_solver", "shifted_normal_family",
           "STARTS"]

# the start vectors of power_iteration: a Gaussian draw, or a fixed generic vector (no PRNG to compile)
STARTS = ("random", "fixed")


def _vdot(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.sum(a * b)


def _fixed_start(shape, dtype) -> jax.Array:
    """A fixed, generic start vector (a cheap hash of the index, entries in [-0.5, 0.5): no PRNG to compile)."""
    i = jnp.arange(math.prod(shape), dtype=dtype)
    v = jnp.sin(i * 12.9898 + 78.233) * 43758.5453
    return (v - jnp.floor(v) - 0.5).reshape(shape)


def power_iteration(normal_fn, code_shape, dtype, num_iter: int = 100, key=None, *,
                    start: str = "random") -> jax.Array:
    """Largest eigenvalue of the positive semi-definite map ``normal_fn`` (= ||A||_2^2 for ``A^T A``).

    v_0 = the start vector / ||.||, v_{t+1} = N v_t / ||N v_t||, estimate <v_T, N v_T> (von Mises' power method;
    Golub & Van Loan, "Matrix Computations", 4th ed., sec. 7.3.1). It converges from below at the rate
    (lambda_2 / lambda_1)^(2T) for a start vector not orthogonal to the top eigenvector; pursuits use it as L in a
    step 1/L. A fixed number of steps (``lax.fori_loop``): jittable and differentiable.

    Args:
      normal_fn: the map v -> N v (e.g. ``op.normal``).
      code_shape: the shape of v.
      dtype: its floating dtype.
      num_iter: power steps (static).
      key: PRNG key of the Gaussian start (``start="random"``); default ``PRNGKey(0)``.
      start: ``"random"`` (a Gaussian vector drawn from ``key``) or ``"fixed"`` (a fixed generic vector computed
        without a PRNG: the cheapest start to compile inside a jitted function; ``key`` must then be None).

    Returns:
      The estimate, a scalar of ``dtype``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> N = lambda v: jnp.array([4.0, 1.0, 0.5]) * v        # eigenvalues 4, 1, 0.5
      >>> round(float(sj.power_iteration(N, (3,), jnp.float32, num_iter=50)), 4)
      4.0
      >>> round(float(sj.power_iteration(N, (3,), jnp.float32, num_iter=50, start="fixed")), 4)
      4.0
    """
    check_choice("start", start, STARTS)
    if start == "fixed":
        if key is not None:
            raise ValueError("key draws a random start vector: pass start='random' with it, or no key")
        v = _fixed_start(code_shape, dtype)
    else:
        key = jax.random.PRNGKey(0) if key is None else key
        v = jax.random.normal(key, code_shape, dtype=dtype)
    v = v / jnp.sqrt(_vdot(v, v))

    def body(_, v):
        w = normal_fn(v)
        return w / jnp.maximum(jnp.sqrt(_vdot(w, w)), jnp.finfo(dtype).tiny)

    v = lax.fori_loop(0, num_iter, body, v)
    return _vdot(v, normal_fn(v))


class LinearOperator:
    """Base class of the dictionaries D: codes (``code_shape``) -> signals (``signal_shape``).

    Subclasses implement ``apply``, ``adjoint``, ``code_shape``, ``signal_shape`` and ``dtype``, and register
    themselves as pytrees; ``normal``, ``lipschitz`` and ``T`` come from here. The adjoint must satisfy
    <D a, y> = <a, D^T y> for all a, y (tests/test_operators.py checks it for every operator).

    Example: a diagonal operator written from scratch.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> @jax.tree_util.register_pytree_node_class
      ... class Diag(sj.LinearOperator):
      ...     def __init__(self, d): self.d = d
      ...     code_shape = signal_shape = property(lambda self: self.d.shape)
      ...     dtype = property(lambda self: self.d.dtype)
      ...     def apply(self, codes): return self.d * codes
      ...     def adjoint(self, signal): return self.d * signal
      ...     def tree_flatten(self): return (self.d,), None
      ...     @classmethod
      ...     def tree_unflatten(cls, aux, children): return cls(*children)
      >>> op = Diag(jnp.array([3.0, 1.0]))
      >>> op.normal(jnp.ones(2)).tolist(), round(float(op.lipschitz()), 4)
      ([9.0, 1.0], 9.0)
    """

    code_shape: Tuple[int, ...]
    signal_shape: Tuple[int, ...]

    def apply(self, codes: jax.Array) -> jax.Array:  # pragma: no cover - abstract
        """Synthesis D a: codes of shape ``code_shape`` -> a signal of shape ``signal_shape``.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Dense(jnp.array([[1.0, 2.0], [0.0, 1.0]])).apply(jnp.array([1.0, 1.0])).tolist()
          [3.0, 1.0]
        """
        raise NotImplementedError

    def adjoint(self, signal: jax.Array) -> jax.Array:  # pragma: no cover - abstract
        """Analysis D^T y: a signal of shape ``signal_shape`` -> codes of shape ``code_shape``.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Dense(jnp.array([[1.0, 2.0], [0.0, 1.0]])).adjoint(jnp.array([1.0, 1.0])).tolist()
          [1.0, 3.0]
        """
        raise NotImplementedError

    @property
    def dtype(self):  # pragma: no cover - abstract
        """The floating dtype of the operator's arrays.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> str(sj.Dense(jnp.eye(2, dtype=jnp.float32)).dtype)
          'float32'
        """
        raise NotImplementedError

    def normal(self, codes: jax.Array) -> jax.Array:
        """The normal map D^T D a (``adjoint(apply(codes))``).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Dense(jnp.array([[1.0, 1.0], [0.0, 1.0]])).normal(jnp.array([1.0, 0.0])).tolist()
          [1.0, 1.0]
        """
        return self.adjoint(self.apply(codes))

    def lipschitz(self, num_iter: int = 100, key=None) -> jax.Array:
        """L = ||D||_2^2, the Lipschitz constant of the gradient of 1/2||y - D a||^2, by ``power_iteration`` on D^T D
        from a Gaussian start (``key``, default ``PRNGKey(0)``). Subclasses with a closed form override it.

        Args:
          num_iter: power steps (static).
          key: PRNG key of the start vector.

        Returns:
          A scalar of ``dtype`` (converges from below).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> D = sj.Dense(jnp.array([[3.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
          >>> round(float(D.T.lipschitz(num_iter=50)), 4)      # power iteration on D D^T: sigma_max^2 = 9
          9.0
        """
        return power_iteration(self.normal, self.code_shape, self.dtype, num_iter, key)

    @property
    def T(self) -> "Adjoint":
        """The adjoint D^T as an operator (``Adjoint``).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> D = sj.Dense(jnp.ones((2, 3)))
          >>> D.T.code_shape, D.T.signal_shape, D.T.apply(jnp.ones(2)).tolist()
          ((2,), (3,), [2.0, 2.0, 2.0])
        """
        return Adjoint(self)


@jax.tree_util.register_pytree_node_class
class Adjoint(LinearOperator):
    """The adjoint D^T of an operator, as an operator (codes and signals swap roles; ``apply`` is D^T).

    Args:
      op: the operator D.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = sj.Dense(jnp.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]]))
      >>> A = D.T
      >>> A.apply(jnp.array([1.0, 1.0])).tolist(), A.adjoint(jnp.ones(3)).tolist()
      ([1.0, 3.0, 1.0], [3.0, 2.0])
    """

    def __init__(self, op: LinearOperator):
        self.op = op

    code_shape = property(lambda self: self.op.signal_shape)
    signal_shape = property(lambda self: self.op.code_shape)
    dtype = property(lambda self: self.op.dtype)

    def apply(self, x):
        """D^T x, the adjoint of the wrapped operator.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Dense(jnp.array([[1.0, 2.0]])).T.apply(jnp.array([2.0])).tolist()
          [2.0, 4.0]
        """
        return self.op.adjoint(x)

    def adjoint(self, y):
        """(D^T)^T y = D y, the wrapped operator itself.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Dense(jnp.array([[1.0, 2.0]])).T.adjoint(jnp.array([1.0, 1.0])).tolist()
          [3.0]
        """
        return self.op.apply(y)

    def tree_flatten(self):
        """The pytree protocol: the wrapped operator is the one child, no static data.

        Example:
          >>> import jax
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> [x.shape for x in jax.tree_util.tree_leaves(sj.Dense(jnp.ones((2, 3))).T)]
          [(2, 3)]
        """
        return (self.op,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        """The pytree protocol: rebuild from ``tree_flatten``'s output (e.g. with traced leaves under ``jit``).

        Example:
          >>> import jax
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> A = jax.tree_util.tree_map(lambda x: 2 * x, sj.Dense(jnp.ones((2, 3))).T)
          >>> type(A).__name__, A.apply(jnp.ones(2)).tolist()
          ('Adjoint', [4.0, 4.0, 4.0])
        """
        return cls(*children)


@jax.tree_util.register_pytree_node_class
class Dense(LinearOperator):
    """A dense dictionary D in R^{n x m}: atoms are the columns (the Sparseland model y = D a).

    Args:
      atoms: (n, m) floating array. Not normalised here: use ``sparsejax.normalize_atoms``.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = sj.Dense(sj.normalize_atoms(jax.random.normal(jax.random.PRNGKey(0), (8, 16))))
      >>> a = jnp.zeros(16).at[3].set(2.0)
      >>> y = D.apply(a)
      >>> y.shape, D.code_shape, D.signal_shape, D.num_atoms
      ((8,), (16,), (8,), 16)
      >>> round(float(D.adjoint(y)[3]), 4)                                # <d_3, 2 d_3> = 2
      2.0
    """

    def __init__(self, atoms):
        atoms = as_float_array("atoms", atoms)
        check_ndim("atoms", atoms, (2,), "n signal dimensions x m atoms")
        self.atoms = atoms      # emptiness and NaN atoms are checked by the pursuits (naming D) or flagged under jit

    # -- geometry ---------------------------------------------------------
    @property
    def code_shape(self):
        """(m,): one code per atom.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Dense(jnp.ones((4, 6))).code_shape
          (6,)
        """
        return (self.atoms.shape[1],)

    @property
    def signal_shape(self):
        """(n,): the signal dimension.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Dense(jnp.ones((4, 6))).signal_shape
          (4,)
        """
        return (self.atoms.shape[0],)

    @property
    def num_atoms(self) -> int:
        """m, the number of atoms (columns).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Dense(jnp.ones((4, 6))).num_atoms
          6
        """
        return self.atoms.shape[1]

    @property
    def dtype(self):
        """The dtype of the atoms.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> str(sj.Dense(jnp.ones((4, 6), jnp.float32)).dtype)
          'float32'
        """
        return self.atoms.dtype

    # -- maps -------------------------------------------------------------
    def apply(self, codes):
        """D a = sum_j a_j d_j.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Dense(jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])).apply(jnp.array([1.0, 2.0, 3.0])).tolist()
          [4.0, 5.0]
        """
        return self.atoms @ codes

    def adjoint(self, signal):
        """D^T y = (<d_j, y>)_j, the correlation of the signal with every atom.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Dense(jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])).adjoint(jnp.array([1.0, 2.0])).tolist()
          [1.0, 2.0, 3.0]
        """
        return self.atoms.T @ signal

    def gram(self) -> jax.Array:
        """The Gram matrix G = D^T D (m x m), G_ij = <d_i, d_j>.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Dense(jnp.array([[1.0, 1.0], [0.0, 1.0]])).gram().tolist()
          [[1.0, 1.0], [1.0, 2.0]]
        """
        return self.atoms.T @ self.atoms

    def lipschitz(self, num_iter: int = 100, key=None) -> jax.Array:
        """||D||_2^2 exactly: the largest eigenvalue of the smaller of D D^T and D^T D (``num_iter`` and ``key`` are
        accepted for the common interface and ignored).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> D = jnp.array([[3.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
          >>> round(float(sj.Dense(D).lipschitz()), 4)                        # sigma_max = 3
          9.0
        """
        n, m = self.atoms.shape
        small = self.atoms @ self.atoms.T if n <= m else self.atoms.T @ self.atoms
        return jnp.linalg.eigvalsh(small)[-1]

    def coherence(self) -> jax.Array:
        """Mutual coherence max_{i != j} |<d_i, d_j>| / (||d_i|| ||d_j||) (``sparsejax.mutual_coherence``).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> round(float(sj.Dense(jnp.array([[1.0, 1.0], [0.0, 1.0]])).coherence()), 4)   # cos 45 degrees
          0.7071
        """
        return mutual_coherence(self.atoms)

    # -- pytree -----------------------------------------------------------
    def tree_flatten(self):
        """The pytree protocol: the atoms are the one leaf (traced under ``jit``, differentiable), no static data.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> leaves, aux = sj.Dense(jnp.ones((2, 3))).tree_flatten()
          >>> [x.shape for x in leaves], aux
          ([(2, 3)], None)
        """
        return (self.atoms,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        """The pytree protocol: rebuild from the leaves without the constructor's checks (the leaves may be traced).

        Example:
          >>> import jax
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> g = jax.grad(lambda D: jnp.sum(D.apply(jnp.ones(3)) ** 2))(sj.Dense(jnp.ones((2, 3))))
          >>> type(g).__name__, g.atoms.tolist()                 # the gradient is a Dense too
          ('Dense', [[6.0, 6.0, 6.0], [6.0, 6.0, 6.0]])
        """
        obj = object.__new__(cls)
        obj.atoms = children[0]
        return obj

    def __repr__(self):
        return f"Dense(n={self.atoms.shape[0]}, m={self.atoms.shape[1]}, dtype={self.atoms.dtype})"


def as_operator(D) -> LinearOperator:
    """Accept an operator or a 2-D array of atoms (wrapped as ``Dense``); anything else is a TypeError.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> op = sj.as_operator(jnp.ones((3, 5)))
      >>> type(op).__name__, sj.as_operator(op) is op
      ('Dense', True)
    """
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
      >>> import sparsejax as sj
      >>> from sparsejax.operators import shifted_normal_solver
      >>> D = sj.Dense(jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
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


def shifted_normal_family(op: "LinearOperator", cg_iter: int):
    """Solvers of (D^T D + sigma I) x = q for any shift sigma > 0, as ``solve(q, x_prev, sigma) -> x``: one
    factorisation serves every sigma (an ADMM whose penalty changes under residual balancing).

    For a ``Dense`` dictionary (n x m) the smaller Gram matrix is diagonalised once, G = V diag(e) V^T
    (``eigh``): for m <= n, (D^T D + sigma I)^{-1} q = V diag(1 / (e + sigma)) V^T q; for m > n, by the Woodbury
    identity, (q - D^T V diag(1 / (e + sigma)) V^T D q) / sigma. A solve costs what two triangular solves of a
    Cholesky factor cost. Any other operator: ``cg_iter`` conjugate-gradient steps warm-started from ``x_prev``.

    Args:
      op: the dictionary D.
      cg_iter: conjugate-gradient steps for a matrix-free operator.

    Returns:
      ``solve(q, x_prev, sigma)``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.operators import shifted_normal_family
      >>> D = sj.Dense(jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
      >>> solve = shifted_normal_family(D, cg_iter=10)
      >>> [bool(jnp.allclose(D.normal(x) + s * x, jnp.ones(3), atol=1e-5))
      ...  for s in (0.5, 3.0) for x in [solve(jnp.ones(3), jnp.zeros(3), s)]]
      [True, True]
    """
    dtype = op.dtype
    if hasattr(op, "atoms"):
        D = op.atoms.astype(dtype)
        n, m = D.shape
        e, V = jnp.linalg.eigh(D.T @ D if m <= n else D @ D.T)
        e = jnp.maximum(e, 0.0)
        if m <= n:
            return lambda q, _, sigma: V @ ((V.T @ q) / (e + sigma))
        return lambda q, _, sigma: (q - D.T @ (V @ ((V.T @ (D @ q)) / (e + sigma)))) / sigma

    def solve_cg(q, x0, sigma):
        return jax.scipy.sparse.linalg.cg(lambda x: op.normal(x) + sigma * x, q, x0=x0, tol=0.0, atol=0.0,
                                          maxiter=cg_iter)[0]

    return solve_cg
