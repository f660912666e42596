"""The ``sparsejax encode`` subcommand: sparse-code signals bigger than memory, chunk by chunk, resumable.

    sparsejax encode SIGNALS --dict D --out CODES [--method omp|lasso|threshold|ista|fista|admm|bp_constrained]
                     [--k K] [--tol T] [--lam L] [--eps E] [--max-iter N] [--chunk-size N]
                     [--patch-size P] [--stride S] [--center] [--restart] [--keep-parts] [--quiet]

SIGNALS is a 2-D ``.npy`` file (N, n) of signals as rows (read chunk by chunk with positioned reads:
``sparsejax.streaming.NpySignals``), or a folder of PNG images (or one PNG) cut into P x P patches every S pixels
(``sparsejax.streaming.ImagePatches``; P defaults to sqrt(n)). ``--dict`` is an (n, m) ``.npy`` of atoms as
columns, or the ``.npz`` that ``sparsejax learn --kind dense`` writes (its ``dictionary``).

The codes go to CODES: a ``.npz`` path gives one scipy sparse CSR file (N, m) (``scipy.sparse.load_npz``; its extra
array ``converged`` flags each signal), a path without suffix a folder of per-chunk parts
(``sparsejax.streaming.read_codes`` reads either). Each finished chunk is written atomically and logged; after a
kill, rerunning the same command continues where it stopped (``--restart`` starts afresh; a rerun with another
dictionary, method, option or input is refused, naming what differs). A progress bar shows signals done,
throughput and time left. Memory stays at a few chunks whatever N (``--chunk-size``, default 65,536 signals).

Options per method: ``omp`` takes ``--k`` (atoms per signal) and/or ``--tol`` (residual norm); ``threshold``
``--lam`` or ``--k``; ``lasso``, ``ista``, ``fista``, ``admm`` ``--lam``; ``bp_constrained`` ``--eps``; the iterative
ones also ``--max-iter`` and ``--tol``. An option that does not apply to the method is refused.

Exit status: 0 written, every pursuit converged; 2 bad input (missing or malformed file, sizes that do not match,
a missing option, an output that cannot be written, parts of a run with other settings), checked before computing;
3 written, but some signals did not converge or have non-finite codes (counted on stderr, flagged in
``converged``); 4 a write failed during the run (rerun to resume); 130 interrupted (rerun to resume).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from sparsejax.cli.learn import folder_problem, output_problem
from sparsejax.pursuit.encode import METHODS
from sparsejax.streaming import ImagePatches, NpySignals, check_dictionary_array, encode_to_file

__all__ = ["add_encode_parser", "run_encode", "main", "load_dictionary"]

_LAM_METHODS = ("lasso", "threshold", "ista", "fista", "admm")


def add_encode_parser(subparsers):
    """Add the ``encode`` subcommand (the options of the module docstring) to an argparse ``subparsers`` object.

    Args:
      subparsers: from ``argparse.ArgumentParser.add_subparsers``.

    Returns:
      The ``encode`` parser, its ``func`` default set to ``run_encode``.

    Example:
      >>> import argparse
      >>> from sparsejax.cli.encode import add_encode_parser
      >>> sub = argparse.ArgumentParser(prog="sparsejax").add_subparsers(dest="command")
      >>> args = add_encode_parser(sub).parse_args(["y.npy", "--dict", "D.npy", "--out", "c.npz", "--k", "4"])
      >>> args.method, args.k, args.chunk_size, args.func.__name__
      ('omp', 4, 65536, 'run_encode')
    """
    p = subparsers.add_parser("encode", help="sparse-code a .npy of signals or a folder of images, chunk by chunk "
                                             "(resumable, flat memory)")
    p.add_argument("signals", metavar="SIGNALS", help="a 2-D .npy file (signals as rows) or a folder of PNG images")
    p.add_argument("--dict", required=True, dest="dictionary", metavar="D",
                   help="(n, m) .npy of atoms as columns, or the .npz of 'sparsejax learn --kind dense'")
    p.add_argument("--out", required=True, metavar="CODES",
                   help="CODES.npz (one scipy sparse CSR file) or a folder of per-chunk parts")
    p.add_argument("--method", default="omp", choices=METHODS, help="pursuit (default omp)")
    p.add_argument("--k", type=int, default=None, help="omp: atoms per signal")
    p.add_argument("--tol", type=float, default=None, help="omp: residual norm to stop at; iterative: tolerance")
    p.add_argument("--lam", type=float, default=None, help="l1 weight (lasso, threshold, ista, fista, admm)")
    p.add_argument("--eps", type=float, default=None, help="bp_constrained: ||y - D a|| <= eps")
    p.add_argument("--max-iter", type=int, default=None, help="iterative pursuits: maximum iterations")
    p.add_argument("--chunk-size", type=int, default=65536, help="signals per chunk (default 65536)")
    p.add_argument("--patch-size", type=int, default=None, help="images: patch side P (default sqrt(n))")
    p.add_argument("--stride", type=int, default=1, help="images: pixels between patches (default 1)")
    p.add_argument("--center", action="store_true", help="images: remove each patch's mean")
    p.add_argument("--restart", action="store_true", help="ignore the parts of an earlier run and start afresh")
    p.add_argument("--keep-parts", action="store_true", help="keep the parts folder after writing CODES.npz")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_encode)
    return p


def _error(msg) -> int:
    print(f"sparsejax encode: error: {msg}", file=sys.stderr)
    return 2


def load_dictionary(path) -> np.ndarray:
    """The (n, m) dictionary of a ``.npy`` file, or of a ``.npz`` (its ``dictionary`` array, or its only array).

    Example:
      >>> import tempfile
      >>> import numpy as np
      >>> from sparsejax.cli.encode import load_dictionary
      >>> with tempfile.TemporaryDirectory() as d:
      ...     np.savez(d + "/D.npz", dictionary=np.eye(3), loss=np.zeros(2))
      ...     print(load_dictionary(d + "/D.npz").shape)
      (3, 3)
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--dict: file {p} does not exist")
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            if "dictionary" in z.files:
                D = z["dictionary"]
            elif len(z.files) == 1:
                D = z[z.files[0]]
            else:
                raise ValueError(f"--dict: {p} holds {sorted(z.files)}, none named 'dictionary'")
    else:
        try:
            D = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ValueError(f"--dict: {p} is not a readable .npy file ({e})") from e
    try:
        return check_dictionary_array(D)
    except ValueError as e:
        raise ValueError(f"--dict {p}: {e}") from e


