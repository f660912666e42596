"""Dense dictionaries: construction, normalisation and coherence measures.

mu(D)      = max_{j != k} |d_j^T d_k|                                   (mutual coherence, unit-norm atoms;
                                                                        Donoho & Elad, PNAS 2003)
mu_1(k)    = max_j max_{|S| = k, j not in S} sum_{i in S} |d_i^T d_j|   (Babel function; Tropp, IEEE Trans.
                                                                        Inf. Theory 2004)

A dictionary is an (n, m) array whose m columns are the atoms (or a ``Dense`` operator: its ``atoms`` are used).
It must be float32 / float64 with at least one row and one atom; a concrete dictionary with a NaN or infinite entry
is a ValueError naming the atoms, and under ``jit`` such an atom stays non-finite (it is never silently turned into a
zero atom), so the coherence measures come out NaN.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax._validate import FLOAT_DTYPES, check_dictionary, check_positive_int

__all__ = [
    "normalize_atoms",
    "gram",
    "mutual_coherence",
    "babel",
    "random_gaussian",
    "overcomplete_dct",
    "overcomplete_dct_2d",
]


def _atoms(D):
    return check_dictionary("D", D, "n x m atoms as columns")


def normalize_atoms(D, eps: float = 0.0) -> jax.Array:
    """Scale each column to unit l2 norm; a column of norm <= ``eps`` becomes zero, a non-finite column (traced)
    stays non-finite.

    Args:
      D: (n, m) atoms as columns, or a ``Dense``.
      eps: norms at or below it count as zero.

    Returns:
      (n, m) array.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.normalize_atoms(jnp.array([[3.0, 0.0], [4.0, 0.0]])).tolist()
      [[0.6, 0.0], [0.8, 0.0]]
    """
    D = _atoms(D)
    norms = jnp.linalg.norm(D, axis=0, keepdims=True)
    small = norms <= eps                     # False for a NaN norm: that column stays NaN
    safe = jnp.where(small, jnp.ones_like(norms), norms)
    return jnp.where(small, jnp.zeros_like(D), D / safe)


def gram(D) -> jax.Array:
    """The Gram matrix G = D^T D (m x m) of the atoms.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.gram(jnp.array([[1.0, 1.0], [0.0, 1.0]])).tolist()
      [[1.0, 1.0], [1.0, 2.0]]
    """
    D = _atoms(D)
    return D.T @ D


def _abs_offdiag_gram(D, normalize: bool):
    D = _atoms(D)
    if normalize:
        D = normalize_atoms(D)
    G = jnp.abs(D.T @ D)
    return G * (1 - jnp.eye(G.shape[0], dtype=G.dtype))


def mutual_coherence(D, normalize: bool = True) -> jax.Array:
    """Mutual coherence mu(D) = max_{j != k} |<d_j, d_k>| of the (normalised) atoms (Donoho & Elad, "Optimally
    sparse representation in general (nonorthogonal) dictionaries via l1 minimization", PNAS 2003): a
    representation with fewer than (1 + 1/mu) / 2 nonzeros is the sparsest one.

    Args:
      D: (n, m) atoms, or a ``Dense``.
      normalize: normalise the atoms first (set False when they already have unit norm).

    Returns:
      scalar in [0, 1] for unit-norm atoms.

    Example: the identity and the normalised 2 x 2 Hadamard basis, mu = 1/sqrt(2).
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = jnp.array([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, -1.0]])
      >>> round(float(sj.mutual_coherence(D)), 4)
      0.7071
    """
    return jnp.max(_abs_offdiag_gram(D, normalize))


def babel(D, k: int | None = None, normalize: bool = True) -> jax.Array:
    """Babel function mu_1(k) = max_j max_{|S| = k, j not in S} sum_{i in S} |<d_i, d_j>| (Tropp, "Greed is good:
    algorithmic results for sparse approximation", IEEE Trans. Inf. Theory 2004, section 3).

    mu_1(1) = mu(D) and mu_1(k) <= k mu(D); OMP and BP recover every k-sparse representation when
    mu_1(k - 1) + mu_1(k) < 1.

    Args:
      D: (n, m) atoms, or a ``Dense``.
      k: 1 <= k <= m - 1, or None for the whole curve mu_1(1), ..., mu_1(m - 1).
      normalize: normalise the atoms first.

    Returns:
      scalar mu_1(k), or the (m - 1,) curve when ``k`` is None.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = jnp.array([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, -1.0]])
      >>> [round(float(v), 4) for v in sj.babel(D)]
      [0.7071, 1.4142, 1.4142]
    """
    G = _abs_offdiag_gram(D, normalize)
    m = G.shape[0]
    srt = -jnp.sort(-G, axis=1)[:, : m - 1]  # drop one zero: the diagonal
    curve = jnp.max(jnp.cumsum(srt, axis=1), axis=0)
    curve = jnp.where(jnp.all(jnp.isfinite(G)), curve, jnp.nan)   # a non-finite atom (traced): no value
    if k is None:
        return curve
    k = check_positive_int("k", k, m - 1, "number of atoms minus one")
    return curve[k - 1]


def random_gaussian(key, n: int, m: int, dtype=jnp.float32) -> jax.Array:
    """An (n, m) dictionary of i.i.d. Gaussian atoms normalised to unit l2 norm.

    Args:
      key: a ``jax.random`` key.
      n, m: signal dimension and number of atoms (positive Python ints).
      dtype: floating dtype.

    Returns:
      (n, m) array with unit-norm columns.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = sj.random_gaussian(jax.random.PRNGKey(0), 8, 20)
      >>> D.shape, bool(jnp.allclose(jnp.linalg.norm(D, axis=0), 1.0))
      ((8, 20), True)
    """
    n = check_positive_int("n", n)
    m = check_positive_int("m", m)
    return normalize_atoms(jax.random.normal(key, (n, m), dtype=_check_dtype(dtype)))


def _check_dtype(dtype):
    if np.dtype(dtype) not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype).name}")
    return dtype


def _dct_np(n: int, m: int) -> np.ndarray:
    t = np.arange(n)[:, None]
    k = np.arange(m)[None, :]
    A = np.cos(np.pi * t * k / m)
    A[:, 1:] -= A[:, 1:].mean(axis=0, keepdims=True)
    return A / np.linalg.norm(A, axis=0, keepdims=True)


def overcomplete_dct(n: int, m: int, dtype=jnp.float32) -> jax.Array:
    """1-D overcomplete DCT (n x m, m >= n): atom k samples cos(pi k t / m), t = 0..n-1, the mean removed
    for k > 0, unit norm (per dimension, the initial dictionary of Aharon, Elad & Bruckstein, "K-SVD: an
    algorithm for designing overcomplete dictionaries for sparse representation", IEEE TSP 2006, section V).

    Example: the first atom is the constant 1/sqrt(n), the others have zero mean.
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> C = sj.overcomplete_dct(4, 8)
      >>> C.shape, round(float(C[0, 0]), 4), bool(jnp.allclose(C[:, 1:].mean(axis=0), 0.0, atol=1e-6))
      ((4, 8), 0.5, True)
    """
    n = check_positive_int("n", n)
    m = check_positive_int("m", m)
    return jnp.asarray(_dct_np(n, m), dtype=_check_dtype(dtype))


def overcomplete_dct_2d(p: int, m: int, dtype=jnp.float32) -> jax.Array:
    """Separable 2-D overcomplete DCT for p x p patches: (p*p, m) with m a perfect square >= p*p.

    Atom (i, j) is the outer product of 1-D atoms i and j (Kronecker product), flattened row-major
    (the K-SVD paper's initial dictionary for 8 x 8 patches with m = 256).

    Example:
      >>> import sparsejax as sj
      >>> sj.overcomplete_dct_2d(8, 256).shape
      (64, 256)
    """
    p = check_positive_int("p", p)
    m = check_positive_int("m", m)
    r = int(round(math.sqrt(m)))
    if r * r != m:
        raise ValueError(f"m must be a perfect square for a separable 2-D DCT, got {m}")
    A = _dct_np(p, r)
    return jnp.asarray(np.kron(A, A), dtype=_check_dtype(dtype))
