"""Patch-dictionary denoising: scikit-learn's documented pipeline vs sparsejax's K-SVD denoising, same image, same
noise: PSNR and wall time side by side.

scikit-learn: the example "Image denoising using dictionary learning" (``MiniBatchDictionaryLearning`` +
``transform`` with OMP on patches), applied to the noisy image itself (the example trains on a clean half, which a
denoiser does not have): 7x7 patches of the noisy image, centred and scaled as in the example, a 100-atom
dictionary fitted with ``MiniBatchDictionaryLearning(alpha=1, batch_size=200, max_iter=...)`` on a random subset,
every patch coded by OMP with 2 atoms (the example's best setting), patches averaged back
(``reconstruct_from_patches_2d``).

sparsejax: ``sparsejax.restoration.ksvd_denoise`` with the paper's settings (8x8, 256 atoms, error target
1.15 sigma, 10 K-SVD iterations on 40,000 patches, lam = 30 / sigma). Its wall time is given cold (first call:
compilation included) and warm (second call, same shapes). Each row also gives the process CPU time (all threads):
on a shared machine wall time depends on the load, CPU time much less.

Run: ``python -m benchmarks.ksvd_denoise_vs_sklearn [--size 256] [--sigma 25]``.
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._harness import Table
from sparsejax.datasets.images import load_image
from sparsejax.imaging import psnr
from sparsejax.restoration import ksvd_denoise


def sklearn_denoise(noisy, *, patch=7, n_atoms=100, n_train=20000, max_iter=10, n_nonzero=2, seed=0):
    """scikit-learn's example pipeline on the noisy image; returns the denoised image."""
    from sklearn.decomposition import MiniBatchDictionaryLearning
    from sklearn.feature_extraction.image import (
        extract_patches_2d,
        reconstruct_from_patches_2d,
    )

    data = extract_patches_2d(noisy, (patch, patch)).reshape(-1, patch * patch)
    mean = data.mean(axis=0)
    std = data.std(axis=0)
    rng = np.random.default_rng(seed)
    train = data[rng.choice(len(data), min(n_train, len(data)), replace=False)]
    dico = MiniBatchDictionaryLearning(n_components=n_atoms, alpha=1.0, batch_size=200, max_iter=max_iter,
                                       random_state=seed)
    V = dico.fit((train - mean) / std).components_
    dico.set_params(transform_algorithm="omp", transform_n_nonzero_coefs=n_nonzero)
    code = dico.transform((data - mean) / std)
    patches = (code @ V) * std + mean
    return reconstruct_from_patches_2d(patches.reshape(-1, patch, patch), noisy.shape)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=256, help="centre crop of the camera image (default 256)")
    p.add_argument("--sigma", type=float, default=25.0, help="noise sigma in grey levels (default 25)")
    p.add_argument("--iters", type=int, default=10, help="K-SVD iterations (default 10)")
    a = p.parse_args(argv)
    full = load_image("camera")
    r0, c0 = (full.shape[0] - a.size) // 2, (full.shape[1] - a.size) // 2
    x = full[r0:r0 + a.size, c0:c0 + a.size].astype(np.float32)
    sigma = a.sigma / 255.0
    y = np.asarray(x + sigma * np.random.default_rng(0).standard_normal(x.shape), np.float32)
    p_noisy = float(psnr(x, y))
    table = Table(f"K-SVD denoising vs scikit-learn's dictionary-learning example (camera {a.size}x{a.size}, "
                  f"sigma {a.sigma:g}, noisy {p_noisy:.2f} dB)")

    t0, c0 = time.perf_counter(), time.process_time()
    ref = sklearn_denoise(y.astype(np.float64))
    t_ref, c_ref = time.perf_counter() - t0, time.process_time() - c0
    table.add("denoise", "scikit-learn MiniBatchDL+OMP", t_ref, {"psnr_db": float(psnr(x, ref.astype(np.float32)))},
              cpu_seconds=c_ref)

    yj = jnp.asarray(y)
    for label in ("sparsejax K-SVD (cold)", "sparsejax K-SVD (warm)"):
        t0, c0 = time.perf_counter(), time.process_time()
        res = ksvd_denoise(yj, sigma, n_iter=a.iters)
        jax.block_until_ready(res.image)
        t, c = time.perf_counter() - t0, time.process_time() - c0
        table.add("denoise", label, t, {"psnr_db": float(psnr(x, res.image)), "mean_atoms": res.mean_atoms},
                  reference_seconds=t_ref, cpu_seconds=c, cpu_ratio_vs_reference=c_ref / c)
    table.print()


if __name__ == "__main__":
    main()
