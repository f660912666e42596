"""Convolutional BPDN: our Fourier-domain ADMM (``cbpdn_admm``, float32, jit) vs SPORCO's ``admm.cbpdn.ConvBPDN``.

    python -m benchmarks.csc [--quick] [--sizes 64,128,256,512] [--batch 16] [--ref-iter 500]

Problems (images scaled to [0, 1], grey, Tikhonov high-pass ``sporco.signal.tikhonov_filter(img, 5, 16)``):
  (a) SPORCO's own example: barbara 256 x 256 (crop [10:522, 100:612], zoom 0.5), dictionary 'G:12x12x36',
      lam = 0.05, 200 iterations, AutoRho on, RelaxParam 1.8;
  (b) the same image, 'G:8x8x32', lam = 0.05, 100 iterations;
  (c) a batch of 16 crops of 128 x 128 from the five example images, 'G:8x8x32', lam = 0.05, 100 iterations:
      ours ``jax.vmap`` (one rho per image) vs SPORCO's multi-image mode (one ADMM over the batch, shared rho);
  (d) seconds per iteration against the image size (64 ... 512), to show the O(M N log N) growth.

Equal-objective comparison: F* = min(our float64 solve of ``--ref-iter`` iterations, every objective either
library reached); for each library: seconds for the full run, final objective F (evaluated in float64 at the
returned sparse codes), relative gap (F - F*) / F*, and the time to reach gap 1e-4 (ours: the per-iteration
objective history of a scan run times the measured seconds per iteration; SPORCO: F at its sparse iterate Y
recorded by a callback in a second, untimed run, times its measured seconds per iteration; also reported: the
same from its itstat ``ObjFun``, which is F at its non-sparse iterate X, and ``Time``). One JSON line per measurement (with os.getloadavg()), then a
table; ratio = SPORCO seconds / our seconds (> 1: we are faster).

Cores: SPORCO's pyFFTW uses every core, while XLA:CPU runs each FFT on one thread, so the script starts one host
device per core (``XLA_FLAGS=--xla_force_host_platform_device_count=<cpus>`` unless XLA_FLAGS already sets it) and
splits one image's filters over them (``cbpdn_admm(mesh=...)``) or a batch by images (``shard_batch``). Run with
``XLA_FLAGS=--xla_force_host_platform_device_count=1`` for the single-device figures.
"""
from __future__ import annotations

import argparse
import json
import os

if __name__ == "__main__" and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    # XLA:CPU runs each FFT on one thread; SPORCO's pyFFTW uses every core. One host device per core lets
    # cbpdn_admm(mesh=...) split the filters (one image) or the batch over the cores. Set XLA_FLAGS to override.
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={os.cpu_count() or 1}").strip()

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._harness import Table, best_time
from sparsejax.distributed import batch_mesh, shard_batch
from sparsejax.pursuit.csc import cbpdn_admm

GAP = 1e-4


def load_images(size=256):
    import sporco.signal as ss
    import sporco.util as su

    ei = su.ExampleImages(scaled=True, zoom=0.5, gray=True)
    img = ei.image("barbara.png", idxexp=np.s_[10:522, 100:612])
    if size != 256:
        ei2 = su.ExampleImages(scaled=True, gray=True)
        big = ei2.image("barbara.png")
        r = max(1, int(np.ceil(size / min(big.shape))))
        big = np.tile(big, (r, r))
        img = big[:size, :size]
    _, high = ss.tikhonov_filter(img.astype(np.float32), 5, 16)
    return high.astype(np.float32)


def batch_images(n, size):
    import sporco.signal as ss
    import sporco.util as su

    ei = su.ExampleImages(scaled=True, gray=True)
    out = []
    names = ei.images()
    i = 0
    while len(out) < n:
        img = ei.image(names[i % len(names)])
        j = i // len(names)
        y0 = (97 * j + 40) % (img.shape[0] - size)
        x0 = (151 * j + 60) % (img.shape[1] - size)
        crop = img[y0:y0 + size, x0:x0 + size].astype(np.float32)
        out.append(ss.tikhonov_filter(crop, 5, 16)[1].astype(np.float32))
        i += 1
    return np.stack(out)


def dictionary(name):
    import sporco.util as su

    D = su.convdicts()[name].astype(np.float32)          # (h, w, M)
    return D, np.ascontiguousarray(np.transpose(D, (2, 0, 1))[:, None])   # ours (M, 1, h, w)


def objective(filters, s, codes, lam):
    """float64 F = 1/2||sum_m d_m * x_m - s||^2 + lam ||x||_1; filters (M, 1, h, w), s (..., H, W),
    codes (..., M, H, W); sums over a leading batch axis."""
    s = np.asarray(s, np.float64)
    x = np.asarray(codes, np.float64)
    H, W = s.shape[-2:]
    Df = np.fft.rfft2(np.asarray(filters, np.float64)[:, 0], s=(H, W))
    r = np.fft.irfft2(np.sum(Df * np.fft.rfft2(x), axis=-3), s=(H, W)) - s
    return 0.5 * float(np.sum(r * r)) + lam * float(np.sum(np.abs(x)))


