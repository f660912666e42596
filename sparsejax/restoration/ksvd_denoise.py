"""K-SVD image denoising (Elad & Aharon, "Image denoising via sparse and redundant representations over learned
dictionaries", IEEE TIP 2006): sparse coding of every overlapping patch, a dictionary learned on the noisy patches,
and the closed-form image update.

The paper's MAP problem over the image X, the codes a_ij and the dictionary D, for the noisy image Y (noise sigma):

    min  lam ||X - Y||^2 + sum_ij mu_ij ||a_ij||_0 + sum_ij ||D a_ij - R_ij X||^2,

solved by block coordinate descent (the paper's Fig. 2):

1. Sparse coding, each patch on its own: OMP until the error target ||R_ij Y - D a_ij||^2 <= n (C sigma)^2
   (n = patch pixels, C = 1.15), ``sparse_code_patches``. As in common practice, each patch's mean (DC) is removed
   before coding and added back (the mean of n noisy pixels has noise sigma / sqrt(n)); the target applies to the
   mean-free patch.
2. Dictionary update: J K-SVD iterations (Aharon, Elad & Bruckstein, IEEE TSP 2006) on a random subset of the
   noisy patches, from the overcomplete DCT (``sparsejax.restoration.dct``). ``update="exact"`` is the rank-1 SVD
   of ``sparsejax.learn.dense.ksvd_dictionary_update``; ``update="approximate"`` (default) the one power-iteration
   step of the approximate K-SVD (Rubinstein, Zibulevsky & Elad, "Efficient implementation of the K-SVD algorithm
   using Batch Orthogonal Matching Pursuit", Technion CS-2008-08):
       d_j <- E_j a^j / ||E_j a^j||,   a^j <- E_j^T d_j   (on the patches using atom j),
   at O(N n) per atom instead of O(N n^2) (the default for speed; its PSNR against the exact update was not
   measured on full images). Atoms no patch uses are
   replaced by the worst-represented training patch.
3. Image update, the closed form of the quadratic in X (the paper's eq. (10)), ``image_update``:
       X = (lam I + sum_ij R_ij^T R_ij)^{-1} (lam Y + sum_ij R_ij^T D a_ij),
   a per-pixel division (sum R^T R is diagonal: the number of patches covering each pixel). The paper uses
   lam = 30 / sigma with sigma in grey levels (0..255).

The global variant (a dictionary trained elsewhere, or the DCT itself) is ``n_iter=0`` with ``dictionary=...``.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sparsejax import _validate as V
from sparsejax.learn.dense import ksvd_dictionary_update
from sparsejax.patches import extract_patches, put_patches
from sparsejax.pursuit.omp import omp_batch
from sparsejax.restoration.dct import overcomplete_dct

__all__ = [
    "GAIN",
    "UPDATES",
    "KSVDDenoiseResult",
    "PatchCodes",
    "approximate_ksvd_update",
    "error_target",
    "image_update",
    "ksvd_denoise",
    "paper_lambda",
    "sparse_code_patches",
]

GAIN = 1.15                         # C of the error target n (C sigma)^2 (Elad & Aharon 2006, Section V)
UPDATES = ("approximate", "exact")  # dictionary updates: approximate K-SVD (default) or the exact rank-1 SVD
_FIRST_K = 8                        # atoms of the first OMP pass over all patches (the rest get a second pass)
_SECOND_BLOCK = 256                 # patches per call of the second pass (a fixed shape: compiled once)


class PatchCodes(NamedTuple):
    """Sparse codes of patches under the error target.

    Attributes:
      codes: (P, m) codes of the mean-free patches.
      means: (P,) the removed patch means (DC).
      residual_norm2: (P,) ||p - mean - D a||^2.
      num_atoms: (P,) atoms used.
      converged: (P,) the target ||p - mean - D a||^2 <= n (C sigma)^2 was met (else ``max_atoms`` were used).
    """
    codes: jax.Array
    means: jax.Array
    residual_norm2: jax.Array
    num_atoms: jax.Array
    converged: jax.Array


class KSVDDenoiseResult(NamedTuple):
    """Result of ``ksvd_denoise``.

    Attributes:
      image: the denoised image, the shape of the input.
      dictionary: (n, m) the dictionary used for the final coding (learned, or the one given).
      mean_atoms: mean number of atoms per patch in the final coding.
      converged_fraction: fraction of patches that met the error target in the final coding (the rest used
        ``max_atoms`` atoms).
      lam: the noisy-image weight used.
      finite: False when the result holds NaN or inf (a numerical failure is reported, never hidden).
      history: per K-SVD iteration, a dict with the mean atoms per training patch and the seconds it took.
    """
    image: jax.Array
    dictionary: jax.Array
    mean_atoms: float
    converged_fraction: float
    lam: float
    finite: bool
    history: list


def error_target(sigma, n: int, C: float = GAIN):
    """The OMP stopping threshold of the paper on the squared residual: n (C sigma)^2.

    Example:
      >>> from sparsejax.restoration.ksvd_denoise import error_target
      >>> round(float(error_target(0.1, 64)), 4)         # 64 * (1.15 * 0.1)^2
      0.8464
    """
    return n * (C * sigma) ** 2


def paper_lambda(sigma, data_range: float = 1.0) -> float:
    """The noisy-image weight lam = 30 / sigma of Elad & Aharon 2006, sigma measured in grey levels (0..255):
    30 / (255 sigma / data_range) for an image scaled to [0, data_range].

    Example:
      >>> from sparsejax.restoration.ksvd_denoise import paper_lambda
      >>> paper_lambda(25 / 255), paper_lambda(25.0, data_range=255.0)
      (1.2, 1.2)
    """
    return 30.0 / (255.0 * float(sigma) / float(data_range))


def sparse_code_patches(D, patches, sigma, *, C: float = GAIN, max_atoms: int | None = None) -> PatchCodes:
    """OMP of every mean-free patch until ||p - mean(p) - D a||^2 <= n (C sigma)^2 (Elad & Aharon 2006, step 1).

    Batch-OMP (``sparsejax.pursuit.omp_batch``) with ``tol = sqrt(n) C sigma``, in two passes: all patches with at
    most 8 atoms, then the patches that have not met the target yet with up to ``max_atoms`` (the cost of a pass
    grows with its atom budget, and few patches need more than 8).

    Args:
      D: (n, m) dictionary with unit-norm atoms.
      patches: (P, n) patches as rows (``sparsejax.patches.extract_patches``).
      sigma: noise standard deviation, in the units of the patches.
      C: the gain of the target (paper: 1.15).
      max_atoms: most atoms per patch (static; default n / 2).

    Returns:
      ``PatchCodes``; the patch estimates are ``codes @ D.T + means[:, None]``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from sparsejax.restoration.dct import overcomplete_dct
      >>> from sparsejax.restoration.ksvd_denoise import sparse_code_patches
      >>> D = overcomplete_dct(4, 16)
      >>> P = 0.5 + 0.05 * jax.random.normal(jax.random.PRNGKey(0), (441, 16))    # the patches of a 24 x 24 image
      >>> pc = sparse_code_patches(D, P, 0.05)
      >>> bool(jnp.all(pc.residual_norm2 <= 16 * (1.15 * 0.05) ** 2))
      True
    """
    D = V.check_dictionary("D", D)
    patches = V.as_float_array("patches", patches)
    n, m = D.shape
    V.check_shape("patches", patches, (None, n), f"P patches of n = {n} pixels, the atom dimension of D")
    sigma = V.check_nonnegative_scalar("sigma", sigma, strict=True)
    V.check_nonnegative_scalar("C", C, strict=True)
    if max_atoms is None:
        max_atoms = max(1, min(n // 2, m))
    max_atoms = V.check_positive_int("max_atoms", max_atoms, min(n, m), "min(patch pixels, atoms)")
    dtype = patches.dtype
    D = D.astype(dtype)
    means = jnp.mean(patches, axis=1)
    Y = patches - means[:, None]
    tol = (math.sqrt(n) * C * sigma).astype(dtype)
    k1 = min(_FIRST_K, max_atoms)
    sol = omp_batch(D, Y, k=k1, tol=tol)
    codes, energy, nsteps, conv = sol.codes, sol.state.residual_norm2, sol.num_steps, sol.converged
    if max_atoms > k1 and V.is_concrete(conv):
        todo = np.flatnonzero(~np.asarray(conv))
        if todo.size:
            # blocks of a fixed size: one compilation however many patches are left
            nb = -(-todo.size // _SECOND_BLOCK)
            idx = np.concatenate([todo, np.full(nb * _SECOND_BLOCK - todo.size, todo[0])])
            parts = [omp_batch(D, Y[jnp.asarray(b)], k=max_atoms, tol=tol)
                     for b in idx.reshape(nb, _SECOND_BLOCK)]
            t = jnp.asarray(todo)
            sl = slice(0, todo.size)

            def cat(f):
                return jnp.concatenate([f(q) for q in parts])[sl]

            codes = codes.at[t].set(cat(lambda q: q.codes))
            energy = energy.at[t].set(cat(lambda q: q.state.residual_norm2))
            nsteps = nsteps.at[t].set(cat(lambda q: q.num_steps))
            conv = conv.at[t].set(cat(lambda q: q.converged))
    return PatchCodes(codes=codes, means=means, residual_norm2=energy, num_atoms=nsteps, converged=conv)


@jax.jit
def approximate_ksvd_update(D, Y, codes):
    """One sweep of the approximate K-SVD dictionary update (Rubinstein, Zibulevsky & Elad 2008) for fixed supports.

    For j = 1..m (``lax.fori_loop``), with R = Y - A D^T the current residual and a = A[:, j] (zero off the
    patches that use atom j), E_j = R + a d_j^T restricted to those patches:

        g = E_j^T a = R^T a + (a^T a) d_j,   d_j <- g / ||g||,   a <- (R d_j + a (d_old^T d_j)) on supp(a),

    one power-iteration step of the rank-1 SVD of E_j from the current codes: ||E_j - a d_j^T|| does not grow,
    at O(N n) per atom. Atoms no patch uses are left as they are and flagged.

    Args:
      D: (n, m) dictionary; Y: (N, n) training signals as rows; codes: (N, m).

    Returns:
      (D_new, codes_new, unused (m,)).

    Example: the representation error does not grow.
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.restoration.ksvd_denoise import approximate_ksvd_update
      >>> D = sj.normalize_atoms(jax.random.normal(jax.random.PRNGKey(0), (6, 8)))
      >>> Y = jax.random.normal(jax.random.PRNGKey(1), (40, 6))
      >>> A = sj.omp_batch(D, Y, k=2).codes
      >>> D1, A1, _ = approximate_ksvd_update(D, Y, A)
      >>> bool(jnp.linalg.norm(Y - A1 @ D1.T) <= jnp.linalg.norm(Y - A @ D.T) + 1e-5)
      True
    """
    R0 = Y - codes @ D.T

    def atom(j, carry):
        D, A, R = carry
        d, a = D[:, j], A[:, j]
        users = a != 0
        aa = jnp.dot(a, a)
        g = R.T @ a + aa * d
        ng = jnp.linalg.norm(g)
        ok = ng > 0
        d_new = jnp.where(ok, g / jnp.where(ok, ng, 1.0), d)
        a_new = jnp.where(users, R @ d_new + a * jnp.dot(d, d_new), 0.0)
        R = R + a[:, None] * d[None, :] - a_new[:, None] * d_new[None, :]
        return D.at[:, j].set(d_new), A.at[:, j].set(a_new), R

    D, A, _ = lax.fori_loop(0, D.shape[1], atom, (D, codes, R0))
    return D, A, ~jnp.any(A != 0, axis=0)


@jax.jit
def _replace_unused(D, Y, codes, unused):
    """Unused atoms <- the worst-represented (largest residual) training signals, normalised (K-SVD's rule)."""
    R = Y - codes @ D.T
    order = jnp.argsort(-jnp.sum(R * R, axis=1))
    rank = jnp.cumsum(unused.astype(jnp.int32)) - 1
    cand = Y[order[jnp.maximum(rank, 0) % Y.shape[0]]].T
    norms = jnp.linalg.norm(cand, axis=0)
    ok = unused & (norms > 0)
    return jnp.where(ok[None, :], cand / jnp.where(norms > 0, norms, 1.0)[None, :], D)


def image_update(noisy, patch_estimates, lam, patch_size, stride=1):
    """The closed-form image update of Elad & Aharon 2006, eq. (10), a per-pixel weighted average:

        X = (lam Y + sum_ij R_ij^T p_ij) / (lam + sum_ij R_ij^T 1),

    the minimiser of lam ||X - Y||^2 + sum_ij ||p_ij - R_ij X||^2 for the patch estimates p_ij = D a_ij.

    Args:
      noisy: Y, (H, W) (or (C, H, W)).
      patch_estimates: (P, n) rows in the order of ``sparsejax.patches.extract_patches``.
      lam: the weight of the noisy image (>= 0; the paper: 30 / sigma, ``paper_lambda``).
      patch_size, stride: the patch geometry.

    Returns:
      X, the shape of ``noisy``.

    Example: with lam = 0 and the noisy image's own patches, X = Y.
      >>> import jax.numpy as jnp
      >>> from sparsejax.patches import extract_patches
      >>> from sparsejax.restoration.ksvd_denoise import image_update
      >>> Y = jnp.arange(30.0).reshape(5, 6)
      >>> bool(jnp.allclose(image_update(Y, extract_patches(Y, 3), 0.0, 3), Y))
      True
    """
    noisy = V.as_float_array("noisy", noisy)
    lam = V.check_nonnegative_scalar("lam", lam)
    num = put_patches(patch_estimates, noisy.shape, patch_size, stride)
    den = put_patches(jnp.ones_like(patch_estimates), noisy.shape, patch_size, stride)
    return (lam * noisy + num) / (lam + den)


def ksvd_denoise(noisy, sigma, *, dictionary=None, n_iter: int = 10, patch_size: int = 8, n_atoms: int = 256,
                 C: float = GAIN, lam=None, n_train: int | None = 40000, stride: int = 1,
                 max_atoms: int | None = None, update: str = "approximate", data_range: float = 1.0, key=None,
                 progress: Callable[[str, int, int], None] | None = None) -> KSVDDenoiseResult:
    """K-SVD denoising of a grey image (Elad & Aharon, IEEE TIP 2006; their Fig. 2 with J = ``n_iter``).

    1. D <- ``dictionary`` or the overcomplete DCT (``overcomplete_dct(patch_size, n_atoms)``).
    2. ``n_iter`` times, on ``n_train`` random mean-free patches of the noisy image: OMP to the target
       ||p - D a||^2 <= n (C sigma)^2, then the K-SVD dictionary update (``update``) and unused atoms replaced.
    3. Every patch (``stride``) coded to the same target; X = (lam Y + sum R^T p) / (lam + sum R^T 1).

    ``n_iter=0`` is the global variant: the given dictionary (default the DCT) is used as it is.

    Args:
      noisy: (H, W) noisy image (float32 or float64).
      sigma: noise standard deviation in the units of the image (25 / 255 for grey level 25 on a [0, 1] image).
      dictionary: optional (patch_size^2, m) start / fixed dictionary.
      n_iter: K-SVD iterations (paper: 10); 0 for the global variant.
      patch_size: p (p x p patches; paper 8).
      n_atoms: atoms of the DCT start (paper 256); ignored when ``dictionary`` is given.
      C: the gain of the error target (paper 1.15).
      lam: the noisy-image weight; default ``paper_lambda(sigma, data_range)`` = 30 / sigma (grey levels).
      n_train: training patches per K-SVD iteration (a fixed random subset; None: all of them).
      stride: patch stride of the final coding and averaging (paper 1).
      max_atoms: most atoms per patch (default n / 2).
      update: "approximate" (default) or "exact" K-SVD dictionary update.
      data_range: the image's peak value (1 for [0, 1] images), used only for the default ``lam``.
      key: PRNG key of the training subset (default PRNGKey(0)).
      progress: optional callback ``progress(stage, i, total)`` with stage "ksvd" or "denoise".

    Returns:
      ``KSVDDenoiseResult``.

    Example: the global DCT variant on a small noisy ramp.
      >>> import jax, jax.numpy as jnp
      >>> from sparsejax.imaging import psnr
      >>> from sparsejax.restoration.ksvd_denoise import ksvd_denoise
      >>> x = jnp.outer(jnp.linspace(0, 1, 24), jnp.ones(24))
      >>> y = x + 0.1 * jax.random.normal(jax.random.PRNGKey(0), x.shape)
      >>> res = ksvd_denoise(y, 0.1, n_iter=0, patch_size=4, n_atoms=16)
      >>> bool(psnr(x, res.image) > psnr(x, y) + 5.0), res.finite
      (True, True)
    """
    noisy = V.as_float_array("noisy", noisy)
    V.check_ndim("noisy", noisy, (2,), "a grey image (H, W)")
    V.check_finite("noisy", noisy)
    sigma = float(V.check_nonnegative_scalar("sigma", sigma, strict=True))
    V.check_choice("update", update, UPDATES)
    n_iter = V.check_int("n_iter", n_iter)
    p = V.check_positive_int("patch_size", patch_size)
    n = p * p
    dtype = noisy.dtype
    if dictionary is None:
        D = overcomplete_dct(p, n_atoms, dtype)
    else:
        D = V.check_dictionary("dictionary", dictionary).astype(dtype)
        V.check_shape("dictionary", D, (n, None), f"patch_size^2 = {n} rows, atoms as columns")
        D = D / jnp.maximum(jnp.linalg.norm(D, axis=0, keepdims=True), jnp.finfo(dtype).tiny)
    lam = paper_lambda(sigma, data_range) if lam is None else float(V.check_nonnegative_scalar("lam", lam))
    if n_train is not None:
        n_train = V.check_positive_int("n_train", n_train)
    key = jax.random.PRNGKey(0) if key is None else key
    history = []
    if n_iter:
        allp = extract_patches(noisy, p)
        if n_train is not None and n_train < allp.shape[0]:
            pick = jax.random.choice(key, allp.shape[0], (n_train,), replace=False)
            train = allp[pick]
        else:
            train = allp
        del allp
        Yt = train - jnp.mean(train, axis=1, keepdims=True)
        for it in range(n_iter):
            t0 = time.perf_counter()
            pc = sparse_code_patches(D, train, sigma, C=C, max_atoms=max_atoms)
            if update == "exact":
                D, A, unused = ksvd_dictionary_update(D, Yt, pc.codes)
            else:
                D, A, unused = approximate_ksvd_update(D, Yt, pc.codes)
            D = _replace_unused(D, Yt, A, unused)
            D.block_until_ready()
            history.append({"iteration": it + 1, "mean_atoms": float(jnp.mean(pc.num_atoms)),
                            "unused_atoms": int(jnp.sum(unused)), "seconds": time.perf_counter() - t0})
            if progress is not None:
                progress("ksvd", it + 1, n_iter)
    P = extract_patches(noisy, p, stride)
    pc = sparse_code_patches(D, P, sigma, C=C, max_atoms=max_atoms)
    est = pc.codes @ D.T + pc.means[:, None]
    X = image_update(noisy, est, lam, p, stride)
    if progress is not None:
        progress("denoise", 1, 1)
    finite = bool(jnp.all(jnp.isfinite(X))) and bool(jnp.all(jnp.isfinite(D)))
    return KSVDDenoiseResult(image=X, dictionary=D, mean_atoms=float(jnp.mean(pc.num_atoms)),
                             converged_fraction=float(jnp.mean(pc.converged)), lam=lam, finite=finite,
                             history=history)
