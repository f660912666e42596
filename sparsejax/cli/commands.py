"""The ``sparsejax`` console script.

    sparsejax --version                  the package version (sparsejax.__version__)
    sparsejax info                       versions, devices, default dtype
    sparsejax reproduce --list           the registered experiments
    sparsejax reproduce [NAMES...] [--quick | --preset P] [--out DIR] [--seed N]
                                         run experiments (all by default), write DIR/report.html and
                                         DIR/<name>.json; --preset runs a named preset of the experiments
                                         that have it (every one has quick and full; mnist_classification and
                                         adversarial also short, their default)
    sparsejax denoise IN.png OUT.png [--method csc|ksvd] [--lam LAM] [--tik-lam T] [--dict NAME|FILE.npz]
                                         [--iters N] [--sigma S] [--ksvd-iters J] [--patch P] [--atoms M]
                                         denoising of a grey image: csc (default, sparsejax.imaging.csc_denoise
                                         with its defaults: lam = 2.5 x the estimated noise sigma, tik-lam 5) or
                                         ksvd (sparsejax.restoration.ksvd_denoise, Elad & Aharon 2006: 8x8
                                         patches, 256 atoms, J = 10 K-SVD iterations, sigma in grey levels,
                                         estimated from the image when not given)
    sparsejax inpaint IN.png MASK.png OUT.png [--method csc|patch] [--lam LAM] [--tik-lam T]
                                         [--dict NAME|FILE.npz] [--iters N] [--patch P]
                                         inpainting; MASK white (> 0.5) = known pixel: csc (default; defaults of
                                         sparsejax.imaging.csc_inpaint: lam 0.002, tik-lam 1) or patch (masked
                                         OMP of P x P patches over the overcomplete DCT and averaging,
                                         sparsejax.restoration.inpaint.inpaint_patches)
    sparsejax learn [IMAGES] --kind dense|conv [--atoms N] [--size P] [--lam L] [--steps N] [--out PREFIX]
                                         learn a dictionary from a PNG folder (default: the bundled camera image),
                                         save PREFIX.npz and a PNG of the atoms (sparsejax.cli.learn; --color:
                                         a multi-channel convolutional dictionary from RGB images)
    sparsejax encode SIGNALS --dict D --out CODES [--method omp|lasso|...]
                                         code a .npy of signals (or a folder of PNGs cut into patches) chunk by
                                         chunk with flat memory, resumable after a kill (sparsejax.cli.encode)
    sparsejax launch -n N -- COMMAND     run COMMAND (a script or a sparsejax subcommand) as N processes of one
                                         JAX program on this machine (sparsejax.cli.launch)

Exit status of ``reproduce``: 0 all ran and passed, 1 an experiment raised, 2 bad arguments (unknown name,
a preset an experiment does not have), 3 all ran but some check did not pass. The report marks each experiment
PASS (ran correctly and its claim shown), RAN (ran correctly, claim not shown at this scale), FAIL or ERROR
(``sparsejax.reproduce.report.verdict``). Exit status of ``denoise`` / ``inpaint``: 0 written, 2 bad input
(missing file, mask size mismatch, unknown dictionary, an output path that cannot be written or has no image
suffix: checked before computing), 4 the output could not be written after all. ``--dict`` takes a bundled
name or the FILE.npz that ``sparsejax learn --kind conv`` writes.
"""
from __future__ import annotations

import argparse
import inspect
import sys
import time
import traceback
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from sparsejax import imaging
from sparsejax._version import VERSION
from sparsejax.cli.encode import add_encode_parser
from sparsejax.cli.launch import add_launch_parser
from sparsejax.cli.learn import add_learn_parser, folder_problem, output_problem
from sparsejax.datasets import images as data
from sparsejax.reproduce.registry import EXPERIMENTS, load_experiment
from sparsejax.reproduce.report import verdict, write_report
from sparsejax.restoration.inpaint import inpaint_patches
from sparsejax.restoration.ksvd_denoise import ksvd_denoise, paper_lambda

__all__ = ["main"]


def _version(mod: str) -> str:
    try:
        m = __import__(mod)
        return getattr(m, "__version__", "?")
    except Exception:
        return "not installed"


