"""Convolutional dictionary learning: ``learn_conv_dictionary`` (float32, jit) vs SPORCO's
``dictlrn.cbpdndl.ConvBPDNDictLearn`` in the same run.

    python -m benchmarks.cdl [--quick] [--iters 50] [--dmethod cns|ism|cg|pgm] [--rho-ratio 10]

Problem (SPORCO's example ``cbpdndl_cns_gry.py`` at zoom 0.5): 5 grey 256 x 256 images (barbara, kodim23,
monarch, sail, tulips with the example's crops), Tikhonov high-pass ``sporco.signal.tikhonov_filter(S, 5, 16)``,
32 filters 8 x 8 from ``np.random.seed(12345); randn(8, 8, 32)``, lambda = 0.2, 50 outer iterations,
CBPDN rho = 50 lambda + 0.5, CCMOD rho = 10 and zero-mean filters (the example's options); one CBPDN and one
dictionary ADMM iteration per outer iteration for both.

Reported: seconds for the whole run (ours after a two-step warm-up that compiles; SPORCO's ``solve`` timer),
final objective F = 1/2 sum_k ||sum_m d_m * x_{k,m} - s_k||^2 + lambda sum |x| evaluated the same way for
both (float64, circular, at the returned filters -- the projected, cropped dictionary variable -- and the
returned sparse codes -- CBPDN's sparse variable Y), and ratio = SPORCO seconds / our seconds (> 1: we are
faster). One JSON line per measurement (with os.getloadavg(): the machine is shared), then a table.

Cores: SPORCO's pyFFTW uses every core, while XLA:CPU runs each FFT on one thread, so (as benchmarks/csc.py)
the script starts one host device per core (``XLA_FLAGS=--xla_force_host_platform_device_count=<cpus>`` unless
XLA_FLAGS already sets it) and splits the 32 filters and their maps over them
(``learn_conv_dictionary(mesh=...)``). ``--devices 1`` (or that XLA flag set to 1) gives the one-device figure.
"""
from __future__ import annotations

import argparse
import json
import os
import time

if __name__ == "__main__" and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    # one host device per core: learn_conv_dictionary(mesh=...) splits the filters over the cores
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={os.cpu_count() or 1}").strip()

import jax
import numpy as np

from benchmarks._harness import Table
from sparsejax.distributed import batch_mesh
from sparsejax.learn.conv import learn_conv_dictionary

CROPS = {"barbara.png": np.s_[10:522, 100:612], "kodim23.png": np.s_[:, 60:572], "monarch.png": np.s_[:, 160:672],
         "sail.png": np.s_[:, 210:722], "tulips.png": np.s_[:, 30:542]}


def load_images(zoom=0.5):
    """(K, H, W) float32 high-pass images and the (H, W, K) array SPORCO takes."""
    import sporco.signal as ss
    import sporco.util as su

    ei = su.ExampleImages(scaled=True, zoom=zoom, gray=True)
    S = np.dstack([ei.image(name, idxexp=idx) for name, idx in CROPS.items()]).astype(np.float32)
    _, sh = ss.tikhonov_filter(S, 5, 16)
    sh = np.ascontiguousarray(sh.astype(np.float32))
    return np.ascontiguousarray(np.moveaxis(sh, -1, 0)), sh


def objective(filters, S, codes, lam):
    """float64 F; filters (M, 1, h, w), S (K, H, W), codes (K, M, H, W)."""
    S = np.asarray(S, np.float64)
    x = np.asarray(codes, np.float64)
    H, W = S.shape[-2:]
    Df = np.fft.rfft2(np.asarray(filters, np.float64)[:, 0], s=(H, W))
    r = np.fft.irfft2(np.sum(Df[None] * np.fft.rfft2(x), axis=1), s=(H, W)) - S
    return 0.5 * float(np.sum(r * r)) + lam * float(np.sum(np.abs(x)))


def sporco_run(D0, Ssp, lam, n_iter, dmethod):
    from sporco.dictlrn import cbpdndl

    opt = cbpdndl.ConvBPDNDictLearn.Options({"Verbose": False, "MaxMainIter": n_iter,
                                             "CBPDN": {"rho": 50.0 * lam + 0.5},
                                             "CCMOD": {"rho": 10.0, "ZeroMean": True}}, dmethod=dmethod)
    d = cbpdndl.ConvBPDNDictLearn(D0, Ssp, lam, opt, dmethod=dmethod)
    d.solve()
    D = np.asarray(d.getdict()).squeeze()                                 # (8, 8, M)
    X = np.asarray(d.getcoef())                                           # (H, W, 1, K, M)
    filters = np.transpose(D, (2, 0, 1))[:, None]
    codes = np.moveaxis(X[:, :, 0], (0, 1), (-2, -1))                     # (K, M, H, W)
    return filters, codes, d.timer.elapsed("solve")