def _options(args) -> dict:
    """The pursuit's keyword arguments from the options, or a ValueError naming the one missing / not applying."""
    m = args.method
    opts = {}
    if args.k is not None:
        if m not in ("omp", "threshold"):
            raise ValueError(f"--k does not apply to --method {m}")
        if args.k < 1:
            raise ValueError(f"--k must be >= 1, got {args.k}")
        opts["k"] = args.k
    if args.lam is not None:
        if m not in _LAM_METHODS:
            raise ValueError(f"--lam does not apply to --method {m}")
        if not (args.lam >= 0 and math.isfinite(args.lam)):
            raise ValueError(f"--lam must be a finite number >= 0, got {args.lam}")
        opts["lam"] = args.lam
    if args.eps is not None:
        if m != "bp_constrained":
            raise ValueError(f"--eps does not apply to --method {m}")
        if not (args.eps >= 0 and math.isfinite(args.eps)):
            raise ValueError(f"--eps must be a finite number >= 0, got {args.eps}")
        opts["eps"] = args.eps
    if args.tol is not None:
        if m == "threshold":
            raise ValueError("--tol does not apply to --method threshold")
        if not (args.tol >= 0 and math.isfinite(args.tol)):
            raise ValueError(f"--tol must be a finite number >= 0, got {args.tol}")
        opts["tol"] = args.tol
    if args.max_iter is not None:
        if m in ("omp", "threshold"):
            raise ValueError(f"--max-iter does not apply to --method {m}")
        if args.max_iter < 1:
            raise ValueError(f"--max-iter must be >= 1, got {args.max_iter}")
        opts["max_iter"] = args.max_iter
    if m == "omp" and "k" not in opts and "tol" not in opts:
        raise ValueError("--method omp needs --k (atoms per signal) and/or --tol (residual norm)")
    if m == "threshold" and "k" not in opts and "lam" not in opts:
        raise ValueError("--method threshold needs --lam (threshold) or --k (atoms kept)")
    if m in ("lasso", "ista", "fista", "admm") and "lam" not in opts:
        raise ValueError(f"--method {m} needs --lam (the l1 weight, >= 0)")
    if m == "bp_constrained" and "eps" not in opts:
        raise ValueError("--method bp_constrained needs --eps (the residual bound, >= 0)")
    return opts


