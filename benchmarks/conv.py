"""Direct strided transposed convolution: polyphase (new) vs input dilation (old), on the MNIST-net layers.

    python -m benchmarks.conv [--batch 256] [--repeat 10] [--rounds 3]

For each layer of the 3-layer MNIST model of Sulam, Aberdam, Beck & Elad (IEEE TPAMI 2020; boundary "full", float32,
random unit-norm filters) and a batch of codes / signals under ``jax.jit(jax.vmap(...))``, times (best of --repeat
runs, minimum again over --rounds rounds; the machine is shared, so minima are the meaningful numbers):

  * ``Conv.apply`` with method "direct" (the polyphase transposed convolution, ``sparsejax.conv.operator``);
  * the old direct synthesis: one ``lax.conv_general_dilated`` with ``lhs_dilation = s`` (kept here only as
    the reference; its output is checked to equal the new one);
  * ``Conv.adjoint`` with method "direct" (the CNN layer's VALID strided correlation);
  * for information, ``Conv.apply`` / ``Conv.adjoint`` with method "fft" and the method "auto" picks.

The "syn/ana" columns are synthesis time / analysis time (the ideal is about 1: the same multiply-adds).
"""
from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from benchmarks._harness import best_time
from sparsejax.conv.operator import Conv, normalize_filters

LAYERS = (("L1 1x28x28 -> 32@6x6 s2", 32, 1, 6, 2, 28),
          ("L2 32x12x12 -> 64@6x6 s2", 64, 32, 6, 2, 12),
          ("L3 64x4x4 -> 512@4x4 s1", 512, 64, 4, 1, 4))


def _synthesis_lhs_dilation(D: Conv, codes):
    """The old direct synthesis ('full' boundary): transposed convolution by s-dilating the codes."""
    d = codes.ndim - 1
    k = D.filter_shape
    rhs = jnp.swapaxes(jnp.flip(D.filters, axis=tuple(range(2, 2 + d))), 0, 1)
    dn = ("NCH", "OIH", "NCH") if d == 1 else ("NCHW", "OIHW", "NCHW")
    out = lax.conv_general_dilated(codes[None], rhs, (1,) * d, [(kk - 1, kk - 1) for kk in k],
                                   lhs_dilation=(D.stride,) * d, dimension_numbers=dn,
                                   precision=lax.Precision.HIGHEST)[0]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    rows = []
    for name, M, C, k, s, H in LAYERS:
        f = normalize_filters(jnp.asarray(rng.standard_normal((M, C, k, k)), jnp.float32))
        D = Conv(f, (C, H, H), stride=s, boundary="full", method="direct")
        Df = Conv(f, (C, H, H), stride=s, boundary="full", method="fft")
        auto = Conv(f, (C, H, H), stride=s, boundary="full").resolved_method
        G = jnp.asarray(rng.standard_normal((args.batch,) + D.code_shape), jnp.float32)
        Y = jnp.asarray(rng.standard_normal((args.batch,) + D.signal_shape), jnp.float32)
        fns = {
            "new": (jax.jit(jax.vmap(D.apply)), G),
            "old": (jax.jit(jax.vmap(lambda g: _synthesis_lhs_dilation(D, g))), G),
            "ana": (jax.jit(jax.vmap(D.adjoint)), Y),
            "fft_syn": (jax.jit(jax.vmap(Df.apply)), G),
            "fft_ana": (jax.jit(jax.vmap(Df.adjoint)), Y),
        }
        err = float(jnp.max(jnp.abs(fns["new"][0](G) - fns["old"][0](G))) / jnp.max(jnp.abs(fns["old"][0](G))))
        t = {key: np.inf for key in fns}
        for _ in range(args.rounds):
            for key, (fn, x) in fns.items():
                t[key] = min(t[key], best_time(lambda: fn(x), repeat=args.repeat)[0])
        rows.append((name, t, err, auto))
        print(f"{name}: " + ", ".join(f"{key}={v:.4f}s" for key, v in t.items()) + f", rel.err={err:.1e}, "
              f"auto={auto}, load={os.getloadavg()[0]:.2f}", flush=True)

    print(f"\n== Conv direct synthesis vs analysis, batch {args.batch}, vmap+jit, float32 "
          f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}) ==")
    hdr = (f"{'layer':28s} {'old syn':>9s} {'new syn':>9s} {'analysis':>9s} {'speed-up':>9s} "
           f"{'old syn/ana':>11s} {'new syn/ana':>11s} {'fft syn':>9s} {'fft ana':>9s} {'auto':>6s} {'rel.err':>8s}")
    print(hdr)
    print("-" * len(hdr))
    for name, t, err, auto in rows:
        print(f"{name:28s} {t['old']:9.4f} {t['new']:9.4f} {t['ana']:9.4f} {t['old'] / t['new']:8.1f}x "
              f"{t['old'] / t['ana']:11.2f} {t['new'] / t['ana']:11.2f} {t['fft_syn']:9.4f} {t['fft_ana']:9.4f} "
              f"{auto:>6s} {err:8.1e}")
    return rows


if __name__ == "__main__":
    main()