def cmd_info(args) -> int:
    """``sparsejax info``: print the versions of sparsejax, jax, jaxlib, optax, flax and numpy, JAX's backend and
    devices, and the default float dtype.

    Args:
      args: the parsed arguments (none are read).

    Returns:
      0.

    Example:
      >>> import contextlib, io
      >>> from sparsejax.cli.commands import main
      >>> buf = io.StringIO()
      >>> with contextlib.redirect_stdout(buf):
      ...     code = main(["info"])
      >>> code, all(word in buf.getvalue() for word in ("sparsejax", "jax", "backend", "dtype"))
      (0, True)
    """
    for mod in ("sparsejax", "jax", "jaxlib", "optax", "flax", "numpy"):
        print(f"{mod:10s} {_version(mod)}")
    print(f"{'backend':10s} {jax.default_backend()}")
    print(f"{'devices':10s} {', '.join(str(d) for d in jax.devices())}")
    print(f"{'dtype':10s} {jnp.zeros(()).dtype} (x64 {'on' if jax.config.jax_enable_x64 else 'off'})")
    return 0


def _named_presets(mod) -> list:
    """The preset names an experiment module accepts as ``run(..., preset=NAME)`` (the keys of its PRESETS)."""
    if "preset" not in inspect.signature(mod.run).parameters:
        return []
    return list(getattr(mod, "PRESETS", None) or {})


def cmd_reproduce(args) -> int:
    """``sparsejax reproduce``: run registered experiments and write ``report.html`` and one JSON per experiment.

    All experiments are checked (known names, the requested preset) before any runs; an experiment that raises
    is reported and the others still run.

    Args:
      args: the parsed arguments: ``names``, ``quick``, ``preset``, ``out``, ``seed``, ``list``.

    Returns:
      0 all ran and passed, 1 an experiment raised, 2 bad arguments (an ``--out`` folder that cannot be written
      included, checked before anything runs), 3 some check did not pass.

    Example:
      >>> from sparsejax.cli.commands import main
      >>> main(["reproduce", "--list"])  # doctest: +ELLIPSIS
      bp_stability         experiments/bp_stability.py
      ...
      0
      >>> main(["reproduce", "no_such_experiment"])
      2
    """
    if args.list:
        for name, path in EXPERIMENTS.items():
            print(f"{name:20s} {path}")
        return 0
    names = args.names or list(EXPERIMENTS)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        print(f"sparsejax reproduce: error: unknown experiment(s) {', '.join(unknown)}; "
              f"available: {', '.join(EXPERIMENTS)} (see --list)", file=sys.stderr)
        return 2
    problem = folder_problem(args.out, "--out")
    if problem:
        print(f"sparsejax reproduce: error: {problem}", file=sys.stderr)
        return 2
    runners = {}
    for n in names:
        mod = load_experiment(n)
        if args.preset in (None, "quick"):
            runners[n] = partial(mod.run, quick=args.quick or args.preset == "quick")
        elif args.preset in _named_presets(mod):
            runners[n] = partial(mod.run, quick=False, preset=args.preset)
    missing = [n for n in names if n not in runners]
    if missing:
        have = [n for n in EXPERIMENTS if args.preset in _named_presets(load_experiment(n))]
        print(f"sparsejax reproduce: error: no preset {args.preset!r} in {', '.join(missing)}; experiments with "
              f"it: {', '.join(have) or 'none'} (name them; every experiment has --quick)", file=sys.stderr)
        return 2

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    bar = tqdm(names, desc="reproduce", unit="exp", file=sys.stderr)
    for name in bar:
        bar.set_postfix_str(name)
        t0 = time.time()
        try:
            res = runners[name](out_dir=out, seed=args.seed)
            res.setdefault("name", name)
        except Exception as e:  # report, keep going, exit non-zero at the end
            res = {"name": name, "title": name, "description": "", "measured": {}, "predicted": {},
                   "figures": [], "passed": False, "seconds": round(time.time() - t0, 2),
                   "error": "".join(traceback.format_exception(type(e), e, e.__traceback__))}
        results.append(res)
        tqdm.write(f"{name}: {verdict(res)} ({res.get('seconds', '?')} s)", file=sys.stderr)
    path = write_report(results, out)
    print(f"report: {path}")
    if any(r.get("error") for r in results):
        for r in results:
            if r.get("error"):
                print(f"--- {r['name']} failed to run:\n{r['error']}", file=sys.stderr)
        return 1
    return 0 if all(r.get("passed") for r in results) else 3


IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".pgm")   # lossless 8-bit grey formats PIL writes


def _load_for_restore(args, paths):
    """Check the output path, load the images and dictionary of denoise/inpaint; print a clear error and return
    None on bad input (before anything is computed)."""
    problem = output_problem(args.output, IMAGE_SUFFIXES, "OUT")
    if problem:
        print(f"sparsejax {args.command}: error: {problem}", file=sys.stderr)
        return None
    try:
        imgs = [data.load_image(p) for p in paths]
        filters = data.load_conv_dictionary(args.dict)
    except (FileNotFoundError, ValueError, OSError) as e:
        print(f"sparsejax {args.command}: error: {e}", file=sys.stderr)
        return None
    return imgs, filters


