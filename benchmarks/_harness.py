"""Timing and reporting helpers shared by the benchmarks: best-of-N wall time, a table, JSON lines."""
from __future__ import annotations

import json
import os
import platform
import time
from typing import Callable, List

import jax
import numpy as np


def block(x):
    """Wait for JAX results (any pytree); NumPy passes through."""
    return jax.block_until_ready(x)


def best_time(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> tuple[float, object]:
    """Best wall-clock time of ``fn()`` over ``repeat`` runs after ``warmup`` runs (compilation excluded)."""
    out = None
    for _ in range(warmup):
        out = block(fn())
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = block(fn())
        best = min(best, time.perf_counter() - t0)
    return best, out


class Table:
    """Collects measurements; prints a table and one JSON line per row."""

    def __init__(self, title: str):
        self.title = title
        self.rows: List[dict] = []

    def add(self, problem: str, library: str, seconds: float, quality: dict, n_signals: int | None = None,
            reference_seconds: float | None = None, **extra):
        row = {"problem": problem, "library": library, "seconds": float(seconds), "quality": quality}
        if n_signals:
            row["signals_per_s"] = n_signals / seconds
        if reference_seconds is not None:
            row["ratio_vs_reference"] = reference_seconds / seconds  # > 1 means we are faster
        row.update(extra)
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        return row

    def print(self):
        print(f"\n== {self.title} ==  ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)")
        hdr = f"{'problem':38s} {'library':28s} {'seconds':>9s} {'signals/s':>11s} {'speed-up':>9s}  quality"
        print(hdr)
        print("-" * len(hdr))
        for r in self.rows:
            sps = f"{r['signals_per_s']:11.0f}" if "signals_per_s" in r else " " * 11
            ratio = f"{r['ratio_vs_reference']:8.2f}x" if "ratio_vs_reference" in r else " " * 9
            q = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["quality"].items())
            print(f"{r['problem']:38s} {r['library']:28s} {r['seconds']:9.4f} {sps} {ratio}  {q}")
