"""Multi-channel (colour) convolutional dictionary learning: ``learn_conv_dictionary(multichannel=True)`` (float32,
jit) vs SPORCO's ``dictlrn.cbpdndl.ConvBPDNDictLearn`` with a multi-channel dictionary, at equal objective.

    python -m benchmarks.cdl_multichannel [--quick] [--iters 50] [--devices N]

Problem: 3 colour images of SPORCO's example set (monarch, sail, tulips; ``ExampleImages(gray=False)``, centre
crops of 128 x 128 at zoom 0.5; ``--quick``: 64 x 64 at zoom 0.25), each channel high-passed by
``sporco.signal.tikhonov_filter(S, 5, 16)``; 16 filters 8 x 8 x 3 from ``np.random.seed(12345); randn(8, 8, 3, 16)``
(a multi-channel dictionary: the three channels of a filter share one coefficient map; Wohlberg, "Convolutional
sparse representation of color images", IEEE SSIAI 2016), lambda = 0.1, CBPDN rho = 50 lambda + 0.5, CCMOD
rho = 10, zero-mean filters, one CBPDN and one dictionary ADMM iteration per outer iteration for both.

Equal objective: SPORCO runs with ``AccurateDFid`` so that its per-iteration objective is evaluated at the same
point as ours (projected filters, sparse codes). F* = the larger of the two final objectives; each library's time
to F* is its elapsed time at the first iteration whose objective is <= F* (ours: the per-step loss history and
the run's wall time spread evenly over the steps, after a two-step warm-up that compiles; SPORCO: its own
per-iteration ``Time`` statistic). ratio = SPORCO's time to F* / ours (> 1: we are faster). Also reported: the
final objectives recomputed the same way for both (float64), and os.getloadavg() (the machine may be shared).

Cores: one device by default. ``--devices N`` splits the filters over N host devices as benchmarks/cdl.py does
(``XLA_FLAGS=--xla_force_host_platform_device_count``), but with a multi-channel dictionary that run hung here
(2 host devices: the batched LAPACK eigh of the multi-channel CBPDN factors waited for ever in its thread pool
inside ``shard_map``; 17 s of CPU in 14 minutes), so it is not the default.
"""
from __future__ import annotations

import argparse
import json
import os
import time

if __name__ == "__main__" and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={os.cpu_count() or 1}").strip()

import jax
import numpy as np

from benchmarks._harness import Table
from sparsejax.distributed import batch_mesh
from sparsejax.learn.conv import learn_conv_dictionary

NAMES = ("monarch.png", "sail.png", "tulips.png")


def load_images(zoom, size):
    """(K, 3, size, size) float32 high-pass colour images and the (size, size, 3, K) array SPORCO takes."""
    import sporco.signal as ss
    import sporco.util as su

    ei = su.ExampleImages(scaled=True, zoom=zoom, gray=False)
    crops = []
    for name in NAMES:
        im = ei.image(name)
        y, x = (im.shape[0] - size) // 2, (im.shape[1] - size) // 2
        crops.append(im[y:y + size, x:x + size])
    S = np.stack(crops, axis=-1).astype(np.float32)                       # (H, W, 3, K)
    _, sh = ss.tikhonov_filter(S, 5, 16)
    sh = np.ascontiguousarray(sh.astype(np.float32))
    return np.ascontiguousarray(np.transpose(sh, (3, 2, 0, 1))), sh


def objective(filters, S, codes, lam):
    """float64 F = 1/2 sum_{k,c} ||sum_m d_{m,c} * x_{k,m} - s_{k,c}||^2 + lam ||x||_1; filters (M, C, h, w),
    S (K, C, H, W), codes (K, M, H, W)."""
    S = np.asarray(S, np.float64)
    x = np.asarray(codes, np.float64)
    H, W = S.shape[-2:]
    Df = np.fft.rfft2(np.asarray(filters, np.float64), s=(H, W))         # (M, C, H, F)
    r = np.fft.irfft2(np.einsum("kmhf,mchf->kchf", np.fft.rfft2(x), Df), s=(H, W)) - S
    return 0.5 * float(np.sum(r * r)) + lam * float(np.sum(np.abs(x)))


def time_to(objs, times, target):
    """Elapsed time at the first iteration whose objective is <= target (inf if none)."""
    hit = np.flatnonzero(np.asarray(objs) <= target * (1 + 1e-9))
    return float(times[hit[0]]) if hit.size else float("inf")


