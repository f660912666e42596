"""The ``sparsejax`` console script.

    sparsejax info                       versions, devices, default dtype
    sparsejax reproduce --list           the registered experiments
    sparsejax reproduce [NAMES...] [--quick] [--out DIR] [--seed N]
                                         run experiments (all by default), write DIR/report.html and
                                         DIR/<name>.json

Exit status of ``reproduce``: 0 all ran and passed, 1 an experiment raised, 2 bad arguments (unknown name),
3 all ran but some check did not pass.
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

__all__ = ["main"]


def _version(mod: str) -> str:
    try:
        m = __import__(mod)
        return getattr(m, "__version__", "?")
    except Exception:
        return "not installed"


def cmd_info(args) -> int:
    import jax
    import jax.numpy as jnp

    for mod in ("sparsejax", "jax", "jaxlib", "optax", "flax", "numpy"):
        print(f"{mod:10s} {_version(mod)}")
    print(f"{'backend':10s} {jax.default_backend()}")
    print(f"{'devices':10s} {', '.join(str(d) for d in jax.devices())}")
    print(f"{'dtype':10s} {jnp.zeros(()).dtype} (x64 {'on' if jax.config.jax_enable_x64 else 'off'})")
    return 0


def cmd_reproduce(args) -> int:
    from tqdm import tqdm

    from sparsejax.experiments_registry import EXPERIMENTS, load_experiment

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
    from sparsejax.report import write_report

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    bar = tqdm(names, desc="reproduce", unit="exp", file=sys.stderr)
    for name in bar:
        bar.set_postfix_str(name)
        t0 = time.time()
        try:
            res = load_experiment(name).run(quick=args.quick, out_dir=out, seed=args.seed)
            res.setdefault("name", name)
        except Exception as e:  # report, keep going, exit non-zero at the end
            res = {"name": name, "title": name, "description": "", "measured": {}, "predicted": {},
                   "figures": [], "passed": False, "seconds": round(time.time() - t0, 2),
                   "error": "".join(traceback.format_exception(type(e), e, e.__traceback__))}
        results.append(res)
        status = "ERROR" if res.get("error") else ("pass" if res.get("passed") else "FAIL")
        tqdm.write(f"{name}: {status} ({res.get('seconds', '?')} s)", file=sys.stderr)
    path = write_report(results, out)
    print(f"report: {path}")
    if any(r.get("error") for r in results):
        for r in results:
            if r.get("error"):
                print(f"--- {r['name']} failed to run:\n{r['error']}", file=sys.stderr)
        return 1
    return 0 if all(r.get("passed") for r in results) else 3


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sparsejax", description="Sparse modeling in JAX: tools and reproductions.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="versions, devices and default dtype")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("reproduce", help="run registered experiments and write an HTML/JSON report")
    p.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (default: all)")
    p.add_argument("--quick", action="store_true", help="small presets (seconds each)")
    p.add_argument("--out", default="results", help="output directory (default: results/)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--list", action="store_true", help="list the registered experiments and exit")
    p.set_defaults(func=cmd_reproduce)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