def ours_run(S, f0, lam, n_iter, rho_ratio, devices=None):
    """Our run; the filters are split over ``devices`` host devices (default: all; 1 or M not a multiple: none)."""
    ndev = jax.device_count() if devices is None else min(devices, jax.device_count())
    mesh = batch_mesh(jax.devices()[:ndev]) if ndev > 1 and f0.shape[0] % ndev == 0 else None
    kw = dict(init=f0, x_rho=50.0 * lam + 0.5, d_rho=10.0, zero_mean=True, progress=False, rho_ratio=rho_ratio,
              mesh=mesh)
    # compile: 2 steps, as the second sees the state sharded by the first (another input sharding)
    learn_conv_dictionary(S, f0.shape[0], f0.shape[2:], lam, n_steps=2, **kw)
    t0 = time.perf_counter()
    res = learn_conv_dictionary(S, f0.shape[0], f0.shape[2:], lam, n_steps=n_iter, **kw)
    jax.block_until_ready(res.filters)
    return np.asarray(res.filters), np.asarray(res.codes), time.perf_counter() - t0, res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="10 iterations on 128 x 128 images (seconds)")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--dmethod", default="cns", help="SPORCO dictionary update: cns (the example's), ism, cg, pgm")
    p.add_argument("--rho-ratio", type=float, default=10.0, help="our residual-balancing ratio (SPORCO's: 10)")
    p.add_argument("--lam", type=float, default=0.2)
    p.add_argument("--devices", type=int, default=None, help="host devices to split the filters over (default all)")
    a = p.parse_args(argv)
    n_iter = 10 if a.quick else a.iters
    S, Ssp = load_images(0.25 if a.quick else 0.5)
    np.random.seed(12345)
    D0 = np.random.randn(8, 8, 32)
    f0 = np.ascontiguousarray(np.transpose(D0, (2, 0, 1))[:, None]).astype(np.float32)
    label = f"{S.shape[0]} images {S.shape[1]}x{S.shape[2]}, 32 filters 8x8, lam={a.lam}, {n_iter} it"
    table = Table("CDL: sparsejax learn_conv_dictionary (admm, float32) vs SPORCO ConvBPDNDictLearn")
    ndev = jax.device_count() if a.devices is None else min(a.devices, jax.device_count())
    print(json.dumps({"start_loadavg": os.getloadavg(), "cpus": os.cpu_count(), "jax": jax.__version__,
                      "devices": ndev}), flush=True)

    t_cpu = time.process_time()
    f_ours, c_ours, t_ours, res = ours_run(S, f0, a.lam, n_iter, a.rho_ratio, ndev)
    t_cpu = time.process_time() - t_cpu
    F_ours = objective(f_ours, S, c_ours, a.lam)
    load_ours = os.getloadavg()
    f_sp, c_sp, t_sp = sporco_run(D0, Ssp, a.lam, n_iter, a.dmethod)
    F_sp = objective(f_sp, S, c_sp, a.lam)
    load_sp = os.getloadavg()
    table.add(label, "sparsejax admm f32", t_ours, {"F": F_ours, "F_reported": float(res.loop.history["loss"][-1]),
                                                     "nnz_frac": float(np.mean(c_ours != 0))},
              s_per_iter=t_ours / n_iter, devices=ndev, process_time_incl_compile=t_cpu, loadavg=load_ours)
    table.add(label, f"sporco ConvBPDNDictLearn ({a.dmethod})", t_sp,
              {"F": F_sp, "nnz_frac": float(np.mean(c_sp != 0))}, s_per_iter=t_sp / n_iter, loadavg=load_sp)
    ratio = {"problem": label, "ratio_sporco_over_ours": t_sp / t_ours, "F_ours_over_F_sporco": F_ours / F_sp,
             "loadavg": os.getloadavg()}
    print(json.dumps(ratio), flush=True)
    table.print()
    return ratio


if __name__ == "__main__":
    main()