def sporco_run(Dsp, S, lam, n_iter, dimK=None, callback=None):
    """SPORCO ConvBPDN (AutoRho on, RelaxParam 1.8, all iterations); returns codes (K?, M, H, W), solve s,
    per-iteration ObjFun and Time, and the solver object."""
    from sporco.admm import cbpdn

    opt = cbpdn.ConvBPDN.Options({"Verbose": False, "MaxMainIter": n_iter, "RelStopTol": 0.0,
                                  "AutoRho": {"Enabled": True}, "RelaxParam": 1.8, "Callback": callback})
    b = cbpdn.ConvBPDN(Dsp, S, lam, opt, dimK=dimK)
    b.solve()
    Y = np.asarray(b.getcoef())                          # (H, W, 1, K, M)
    codes = np.moveaxis(Y[:, :, 0], (0, 1), (-2, -1))     # (K, M, H, W)
    it = b.getitstat()
    return codes, b.timer.elapsed("solve"), np.asarray(it.ObjFun), np.asarray(it.Time), b


def sporco_warmup(Dsp, S, lam, dimK=None):
    sporco_run(Dsp, S, lam, 2, dimK)                      # FFTW planning happens here, not in the timing


def first_reach(gaps, times):
    idx = np.nonzero(gaps <= GAP)[0]
    return (float(times[idx[0]]), int(idx[0]) + 1) if idx.size else (float("nan"), -1)


def ours_solver(filters, lam, n_iter, batched, batch=1, image_shape=(256, 256)):
    """Jitted runs (plain, with objective history). With several devices: one image's filters are split over
    them (``cbpdn_admm(mesh=...)``), a batch is split by images (``shard_batch``); under vmap, no chunking."""
    f = jnp.asarray(filters)
    ndev = jax.device_count()
    mesh = batch_mesh() if ndev > 1 else None
    M = f.shape[0]
    if batched:
        chunk = M   # under vmap a chunk of maps is a strided slice of the batch: one chunk is faster (4.1x vs 2.8x)

        def one(y):
            return cbpdn_admm(f, y, lam, max_iter=n_iter, tol=0.0, chunk=chunk)

        def one_hist(y):
            return cbpdn_admm(f, y, lam, max_iter=n_iter, mode="scan", history=True, chunk=chunk)

        run, run_hist = jax.vmap(one), jax.vmap(one_hist)
        if mesh is not None:
            return shard_batch(run, mesh=mesh), shard_batch(run_hist, mesh=mesh)
        return jax.jit(run), jax.jit(run_hist)
    mesh = mesh if mesh is not None and M % ndev == 0 else None

    def one(y):
        return cbpdn_admm(f, y, lam, max_iter=n_iter, tol=0.0, mesh=mesh)

    def one_hist(y):
        return cbpdn_admm(f, y, lam, max_iter=n_iter, mode="scan", history=True, mesh=mesh)

    return jax.jit(one), jax.jit(one_hist)


def reference(filters, S, lam, n_iter, batched):
    with jax.enable_x64(True):
        f = jnp.asarray(filters, jnp.float64)
        run = lambda y: cbpdn_admm(f, y, lam, max_iter=n_iter, tol=1e-9)
        y = jnp.asarray(S, jnp.float64)
        out = jax.jit(jax.vmap(run))(y) if batched else jax.jit(run)(y)
        return np.asarray(out.codes), np.asarray(out.num_steps)


