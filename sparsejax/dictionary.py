"""Dense dictionaries: construction, normalisation and the coherence measures of REFERENCE section 2.

mu(D)      = max_{j != k} |d_j^T d_k|                      (mutual coherence, unit-norm atoms)
mu_1(k)    = max_j max_{|S| = k, j not in S} sum_{i in S} |d_i^T d_j|   (Babel function, Tropp 2004)
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax._validate import as_float_array, check_ndim, check_positive_int

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
    D = getattr(D, "atoms", D)
    D = as_float_array("D", D)
    check_ndim("D", D, (2,), "n x m atoms as columns")
    return D


def normalize_atoms(D, eps: float = 0.0) -> jax.Array:
    """Scale each column to unit l2 norm (a zero column stays zero)."""
    D = _atoms(D)
    norms = jnp.linalg.norm(D, axis=0, keepdims=True)
    safe = jnp.where(norms > eps, norms, jnp.ones_like(norms))
    return jnp.where(norms > eps, D / safe, jnp.zeros_like(D))


def gram(D) -> jax.Array:
    """G = D^T D."""
    D = _atoms(D)
    return D.T @ D


def _abs_offdiag_gram(D, normalize: bool):
    D = _atoms(D)
    if normalize:
        D = normalize_atoms(D)
    G = jnp.abs(D.T @ D)
    return G * (1 - jnp.eye(G.shape[0], dtype=G.dtype))


def mutual_coherence(D, normalize: bool = True) -> jax.Array:
    """mu(D) = max_{j != k} |<d_j, d_k>| of the normalised atoms (Donoho & Elad 2003)."""
    return jnp.max(_abs_offdiag_gram(D, normalize))


def babel(D, k: int | None = None, normalize: bool = True) -> jax.Array:
    """Babel function mu_1(k) (Tropp 2004); with ``k=None`` returns mu_1(1..m-1) as a vector.

    mu_1(1) = mu(D) and mu_1(k) <= k mu(D).
    """
    G = _abs_offdiag_gram(D, normalize)
    m = G.shape[0]
    srt = -jnp.sort(-G, axis=1)[:, : m - 1]  # drop one zero: the diagonal
    curve = jnp.max(jnp.cumsum(srt, axis=1), axis=0)
    if k is None:
        return curve
    k = check_positive_int("k", k, m - 1, "number of atoms minus one")
    return curve[k - 1]


def random_gaussian(key, n: int, m: int, dtype=jnp.float32) -> jax.Array:
    """An (n, m) dictionary of i.i.d. Gaussian atoms normalised to unit l2 norm."""
    n = check_positive_int("n", n)
    m = check_positive_int("m", m)
    return normalize_atoms(jax.random.normal(key, (n, m), dtype=dtype))


def _dct_np(n: int, m: int) -> np.ndarray:
    t = np.arange(n)[:, None]
    k = np.arange(m)[None, :]
    A = np.cos(np.pi * t * k / m)
    A[:, 1:] -= A[:, 1:].mean(axis=0, keepdims=True)
    return A / np.linalg.norm(A, axis=0, keepdims=True)


def overcomplete_dct(n: int, m: int, dtype=jnp.float32) -> jax.Array:
    """1-D overcomplete DCT (n x m, m >= n): atom k samples cos(pi k t / m), t = 0..n-1, the mean removed
    for k > 0, unit norm (the initial dictionary of the K-SVD paper, per dimension)."""
    n = check_positive_int("n", n)
    m = check_positive_int("m", m)
    return jnp.asarray(_dct_np(n, m), dtype=dtype)


def overcomplete_dct_2d(p: int, m: int, dtype=jnp.float32) -> jax.Array:
    """Separable 2-D overcomplete DCT for p x p patches: (p*p, m) with m a perfect square >= p*p.

    Atom (i, j) is the outer product of 1-D atoms i and j (Kronecker product), flattened row-major.
    """
    p = check_positive_int("p", p)
    m = check_positive_int("m", m)
    r = int(round(math.sqrt(m)))
    if r * r != m:
        raise ValueError(f"m must be a perfect square for a separable 2-D DCT, got {m}")
    A = _dct_np(p, r)
    return jnp.asarray(np.kron(A, A), dtype=dtype)
