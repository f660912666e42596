"""Layered pursuits on the 3-layer MNIST convolutional model (Sulam, Aberdam, Beck & Elad, "On multi-layer basis
pursuit, efficient algorithms and convolutional neural networks", IEEE TPAMI 2020) vs one CNN forward pass.

    python -m benchmarks.layered [--batch 1024] [--quick] [--repeat 3] [--mnist]

Model: D_1 32 filters 6x6 stride 2, D_2 64 filters 6x6 stride 2, D_3 512 filters 4x4 stride 1, boundary "full"
(28 -> 12 -> 4 -> 1; D_i^T is the VALID strided convolution of a CNN layer), unit-norm random filters, a batch
of images (bundled MNIST with --mnist when ``sparsejax.datasets.mnist`` finds it, else uniform random), float32.

Timed (jit + vmap over the batch, compilation excluded, best of --repeat):
  * the Flax CNN forward pass with the same weights and bias -b (the reference; its output is checked to equal
    layered non-negative soft thresholding);
  * layered thresholding (Papyan, Romano & Elad, JMLR 2017: the CNN forward pass);
  * ML-ISTA and ML-FISTA per iteration: (t(T2) - t(T1)) / (T2 - T1) over fixed-length (scan) runs;
  * layered BP unfolded with T = 6 ISTA steps per layer (total);
  * projection pursuit per FISTA iteration on D_1 D_2 D_3 (the same difference of two run lengths).
The ML-ISTA column "x CNN" is the cost of one iteration relative to one CNN forward pass; the ideal is about 3
(one synthesis and two analysis convolutions per layer against one analysis convolution).
"""
from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._harness import Table, best_time
from sparsejax.conv.operator import Conv, normalize_filters
from sparsejax.datasets.mnist import load_mnist
from sparsejax.multilayer.layered import layered_thresholding, ml_ista
from sparsejax.multilayer.layered_bp import layered_bp_unfolded, projection_pursuit

ARCH = ((32, 6, 2), (64, 6, 2), (512, 4, 1))     # (filters, size, stride) per layer


def make_layers(key, method="auto"):
    layers, C, H = [], 1, 28
    for M, k, s in ARCH:
        key, sub = jax.random.split(key)
        f = normalize_filters(jax.random.normal(sub, (M, C, k, k), jnp.float32))
        layers.append(Conv(f, (C, H, H), stride=s, boundary="full", method=method))
        C, H = M, (H - k) // s + 1
    return tuple(layers)


def images(batch, use_mnist, seed=0):
    if use_mnist:
        try:
            X, _ = load_mnist("test")
            return jnp.asarray(X[:batch]), "MNIST test images"
        except Exception as e:  # pragma: no cover - data missing
            print(f"MNIST unavailable ({e}); using random images")
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(0, 1, (batch, 1, 28, 28)).astype(np.float32)), "uniform random images"


def flax_cnn(layers, biases):
    """A Flax CNN with the layers' filters (HWIO kernels, VALID padding, strides) and the given biases."""

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x):                     # x: (B, H, W, C)
            for i, D in enumerate(layers):
                M, _, k, _ = D.filters.shape
                x = nn.relu(nn.Conv(M, (k, k), strides=(D.stride, D.stride), padding="VALID", name=f"c{i}")(x))
            return x

    params = {f"c{i}": {"kernel": jnp.transpose(D.filters, (2, 3, 1, 0)), "bias": b}
              for i, (D, b) in enumerate(zip(layers, biases))}
    model = CNN()
    return jax.jit(lambda x: model.apply({"params": params}, x))


def per_iteration(fn_of_T, T1, T2, repeat):
    t1, _ = best_time(lambda: fn_of_T(T1), repeat)
    t2, out = best_time(lambda: fn_of_T(T2), repeat)
    return max(t2 - t1, 1e-9) / (T2 - T1), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--quick", action="store_true", help="batch 128, repeat 2")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mnist", action="store_true", help="use the bundled MNIST test images")
    ap.add_argument("--method", default="auto", choices=("auto", "direct", "fft"))
    a = ap.parse_args(argv)
    batch, repeat = (128, 2) if a.quick else (a.batch, a.repeat)
    layers = make_layers(jax.random.PRNGKey(0), a.method)
    Y, source = images(batch, a.mnist)
    lams = (0.05, 0.1, 0.1)
    table = Table(f"layered pursuits, 3-layer MNIST conv model, batch {batch} ({source}), {jax.default_backend()}")
    prob = f"MNIST arch, batch {batch}"

    # reference: Flax CNN (bias = -threshold); check it equals layered non-negative soft thresholding
    cnn = flax_cnn(layers, [jnp.full((D.num_filters,), -l, jnp.float32) for D, l in zip(layers, lams)])
    Yh = jnp.transpose(Y, (0, 2, 3, 1))
    t_cnn, out_cnn = best_time(lambda: cnn(Yh), repeat)
    lt = jax.jit(jax.vmap(lambda y: layered_thresholding(layers, y, lams, prox="nonneg_soft").codes[-1]))
    t_lt, out_lt = best_time(lambda: lt(Y), repeat)
    diff = float(jnp.max(jnp.abs(jnp.transpose(out_cnn, (0, 3, 1, 2)) - out_lt)))
    table.add(prob, "flax CNN forward (reference)", t_cnn, {"x_cnn": 1.0}, batch)
    table.add(prob, "layered thresholding (S+)", t_lt, {"x_cnn": t_lt / t_cnn, "max|LT - CNN|": diff}, batch,
              reference_seconds=t_cnn)

    def run_ml(fista):
        cache = {}

        def fn(T):
            if T not in cache:
                cache[T] = jax.jit(jax.vmap(lambda y: ml_ista(layers, y, lams, max_iter=T, tol=0.0, mode="scan",
                                                              prox="nonneg_soft", fista=fista).codes))
            return cache[T](Y)
        return fn

    for name, fista in (("ML-ISTA", False), ("ML-FISTA", True)):
        t_it, _ = per_iteration(run_ml(fista), 2, 8, repeat)
        table.add(prob, f"{name} per iteration", t_it, {"x_cnn": t_it / t_cnn}, batch, reference_seconds=t_cnn)

    lbp = jax.jit(jax.vmap(lambda y: layered_bp_unfolded(layers, y, lams, 6, prox="nonneg_soft").codes[-1]))
    t_lbp, _ = best_time(lambda: lbp(Y), repeat)
    table.add(prob, "layered BP unfolded T=6 (total)", t_lbp, {"x_cnn": t_lbp / t_cnn}, batch,
              reference_seconds=t_cnn)

    pcache = {}

    def proj(T):
        if T not in pcache:
            pcache[T] = jax.jit(jax.vmap(lambda y: projection_pursuit(layers, y, lams[-1], max_iter=T,
                                                                      tol=0.0).codes[-1]))
        return pcache[T](Y)

    t_pp, _ = per_iteration(proj, 2, 8, repeat)
    table.add(prob, "projection pursuit per iteration", t_pp, {"x_cnn": t_pp / t_cnn}, batch,
              reference_seconds=t_cnn)
    table.print()
    print("\nx_cnn = time / (one CNN forward pass); the ideal for one ML-ISTA iteration is about 3.")
    print("Per-iteration times are differences of two run lengths (8 and 2 iterations), so fixed costs (the "
          "power iterations for the step sizes, the first sweep) cancel.")


if __name__ == "__main__":
    main()