def compare(table, label, dict_name, S, lam, n_iter, ref_iter, batched, repeat):
    Dsp, filters = dictionary(dict_name)
    Sj = S[:, None] if batched else S[None]              # ours: (B, 1, H, W) or (1, H, W)
    run, run_hist = ours_solver(filters, lam, n_iter, batched, batch=S.shape[0] if batched else 1,
                                image_shape=S.shape[-2:])
    y = jnp.asarray(Sj)
    t_ours, sol = best_time(lambda: run(y), repeat=repeat)
    codes_ours = np.asarray(sol.codes)
    F_ours = objective(filters, S, codes_ours, lam)
    hist = np.asarray(run_hist(y).history, np.float64)
    hist = hist.sum(axis=0) if batched else hist         # (n_iter,)

    sporco_warmup(Dsp, np.moveaxis(S, 0, -1) if batched else S, lam, dimK=1 if batched else None)
    Ssp = np.ascontiguousarray(np.moveaxis(S, 0, -1)) if batched else S
    codes_sp, t_sp, objfun_sp, time_sp, _ = sporco_run(Dsp, Ssp, lam, n_iter, dimK=1 if batched else None)
    codes_sp = codes_sp if batched else codes_sp[0]
    F_sp = objective(filters, S, codes_sp, lam)

    # SPORCO's ObjFun is F at its non-sparse X; F at its sparse Y per iteration from an untimed callback run
    hist_y = []

    def cb(b):
        Y = np.moveaxis(np.asarray(b.Y)[:, :, 0], (0, 1), (-2, -1))
        hist_y.append(objective(filters, S, Y if batched else Y[0], lam))
        return False

    sporco_run(Dsp, Ssp, lam, n_iter, dimK=1 if batched else None, callback=cb)
    hist_y = np.asarray(hist_y)
    ref_codes, ref_steps = reference(filters, Sj, lam, ref_iter, batched)
    F_ref = objective(filters, S, ref_codes, lam)
    F_star = min(F_ref, F_ours, F_sp, float(np.min(hist)), float(np.min(objfun_sp)))

    per_iter = t_ours / n_iter
    t_gap_ours, k_ours = first_reach((hist - F_star) / F_star, per_iter * np.arange(1, n_iter + 1))
    t_gap_sp, k_sp = first_reach((objfun_sp - F_star) / F_star, time_sp)
    t_gap_spy, k_spy = first_reach((hist_y - F_star) / F_star, (t_sp / n_iter) * np.arange(1, n_iter + 1))
    load = os.getloadavg()
    n_sig = S.shape[0] if batched else 1
    common = dict(F_star=F_star, ref_iter=int(np.max(ref_steps)), n_iter=n_iter, loadavg=load)
    table.add(label, "sparsejax cbpdn_admm f32", t_ours,
              {"F": F_ours, "gap": (F_ours - F_star) / F_star, "t_gap1e-4": t_gap_ours, "it_gap1e-4": k_ours},
              n_signals=n_sig, ms_per_iter=1e3 * per_iter, **common)
    table.add(label, "sporco ConvBPDN", t_sp,
              {"F": F_sp, "gap": (F_sp - F_star) / F_star, "t_gap1e-4": t_gap_spy, "it_gap1e-4": k_spy,
               "t_gap1e-4_ObjFunX": t_gap_sp, "it_gap1e-4_ObjFunX": k_sp},
              n_signals=n_sig, ms_per_iter=1e3 * t_sp / n_iter, **common)
    ratio = {"problem": label, "ratio_sporco_over_ours_full_run": t_sp / t_ours,
             "ratio_sporco_over_ours_to_gap1e-4": (t_gap_spy / t_gap_ours) if np.isfinite(t_gap_ours) else None,
             "loadavg": load}
    print(json.dumps(ratio), flush=True)
    return ratio


def scaling(table, sizes, n_iter, repeat, with_sporco=True):
    Dsp, filters = dictionary("G:8x8x32")
    rows = []
    for n in sizes:
        S = load_images(n)
        run, _ = ours_solver(filters, 0.05, n_iter, False, image_shape=S.shape[-2:])
        y = jnp.asarray(S[None])
        t, _ = best_time(lambda: run(y), repeat=repeat)
        extra = {}
        if with_sporco:
            sporco_warmup(Dsp, S, 0.05)
            _, t_sp, _, _, _ = sporco_run(Dsp, S, 0.05, n_iter)
            extra = {"sporco_ms_per_iter": 1e3 * t_sp / n_iter, "ratio": t_sp / t}
        nlogn = n * n * np.log2(n * n)
        row = table.add(f"(d) size {n}x{n} G:8x8x32", "sparsejax per-iteration", t / n_iter,
                        {"ms_per_iter": 1e3 * t / n_iter, "ns_per_NlogN": 1e9 * t / n_iter / nlogn},
                        loadavg=os.getloadavg(), **extra)
        rows.append(row)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes / few iterations (seconds)")
    p.add_argument("--sizes", default="64,128,256,512")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--ref-iter", type=int, default=500)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--only", default="abcd", help="subset of the problems a, b, c, d")
    a = p.parse_args(argv)
    table = Table("CBPDN: sparsejax cbpdn_admm (float32) vs SPORCO admm.cbpdn.ConvBPDN")
    print(json.dumps({"start_loadavg": os.getloadavg(), "cpus": os.cpu_count(), "jax": jax.__version__,
                      "devices": jax.device_count()}))
    if a.quick:
        img = load_images(256)[:64, :64]
        compare(table, "(quick) 64x64 G:8x8x32 lam=0.05", "G:8x8x32", img, 0.05, 30, 100, False, 1)
        compare(table, "(quick) batch 4x64x64", "G:8x8x32", batch_images(4, 64), 0.05, 30, 100, True, 1)
        scaling(table, [32, 64], 10, 1, with_sporco=False)
        table.print()
        return table
    img = load_images(256)
    if "a" in a.only:
        compare(table, "(a) barbara 256 G:12x12x36 lam=.05", "G:12x12x36", img, 0.05, 200, a.ref_iter, False,
                a.repeat)
    if "b" in a.only:
        compare(table, "(b) barbara 256 G:8x8x32 lam=.05", "G:8x8x32", img, 0.05, 100, a.ref_iter, False, a.repeat)
    if "c" in a.only:
        compare(table, f"(c) batch {a.batch}x128x128 G:8x8x32", "G:8x8x32", batch_images(a.batch, 128), 0.05, 100,
                a.ref_iter, True, a.repeat)
    if "d" in a.only:
        scaling(table, [int(v) for v in a.sizes.split(",")], 20, a.repeat)
    table.print()
    print(json.dumps({"end_loadavg": os.getloadavg()}))
    return table


if __name__ == "__main__":
    main()