def _finish(args, out, info, seconds) -> int:
    try:
        path = data.save_image(args.output, out)
    except (OSError, ValueError) as e:
        print(f"sparsejax {args.command}: error: cannot write {args.output}: {e}", file=sys.stderr)
        return 4
    conv = "converged" if info["converged"] else "iteration limit reached"
    print(f"{args.command}: lam {info['lam']:.4g}, {info['num_steps']} ADMM iterations ({conv}), "
          f"{100 * info['nnz_fraction']:.2f}% non-zero codes, {seconds:.1f} s -> {path}", file=sys.stderr)
    return 0


def cmd_denoise(args) -> int:
    """``sparsejax denoise IN.png OUT.png``: denoising of a grey image, by CSC (``--method csc``, the default:
    ``sparsejax.imaging.csc_denoise``) or by K-SVD on patches (``--method ksvd``:
    ``sparsejax.restoration.ksvd_denoise``).

    Args:
      args: the parsed arguments: ``input``, ``output``, ``method``, ``lam``, ``tik_lam``, ``dict``, ``iters``,
        ``npad`` (csc), ``sigma``, ``ksvd_iters``, ``patch``, ``atoms`` (ksvd).

    Returns:
      0 written, 2 bad input (missing file, unknown dictionary, invalid values, an output path that cannot be
      written), 4 writing the output failed; the error on stderr.

    Example:
      >>> from sparsejax.cli.commands import main
      >>> main(["denoise", "no_such_image.png", "out.png"])
      2
    """
    loaded = _load_for_restore(args, [args.input])
    if loaded is None:
        return 2
    (img,), filters = loaded
    if args.method == "ksvd":
        return _denoise_ksvd(args, img)
    lam = f"{imaging.DENOISE_LAM_PER_SIGMA} x the estimated noise sigma" if args.lam is None else args.lam
    print(f"denoise: {img.shape[0]}x{img.shape[1]} image, dictionary {args.dict} ({filters.shape[0]} filters "
          f"{filters.shape[2]}x{filters.shape[3]}), lam={lam}, up to {args.iters} iterations ...",
          file=sys.stderr, flush=True)
    t0 = time.time()
    try:
        out, info = imaging.csc_denoise(img, filters, args.lam, tik_lam=args.tik_lam, max_iter=args.iters,
                                        npad=args.npad)
        out.block_until_ready()
    except ValueError as e:
        print(f"sparsejax denoise: error: {e}", file=sys.stderr)
        return 2
    return _finish(args, out, info, time.time() - t0)


def _denoise_ksvd(args, img) -> int:
    """``denoise --method ksvd``: K-SVD denoising with a progress bar over the K-SVD iterations."""
    if args.sigma is not None and not args.sigma > 0:
        print(f"sparsejax denoise: error: --sigma must be > 0 (grey levels, 0..255), got {args.sigma}",
              file=sys.stderr)
        return 2
    if args.ksvd_iters < 0:
        print(f"sparsejax denoise: error: --ksvd-iters must be >= 0, got {args.ksvd_iters}", file=sys.stderr)
        return 2
    if args.sigma is None:
        sigma = float(imaging.noise_sigma(img))
        how = "estimated from the image"
    else:
        sigma, how = args.sigma / 255.0, "given"
    print(f"denoise (ksvd): {img.shape[0]}x{img.shape[1]} image, sigma {255 * sigma:.2f} grey levels ({how}), "
          f"{args.patch}x{args.patch} patches, {args.atoms} atoms (overcomplete DCT start), {args.ksvd_iters} K-SVD "
          f"iterations, error target 1.15 sigma, lam = 30/sigma = {paper_lambda(sigma):.3g} ...",
          file=sys.stderr, flush=True)
    bar = tqdm(total=args.ksvd_iters + 1, desc="ksvd", unit="step", file=sys.stderr)

    def progress(stage, i, n):
        bar.set_postfix_str(stage)
        bar.update(1)

    t0 = time.time()
    try:
        res = ksvd_denoise(jnp.asarray(img), sigma, n_iter=args.ksvd_iters, patch_size=args.patch,
                           n_atoms=args.atoms, progress=progress)
    except ValueError as e:
        bar.close()
        print(f"sparsejax denoise: error: {e}", file=sys.stderr)
        return 2
    bar.close()
    if not res.finite:
        print("sparsejax denoise: error: the result holds NaN or inf (numerical failure); nothing written",
              file=sys.stderr)
        return 4
    try:
        path = data.save_image(args.output, res.image)
    except (OSError, ValueError) as e:
        print(f"sparsejax denoise: error: cannot write {args.output}: {e}", file=sys.stderr)
        return 4
    print(f"denoise (ksvd): {res.mean_atoms:.2f} atoms per patch, {100 * res.converged_fraction:.2f}% of the "
          f"patches met the error target, {time.time() - t0:.1f} s -> {path}", file=sys.stderr)
    return 0