def _source(args, n):
    if args.chunk_size < 1:
        raise ValueError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    p = Path(args.signals)
    if p.is_dir() or p.suffix.lower() == ".png":
        size = args.patch_size
        if size is None:
            size = math.isqrt(n)
            if size * size != n:
                raise ValueError(f"the dictionary's signal length n = {n} is not a square: give --patch-size")
        if size * size != n:
            raise ValueError(f"--patch-size {size} gives signals of length {size * size}, the dictionary has "
                             f"n = {n}")
        return ImagePatches(p, size, stride=args.stride, chunk_size=args.chunk_size, center=args.center)
    if not p.exists():
        raise FileNotFoundError(f"SIGNALS: {p} does not exist")
    src = NpySignals(p, args.chunk_size)
    if src.n != n:
        raise ValueError(f"SIGNALS {p} has signals of length {src.n}, the dictionary's atoms have length {n}")
    return src


def run_encode(args) -> int:
    """Run ``sparsejax encode``: check everything, then code the signals chunk by chunk into ``--out``.

    Args:
      args: the parsed options of ``add_encode_parser``.

    Returns:
      The exit status (module docstring): 0 written, 2 bad input, 3 written with signals not converged or
      non-finite, 4 a write failed, 130 interrupted.

    Example:
      >>> import argparse
      >>> from sparsejax.cli.encode import add_encode_parser, run_encode
      >>> sub = argparse.ArgumentParser(prog="sparsejax").add_subparsers(dest="command")
      >>> run_encode(add_encode_parser(sub).parse_args(["none.npy", "--dict", "none.npy", "--out", "c.npz"]))
      2
    """
    out = Path(args.out)
    if out.suffix and out.suffix.lower() != ".npz":
        return _error(f"--out must end in .npz (one CSR file) or have no suffix (a folder of parts), got "
                      f"{args.out!r}")
    problem = output_problem(out, (".npz",), "--out") if out.suffix else folder_problem(out, "--out")
    if problem:
        return _error(problem)
    try:
        D = load_dictionary(args.dictionary)
        opts = _options(args)
        src = _source(args, D.shape[0])
        total = src.num_signals
    except (FileNotFoundError, ValueError, OSError) as e:
        return _error(e)
    print(f"encode: {total} signals of length {D.shape[0]}, {D.shape[1]} atoms, method {args.method} "
          f"{opts}, chunks of {args.chunk_size} -> {out}", file=sys.stderr, flush=True)
    try:
        s = encode_to_file(D, src, out, args.method, resume=not args.restart, progress=not args.quiet,
                           total=total, keep_parts=args.keep_parts, **opts)
    except KeyboardInterrupt:
        print("sparsejax encode: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except ValueError as e:
        return _error(e)
    except OSError as e:
        print(f"sparsejax encode: error: {e}; rerun the same command to resume", file=sys.stderr)
        return 4
    print(f"encode: {s.signals} signals, {s.nnz} nonzeros ({s.nnz / max(s.signals, 1):.2f} per signal) in "
          f"{s.chunks} chunks ({s.skipped} resumed, {s.computed} coded now, {s.signals_per_s:,.0f} signals/s) "
          f"-> {s.path}", file=sys.stderr)
    if s.not_converged or s.nonfinite:
        print(f"sparsejax encode: {s.not_converged} signal(s) did not converge and {s.nonfinite} have non-finite "
              f"codes (flagged in 'converged')", file=sys.stderr)
        return 3
    return 0


def main(argv=None) -> int:
    """``python -m sparsejax.cli.encode ...``: the ``encode`` subcommand on its own.

    Example:
      >>> from sparsejax.cli.encode import main
      >>> main(["none.npy", "--dict", "none.npy", "--out", "c.npz"])
      2
    """
    parser = argparse.ArgumentParser(prog="sparsejax")
    sub = parser.add_subparsers(dest="command")
    p = add_encode_parser(sub)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
