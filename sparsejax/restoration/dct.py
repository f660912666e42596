"""The overcomplete 2-D DCT dictionary: the start (and the "global" fixed dictionary) of K-SVD image denoising.

A 1-D overcomplete DCT frame of L atoms in R^p samples cosines at L frequencies in [0, pi):

    d_k[t] = cos(pi k t / L),   t = 0..p-1,  k = 0..L-1,

every atom but the constant one (k = 0) made zero-mean, then all normalised. The 2-D dictionary for p x p patches
is the separable product D = D_1 (x) D_1 (Kronecker), L^2 atoms of dimension p^2, each atom the outer product of
two 1-D atoms (flattened row-major, the order of ``sparsejax.patches.extract_patches``). With p = 8 and L = 16 it
is the 64 x 256 dictionary of Elad & Aharon, "Image denoising via sparse and redundant representations over
learned dictionaries", IEEE TIP 2006, Section IV (Fig. 1).
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from sparsejax._validate import check_positive_int

__all__ = ["overcomplete_dct", "overcomplete_dct_1d"]


def overcomplete_dct_1d(p: int, L: int) -> np.ndarray:
    """The (p, L) 1-D overcomplete DCT frame: cos(pi k t / L), atoms k > 0 zero-mean, all unit-norm.

    Example:
      >>> import numpy as np
      >>> from sparsejax.restoration.dct import overcomplete_dct_1d
      >>> D = overcomplete_dct_1d(4, 4)        # L = p: the orthonormal DCT-I-like basis, up to the mean removal
      >>> np.allclose(np.linalg.norm(D, axis=0), 1.0), np.allclose(D[:, 1:].sum(axis=0), 0.0)
      (True, True)
    """
    p = check_positive_int("p", p)
    L = check_positive_int("L", L)
    t = np.arange(p)[:, None]
    k = np.arange(L)[None, :]
    D = np.cos(np.pi * t * k / L)
    D[:, 1:] -= D[:, 1:].mean(axis=0, keepdims=True)
    return D / np.linalg.norm(D, axis=0, keepdims=True)


def overcomplete_dct(patch_size: int = 8, n_atoms: int = 256, dtype=jnp.float32):
    """The (patch_size^2, n_atoms) separable overcomplete 2-D DCT dictionary, n_atoms a perfect square L^2 >= p^2.

    Args:
      patch_size: p (square p x p patches).
      n_atoms: L^2 atoms (default 256: L = 16, redundancy 4 for 8 x 8 patches).
      dtype: float32 (default) or float64.

    Returns:
      (p^2, L^2) array with unit-norm columns; atom (i, j) = d_i (x) d_j is column i L + j.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.restoration.dct import overcomplete_dct
      >>> D = overcomplete_dct(8, 256)
      >>> D.shape, bool(jnp.allclose(jnp.linalg.norm(D, axis=0), 1.0, atol=1e-6))
      ((64, 256), True)
    """
    p = check_positive_int("patch_size", patch_size)
    n_atoms = check_positive_int("n_atoms", n_atoms)
    L = math.isqrt(n_atoms)
    if L * L != n_atoms or L < p:
        raise ValueError(f"n_atoms must be a perfect square L^2 with L >= patch_size = {p} (e.g. {max(p, 2) ** 2} or "
                         f"{(2 * p) ** 2}), got {n_atoms}")
    D1 = overcomplete_dct_1d(p, L)
    return jnp.asarray(np.kron(D1, D1), dtype)