def sporco_run(D0, Ssp, lam, n_iter):
    from sporco.dictlrn import cbpdndl

    opt = cbpdndl.ConvBPDNDictLearn.Options({"Verbose": False, "MaxMainIter": n_iter, "AccurateDFid": True,
                                             "CBPDN": {"rho": 50.0 * lam + 0.5},
                                             "CCMOD": {"rho": 10.0, "ZeroMean": True}}, dmethod="cns")
    d = cbpdndl.ConvBPDNDictLearn(D0, Ssp, lam, opt, dmethod="cns", dimK=1)
    d.solve()
    its = d.getitstat()
    h, w, C, M = D0.shape
    filters = np.transpose(np.asarray(d.getdict()).reshape(h, w, C, M), (3, 2, 0, 1))
    X = np.asarray(d.getcoef())                                           # (H, W, 1, K, M)
    codes = np.transpose(X[:, :, 0], (2, 3, 0, 1))
    return filters, codes, np.asarray(its.ObjFun), np.asarray(its.Time), d.timer.elapsed("solve")


def ours_run(S, f0, lam, n_iter, devices=None):
    ndev = jax.device_count() if devices is None else min(devices, jax.device_count())
    mesh = batch_mesh(jax.devices()[:ndev]) if ndev > 1 and f0.shape[0] % ndev == 0 else None
    kw = dict(init=f0, x_rho=50.0 * lam + 0.5, d_rho=10.0, zero_mean=True, progress=False, multichannel=True,
              mesh=mesh)
    learn_conv_dictionary(S, f0.shape[0], f0.shape[2:], lam, n_steps=2, **kw)       # compile
    t0 = time.perf_counter()
    res = learn_conv_dictionary(S, f0.shape[0], f0.shape[2:], lam, n_steps=n_iter, **kw)
    jax.block_until_ready(res.filters)
    return res, time.perf_counter() - t0, (ndev if mesh is not None else 1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="10 iterations on 64 x 64 images (seconds)")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--lam", type=float, default=0.1)
    p.add_argument("--devices", type=int, default=1, help="host devices to split the filters over (default 1; see "
                   "the module doc: 2 host devices hung with a multi-channel dictionary)")
    a = p.parse_args(argv)
    n_iter = 10 if a.quick else a.iters
    S, Ssp = load_images(0.25 if a.quick else 0.5, 64 if a.quick else 128)
    np.random.seed(12345)
    D0 = np.random.randn(8, 8, 3, 16)
    f0 = np.ascontiguousarray(np.transpose(D0, (3, 2, 0, 1))).astype(np.float32)       # (M, C, h, w)
    label = f"{S.shape[0]} colour images {S.shape[2]}x{S.shape[3]}, 16 filters 8x8x3, lam={a.lam}, {n_iter} it"
    print(json.dumps({"start_loadavg": os.getloadavg(), "cpus": os.cpu_count(), "jax": jax.__version__}), flush=True)

    res, t_ours, ndev = ours_run(S, f0, a.lam, n_iter, a.devices)
    load_ours = os.getloadavg()
    obj_ours = np.asarray(res.loop.history["loss"])
    times_ours = t_ours * np.arange(1, n_iter + 1) / n_iter
    f_sp, c_sp, obj_sp, times_sp, t_sp = sporco_run(D0, Ssp, a.lam, n_iter)
    load_sp = os.getloadavg()

    F_ours = objective(res.filters, S, res.codes, a.lam)
    F_sp = objective(f_sp, S, c_sp, a.lam)
    target = max(obj_ours[-1], obj_sp[-1])
    t_ours_eq, t_sp_eq = time_to(obj_ours, times_ours, target), time_to(obj_sp, times_sp, target)
    table = Table("Multi-channel CDL: sparsejax (admm, float32, multichannel=True) vs SPORCO ConvBPDNDictLearn")
    table.add(label, "sparsejax admm f32", t_ours, {"F": F_ours, "F_reported": float(obj_ours[-1]),
                                                     "t_to_F*": t_ours_eq}, devices=ndev, loadavg=load_ours)
    table.add(label, "sporco ConvBPDNDictLearn", t_sp, {"F": F_sp, "F_reported": float(obj_sp[-1]),
                                                         "t_to_F*": t_sp_eq}, loadavg=load_sp)
    ratio = {"problem": label, "F_star": float(target), "ratio_sporco_over_ours_at_equal_objective": t_sp_eq / t_ours_eq,
             "ratio_sporco_over_ours_whole_run": t_sp / t_ours, "F_ours_over_F_sporco": F_ours / F_sp,
             "loadavg": os.getloadavg()}
    print(json.dumps(ratio), flush=True)
    table.print()
    return ratio


if __name__ == "__main__":
    main()