def cmd_inpaint(args) -> int:
    """``sparsejax inpaint IN.png MASK.png OUT.png``: fill the pixels where the mask is black (<= 0.5) by masked
    CSC (``sparsejax.imaging.csc_inpaint``).

    Args:
      args: the parsed arguments: ``input``, ``mask``, ``output``, ``lam``, ``tik_lam``, ``dict``, ``iters``,
        ``npad``, ``keep_known``.

    Returns:
      0 written, 2 bad input (missing file, mask size mismatch, unknown dictionary, an output path that cannot
      be written), 4 writing the output failed; the error on stderr.

    Example:
      >>> from sparsejax.cli.commands import main
      >>> main(["inpaint", "camera", "no_such_mask.png", "out.png"])
      2
    """
    loaded = _load_for_restore(args, [args.input, args.mask])
    if loaded is None:
        return 2
    (img, mask), filters = loaded
    if mask.shape != img.shape:
        print(f"sparsejax inpaint: error: mask {args.mask} is {mask.shape[0]}x{mask.shape[1]} but the image "
              f"{args.input} is {img.shape[0]}x{img.shape[1]}", file=sys.stderr)
        return 2
    mask = (mask > 0.5).astype(np.float32)
    if args.method == "patch":
        return _inpaint_patch(args, img, mask)
    print(f"inpaint: {img.shape[0]}x{img.shape[1]} image, {100 * (1 - mask.mean()):.1f}% missing, dictionary "
          f"{args.dict}, lam={args.lam}, up to {args.iters} iterations ...", file=sys.stderr, flush=True)
    t0 = time.time()
    try:
        out, info = imaging.csc_inpaint(img, mask, filters, args.lam, tik_lam=args.tik_lam, max_iter=args.iters,
                                        npad=args.npad, keep_known=args.keep_known)
        out.block_until_ready()
    except ValueError as e:
        print(f"sparsejax inpaint: error: {e}", file=sys.stderr)
        return 2
    return _finish(args, out, info, time.time() - t0)


def _inpaint_patch(args, img, mask) -> int:
    """``inpaint --method patch``: masked OMP on the patches (``sparsejax.restoration.inpaint.inpaint_patches``)."""
    print(f"inpaint (patch): {img.shape[0]}x{img.shape[1]} image, {100 * (1 - mask.mean()):.1f}% missing, "
          f"{args.patch}x{args.patch} patches at stride 1, overcomplete DCT dictionary, masked OMP "
          f"(inpaint_patches defaults: at most patch^2/8 atoms), keep known pixels: {args.keep_known} ...",
          file=sys.stderr, flush=True)
    t0 = time.time()
    try:
        res = inpaint_patches(jnp.asarray(img), jnp.asarray(mask), patch_size=args.patch,
                              keep_known=args.keep_known)
        res.image.block_until_ready()
    except ValueError as e:
        print(f"sparsejax inpaint: error: {e}", file=sys.stderr)
        return 2
    if not bool(res.finite):
        print("sparsejax inpaint: error: the result holds NaN or inf (numerical failure); nothing written",
              file=sys.stderr)
        return 4
    try:
        path = data.save_image(args.output, res.image)
    except (OSError, ValueError) as e:
        print(f"sparsejax inpaint: error: cannot write {args.output}: {e}", file=sys.stderr)
        return 4
    print(f"inpaint (patch): {res.params.get('patches', '?')} patches, k = {res.params.get('k', '?')}, "
          f"{time.time() - t0:.1f} s -> {path}", file=sys.stderr)
    return 0


