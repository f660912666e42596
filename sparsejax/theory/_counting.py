"""Turning a theorem's bound on the sparsity (k < t) into the largest admissible integer k."""
from __future__ import annotations

import math

__all__ = ["largest_k_below"]


def largest_k_below(t) -> int:
    """Largest integer k >= 0 with k < t."""
    t = float(t)
    if not math.isfinite(t):
        raise ValueError(f"threshold must be finite, got {t}")
    return max(int(math.ceil(t)) - 1, 0)
