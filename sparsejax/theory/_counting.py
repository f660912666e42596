"""Turning a theorem's bound on the sparsity (k < t) into the largest admissible integer k."""
from __future__ import annotations

import math

__all__ = ["largest_k_below"]


def largest_k_below(t) -> int:
    """Largest integer k >= 0 with k < t: a theorem that holds for k < t (e.g. k < (1 + 1/mu)/2) admits k up to it.

    Example:
      >>> from sparsejax.theory._counting import largest_k_below
      >>> largest_k_below(4.5), largest_k_below(4.0), largest_k_below(0.3)
      (4, 3, 0)
    """
    t = float(t)
    if not math.isfinite(t):
        raise ValueError(f"threshold must be finite, got {t}")
    return max(int(math.ceil(t)) - 1, 0)