def _restore_args(p, lam, lam_help, tik_lam, iters):
    p.add_argument("--lam", "--sigma-lam", dest="lam", type=float, default=lam,
                   help=f"l1 weight of CBPDN for images in [0, 1] (default {lam_help})")
    p.add_argument("--tik-lam", type=float, default=tik_lam, help=f"Tikhonov low-pass weight (default {tik_lam})")
    p.add_argument("--dict", default="G_8x8x32",
                   help="bundled dictionary G_8x8x32 (default) or G_12x12x36, or the FILE.npz written by "
                        "'sparsejax learn --kind conv'")
    p.add_argument("--iters", type=int, default=iters, help=f"maximum ADMM iterations (default {iters})")
    p.add_argument("--npad", type=int, default=16, help="border padding in pixels (default 16)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sparsejax`` command (``--version`` and the subcommands info, reproduce,
    denoise, inpaint, learn, encode, launch); each subcommand sets ``func``, the function that runs it.

    Returns:
      The ``argparse.ArgumentParser``.

    Example:
      >>> from sparsejax.cli.commands import build_parser
      >>> args = build_parser().parse_args(["denoise", "in.png", "out.png"])
      >>> args.func.__name__, args.method, args.lam, args.tik_lam, args.dict
      ('cmd_denoise', 'csc', None, 5.0, 'G_8x8x32')
    """
    ap = argparse.ArgumentParser(prog="sparsejax", description="Sparse modeling in JAX: tools and reproductions.")
    ap.add_argument("--version", action="version", version=VERSION, help="print the version and exit")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="versions, devices and default dtype")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("reproduce", help="run registered experiments and write an HTML/JSON report")
    p.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (default: all)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small presets (seconds each)")
    g.add_argument("--preset", default=None, help="a named preset of the experiments that define one "
                   "(quick / short / full; see each experiment's docstring)")
    p.add_argument("--out", default="results", help="output directory (default: results/)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--list", action="store_true", help="list the registered experiments and exit")
    p.set_defaults(func=cmd_reproduce)
    p = sub.add_parser("denoise", help="denoise a grey PNG: convolutional sparse coding (csc, default) or K-SVD "
                                       "on patches (ksvd)")
    p.add_argument("input", metavar="IN.png")
    p.add_argument("output", metavar="OUT.png")
    p.add_argument("--method", choices=("csc", "ksvd"), default="csc",
                   help="csc: CSC with a convolutional dictionary (default); ksvd: K-SVD denoising on 8x8 patches "
                        "(Elad & Aharon 2006)")
    _restore_args(p, None, f"{imaging.DENOISE_LAM_PER_SIGMA} x the noise sigma estimated from the image, as "
                  "sparsejax.imaging.csc_denoise", imaging.DENOISE_TIK_LAM, 200)
    p.add_argument("--sigma", type=float, default=None,
                   help="ksvd: noise sigma in grey levels 0..255 (default: estimated from the image)")
    p.add_argument("--ksvd-iters", type=int, default=10, help="ksvd: K-SVD iterations (default 10; 0 = the DCT)")
    p.add_argument("--patch", type=int, default=8, help="ksvd: patch size (default 8)")
    p.add_argument("--atoms", type=int, default=256, help="ksvd: atoms, a square >= patch^2 (default 256)")
    p.set_defaults(func=cmd_denoise)
    p = sub.add_parser("inpaint", help="fill the missing pixels of a grey PNG (mask: white = known) by masked CSC "
                                       "(csc, default) or masked OMP on patches (patch)")
    p.add_argument("input", metavar="IN.png")
    p.add_argument("mask", metavar="MASK.png")
    p.add_argument("output", metavar="OUT.png")
    p.add_argument("--method", choices=("csc", "patch"), default="csc",
                   help="csc: masked CSC (default); patch: masked OMP on patches over the overcomplete DCT")
    p.add_argument("--patch", type=int, default=8, help="patch: patch size (default 8)")
    _restore_args(p, imaging.INPAINT_LAM, f"{imaging.INPAINT_LAM}, as sparsejax.imaging.csc_inpaint",
                  imaging.INPAINT_TIK_LAM, 300)
    p.add_argument("--keep-known", action="store_true", help="copy the known pixels into the output unchanged")
    p.set_defaults(func=cmd_inpaint)
    add_learn_parser(sub)
    add_encode_parser(sub)
    add_launch_parser(sub)
    return ap


def main(argv=None) -> int:
    """Run the ``sparsejax`` command.

    Args:
      argv: the arguments (default ``sys.argv[1:]``).

    Returns:
      The exit status of the subcommand (argparse exits with status 2 on unknown options, and with 0 after
      ``--help`` or ``--version``).

    Example:
      >>> import contextlib, io
      >>> import sparsejax as sj
      >>> from sparsejax.cli.commands import main
      >>> buf = io.StringIO()
      >>> with contextlib.redirect_stdout(buf):
      ...     try:
      ...         main(["--version"])
      ...     except SystemExit as stop:
      ...         code = stop.code
      >>> code, buf.getvalue().strip() == sj.__version__
      (0, True)
    """
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
