"""Convolutional sparse coding pursuits: Fourier-domain ADMM for convolutional BPDN (Wohlberg, "Efficient algorithms
for convolutional sparse representations", IEEE TIP 2016), its masked variant, and convolutional thresholding.

Convolutional BPDN (CBPDN), circular boundary, filters d_{m,c} (M, C, *k), maps x_m (M, *N), signal s (C, *N):

    min_x 1/2 || sum_m d_m * x_m - s ||_2^2 + lam sum_m ||x_m||_1     (prox="nonneg_soft": + indicator(x >= 0))

ADMM with the splitting x = z, scaled dual u and over-relaxation alpha (Wohlberg 2016, sec. III; Boyd et al.
2011, sec. 3.4.3):

    x <- (D^T D + rho I)^{-1} (D^T s + rho (z - u))         solved per frequency in the DFT domain
    v <- alpha x + (1 - alpha) z
    z <- S_{lam/rho}(v + u)                                  (prox="nonneg_soft": S+)
    u <- u + v - z

The x-update is block diagonal in the DFT domain: at frequency f the system is (D_f^H D_f + rho I) with D_f the
C x M matrix of filter DFTs. Single-channel filters (C = 1): Sherman-Morrison,
(a a^H + rho I)^{-1} b = (b - a (a^H b) / (rho + a^H a)) / rho with a = conj(D_f). Multi-channel filters with
shared maps (C > 1): Woodbury, (D^H D + rho I)^{-1} b = (b - D^H (rho I + D D^H)^{-1} D b) / rho, a C x C system
per frequency. We diagonalise D_f D_f^H = V diag(e) V^H once per call (``eigh``), so that the C x C solve for any
rho (which changes under residual balancing) is a diagonal scaling: with E = V^H D_f,
D^H (rho + D D^H)^{-1} D b = E^H diag(1 / (rho + e)) E b. For C = 1 this is exactly Sherman-Morrison. The filter
DFTs are computed once per call from the traced filters (no recompilation when values change). Cost per
iteration: M forward and M inverse real FFTs of size N plus O(M C N) work, i.e. O(M N log N).

A single-channel dictionary (M, 1, *k) applied to a C-channel signal (C, *N), C > 1, codes each channel with its
own maps: codes (C, M, *N) (SPORCO's "single-channel dictionary, multi-channel signal" case); the channels are
coupled only through the shared rho.

Masked CBPDN (``mask`` W >= 0, shape broadcastable to the signal; Wohlberg, "Boundary handling for convolutional
sparse representations", ICIP 2016, the "mask decoupling" splitting of SPORCO's ``ConvBPDNMaskDcpl``):

    min_x 1/2 || W (D x - s) ||^2 + lam ||x||_1,   split  [D; I] x = [y0; y1]
    x  <- (D^T D + I)^{-1} (D^T (y0 - u0) + (y1 - u1))      (rho-free: the same per-frequency solve with rho = 1)
    v0 <- alpha D x + (1 - alpha) y0;   v1 <- alpha x + (1 - alpha) y1
    y0 <- (W^2 s + rho (v0 + u0)) / (W^2 + rho);   y1 <- S_{lam/rho}(v1 + u1)
    u0 <- u0 + v0 - y0;   u1 <- u1 + v1 - y1

With W = 1 the masked problem is CBPDN. Non-periodic (zero) boundaries: pad the signal by the filter size - 1
on each side, mask the padding out (W = 0 there) and solve on the padded, periodic domain (the codes then hold
atoms that hang over the true boundary).

Stopping and residual balancing (Boyd et al. 2011 sec. 3.3; SPORCO's normalised residuals, Wohlberg, "ADMM
penalty parameter selection by residual balancing", arXiv:1704.06209, 2017): with constraint A x - y = 0,

    r = ||A x - y|| / max(||A x||, ||y||),   s = rho ||A^T (y - y_prev)|| / max(rho ||A^T u||, 1e-2 ||D^T s||)

(masked form: A^T u = D^T u0 + u1 tends to 0, so the dual scale is rho max(||D^T u0||, ||u1||))
(``state.primal_res``, ``state.dual_res``; ``Solution.error`` = max(r, s); stop when <= tol).

Residual balancing (``auto_rho``, the rule a ``RhoBalancing``): after iteration k (k > 0, every ``period``
iterations) rho is multiplied by a factor f and the scaled dual u divided by it,

    f = tau'        when r > xi mu s,      f = 1 / tau'    when s > (mu / xi) r,      else 1,

with tau' = min(tau, sqrt(r / (xi s)) or its inverse) (``auto_scaling``) or tau' = tau. The default rule is
SPORCO's ConvBPDN one (period 1, mu = 1.2, tau = 1000, auto-scaling, xi = 1 + 18.3^(log10(lam) + 1) for CBPDN and
xi = 1 for the masked form); ``sparsejax.learn.conv`` codes with SPORCO's dictionary-learning rule (period 10,
mu = 10, tau = 2, no auto-scaling, xi = 1). Default rho = 50 lam / sigma + 1 (SPORCO's 50 lam + 1 for a signal
of peak sigma = max |s| = 1; with lam / sigma in xi too, scaling s and lam together changes no iterate: the
iteration is homogeneous in (s, lam, x, u) for a fixed rho). The relative dual residual is measured against
max(||rho u||, 1e-2 ||D^T s||), since rho u -> 0 when lam = 0. Unlike SPORCO, balancing stops
after ``auto_rho_iter`` iterations (then ADMM converges with a fixed rho; with balancing on for ever both SPORCO and
this code can stall at low accuracy).

References:
  B. Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 25(1), 2016.
  B. Wohlberg, "Boundary handling for convolutional sparse representations", IEEE ICIP 2016.
  S. Boyd et al., "Distributed optimization and statistical learning via ADMM", FnT ML 3(1), 2011.
"""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from sparsejax import _validate as V
from sparsejax._backend import tuned
from sparsejax.cores import cores_mesh
from sparsejax import shrink
from sparsejax.conv.fourier import fsq, irfft, psum, rfft, sq
from sparsejax.conv.operator import Conv
from sparsejax.solve import RhoBalancing, Solution, Solver, Status, check_iteration, iterate, stop_status
from sparsejax.solve import check_balancing as _check_balancing

__all__ = ["cbpdn_admm", "cbpdn_admm_solver", "cbpdn_solver", "cbpdn_objective", "conv_thresholding", "CBPDNState",
           "RhoBalancing"]


# ----------------------------------------------------------------------------------------------------
# Fourier-domain helpers (all arrays carry a leading "independent channel" axis K: K = 1 unless a
# single-channel dictionary codes a multi-channel signal)
# ----------------------------------------------------------------------------------------------------
class _Freq(NamedTuple):
    """Per-frequency factors of the dictionary. Df (M, C, *F); E (C, M, *F) = V^H D_f; e (C, *F) eigenvalues of
    D_f D_f^H (for C = 1: E = D_f, e = ||D_f||^2)."""

    Df: jax.Array
    E: jax.Array
    e: jax.Array


def _freq_factors(filters, N, axis=None) -> _Freq:
    """``axis``: the mesh axis over which the filters are split (sums over maps become ``psum`` s), or None."""
    Df = rfft(filters, N)                                   # (M, C, *F)
    M, C = filters.shape[:2]
    if C == 1:
        E = jnp.swapaxes(Df, 0, 1)                           # (1, M, *F)
        e = psum(jnp.sum(Df.real ** 2 + Df.imag ** 2, axis=0), axis)     # (1, *F)
        return _Freq(Df, E, e)
    F = Df.shape[2:]
    Dm = jnp.moveaxis(Df.reshape(M, C, -1), -1, 0)           # (nf, M, C): D_f^T
    G = psum(jnp.einsum("fmc,fmd->fcd", Dm, jnp.conj(Dm)), axis)         # D_f D_f^H (nf, C, C)
    e, Vv = jnp.linalg.eigh(G)                               # (nf, C), (nf, C, C)
    e = jnp.maximum(e, 0.0)
    E = jnp.einsum("fdc,fmd->fcm", jnp.conj(Vv), Dm)        # V^H D_f (nf, C, M)
    E = jnp.moveaxis(E, 0, -1).reshape((C, M) + F)
    e = jnp.moveaxis(e, 0, -1).reshape((C,) + F)
    return _Freq(Df, E, e)


def _syn_f(fq: _Freq, Xf):
    """D X in the DFT domain: (K, M, *F) -> (K, C, *F)."""
    return jnp.sum(fq.Df[None] * Xf[:, :, None], axis=1)


def _adj_f(fq: _Freq, Sf):
    """D^H S in the DFT domain: (K, C, *F) -> (K, M, *F)."""
    return jnp.sum(jnp.conj(fq.Df)[None] * Sf[:, None], axis=2)


def _solve_f(fq: _Freq, b, rho):
    """(D_f^H D_f + rho I)^{-1} b per frequency, b (K, M, *F) (Sherman-Morrison / Woodbury, see module doc)."""
    t = jnp.sum(fq.E[None] * b[:, None], axis=2)             # E b: (K, C, *F)
    t = t / (rho + fq.e)[None]
    return (b - jnp.sum(jnp.conj(fq.E)[None] * t[:, :, None], axis=1)) / rho


def _default_chunk(M, bytes_per_map, target=None):
    """The largest divisor c of M with c maps of ``bytes_per_map`` bytes within ``target`` (at least 1); ``target``
    default ``tuned("csc_chunk_bytes")`` (sparsejax._backend): 1 MiB on XLA:CPU, no limit (all M maps) on an
    accelerator."""
    target = tuned("csc_chunk_bytes") if target is None else target
    if target is None:
        return M
    best = 1
    for c in range(1, M + 1):
        if M % c == 0 and c * bytes_per_map <= target:
            best = c
    return best


# ----------------------------------------------------------------------------------------------------
# the solver
# ----------------------------------------------------------------------------------------------------
class CBPDNState(NamedTuple):
    """ADMM state of ``cbpdn_admm_solver`` (internal layout: leading axis K of independent channels).

    x: least-squares variable (K, M, *N); z: sparse codes (= y1 for the masked form); u: scaled dual of x = z;
    y0, u0: masked form only, the split D x = y0 and its scaled dual (K, C, *N), else None;
    Zf, Uf: masked form only, rfft of z and u (kept in the DFT domain), else None;
    rho: penalty; k: iterations done; primal_res, dual_res: relative residuals r, s (module doc);
    u_scale: unmasked form only: the scaled dual is ``u * u_scale`` (the residual-balancing rescaling of u is
    applied lazily, inside the next iteration's pass over u, instead of costing a pass of its own); x is None in the
    unmasked form (the least-squares variable is never needed outside one iteration).

    Example:
      >>> import jax
      >>> import sparsejax as sj
      >>> f = sj.normalize_filters(jax.random.normal(jax.random.PRNGKey(0), (2, 1, 3, 3)))
      >>> s = jax.random.normal(jax.random.PRNGKey(1), (1, 8, 8))
      >>> st = sj.cbpdn_admm(f, s, 0.1, max_iter=50).state
      >>> st.z.shape, st.x is None, int(st.k) > 0
      ((1, 2, 8, 8), True, True)
    """

    x: jax.Array
    z: jax.Array
    u: jax.Array
    y0: Optional[jax.Array]
    u0: Optional[jax.Array]
    Zf: Optional[jax.Array]
    Uf: Optional[jax.Array]
    rho: jax.Array
    k: jax.Array
    primal_res: jax.Array
    dual_res: jax.Array
    u_scale: Optional[jax.Array] = None


def cbpdn_objective(filters, s, codes, lam, mask=None, axis=None, mu=None) -> jax.Array:
    """F(x) = 1/2 ||W (sum_m d_m * x_m - s)||^2 + sum(lam |x|), the (masked) CBPDN objective (circular boundary);
    with ``mu`` also the joint term mu sum_{m,n} ||x_{:,m,n}||_2 across the K channels (SPORCO's ConvBPDNJoint).

    Internal layout of the solver (a leading axis K of independent channels, module docstring).

    Args:
      filters: (M, C, *k).
      s: signals (K, C, *N).
      codes: (K, M, *N).
      lam: l1 weight, broadcastable to ``codes``.
      mask: W, broadcastable to ``s``, or None (W = 1).
      axis: the mesh axis over which filters and codes are split (inside ``shard_map``), or None.
      mu: the l2,1 weight of the joint term (a scalar), or None.

    Returns:
      The scalar F.

    Example: zero codes cost half the signal's energy.
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit.csc import cbpdn_objective
      >>> s = jnp.ones((1, 1, 8))
      >>> float(cbpdn_objective(jnp.ones((2, 1, 3)), s, jnp.zeros((1, 2, 8)), 0.1))
      4.0
    """
    N = tuple(s.shape[2:])
    fq = rfft(filters, N)
    r = irfft(psum(jnp.sum(fq[None] * rfft(codes, N)[:, :, None], axis=1), axis), N) - s
    if mask is not None:
        r = mask * r
    penalty = jnp.sum(lam * jnp.abs(codes))
    if mu is not None:
        penalty = penalty + mu * jnp.sum(jnp.sqrt(jnp.sum(codes * codes, axis=0)))
    return 0.5 * sq(r) + psum(penalty, axis)


# The dual residual is relative to max(||rho u||, DUAL_FLOOR ||D^T s||): rho u tends to the l1 subgradient, 0 for
# lam = 0, where a test relative to it alone is never met (and its inverse overflowed: lam = 0 was reported diverged).
DUAL_FLOOR = 1e-2


def _amplitude(s):
    """sigma = max |s| (1 for a zero signal): lam / sigma is the weight of a signal of peak 1, the scale SPORCO's
    default rho and target were tuned on (images in [0, 1])."""
    peak = jnp.max(jnp.abs(s))
    return jnp.where(peak > 0, peak, jnp.ones_like(peak))


def _target(balancing: RhoBalancing, lam, axis, masked, dtype, s=None):
    """xi: the rule's target, or SPORCO's default 1 + 18.3^(log10(max lam / sigma) + 1) for CBPDN (sigma =
    ``_amplitude(s)``, so that xi does not change when s and lam are scaled together), 1 masked."""
    if balancing.target is not None:
        return jnp.asarray(balancing.target, dtype)
    if masked:
        return jnp.asarray(1.0, dtype)
    tiny = jnp.finfo(dtype).tiny
    lam_s = jnp.max(lam) if axis is None else jax.lax.pmax(jnp.max(lam), axis)
    if s is not None:
        lam_s = lam_s / _amplitude(s)
    return jnp.where(lam_s > 0, 1.0 + 18.3 ** (jnp.log10(jnp.maximum(lam_s, tiny)) + 1.0), 1.0).astype(dtype)


def cbpdn_admm_solver(filters, s, lam, rho, alpha, x0, mask=None, *, prox: str = "soft", auto_rho: bool = True,
                      auto_rho_iter=100, rho_balancing: RhoBalancing = RhoBalancing(), chunk: Optional[int] = None,
                      axis=None, state: Optional[CBPDNState] = None, mu=None) -> Solver:
    """The ``Solver`` pair of Fourier-domain ADMM for (masked) CBPDN (module docstring); its codes are z.

    Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 2016, sec. III (the
    per-frequency solve); Wohlberg, "Boundary handling for convolutional sparse representations", ICIP 2016 (mask).
    Run it with ``sparsejax.solve.iterate``; ``cbpdn_admm`` checks the arguments and does.

    Args:
      filters: (M, C, *k).
      s: signals in the internal layout (K, C, *N).
      lam: l1 weight with the dimensions of the codes (K, M, *N), broadcastable to them (traced): (1, 1, 1, 1) for
        one weight of 2-D codes, (1, M, 1, 1) per map.
      rho: initial penalty (traced).
      alpha: over-relaxation (traced).
      x0: initial codes (K, M, *N); the dual starts at lam / rho sign(x0).
      mask: W (K, C, *N) or None (traced).
      prox: "soft" or "nonneg_soft" (codes >= 0), one of ``sparsejax.shrink.SIGN_PROXES``.
      auto_rho: residual balancing of rho.
      auto_rho_iter: balance during the first ``auto_rho_iter`` iterations only (traced int); None: always.
      rho_balancing: the balancing rule, a ``RhoBalancing`` (static).
      chunk: (static) maps per chunk of the unmasked iteration (None: about 1 MiB of one image's maps).
      axis: unmasked form only: the mesh axis over which the filters, codes and duals are split when the solver
        runs inside ``shard_map`` (sums over maps become ``psum`` s), or None.
      state: a ``CBPDNState`` of an earlier run to continue from (codes, duals, rho and iteration count), instead
        of the start from ``x0`` and ``rho`` (the warm start of an alternating method such as dictionary learning).
      mu: the weight of the joint l2,1 term mu sum_{m,n} ||z_{:,m,n}||_2 across the K channels (a traced scalar;
        SPORCO's ConvBPDNJoint), or None: the z-update is then ``sparsejax.shrink.joint_soft`` along axis 0.

    Returns:
      ``Solver(init, step, codes, error, objective)``: error = max(r, s), objective ``cbpdn_objective``.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.pursuit.csc import cbpdn_admm_solver
      >>> f = sj.normalize_filters(jax.random.normal(jax.random.PRNGKey(0), (2, 1, 3, 3)))
      >>> s = jax.random.normal(jax.random.PRNGKey(1), (1, 1, 8, 8))
      >>> lam = jnp.full((1, 1, 1, 1), 0.1)
      >>> solver = cbpdn_admm_solver(f, s, lam, jnp.asarray(6.0), 1.8, jnp.zeros((1, 2, 8, 8)))
      >>> sol = sj.iterate(solver, max_iter=300, tol=1e-4)
      >>> bool(sol.converged), sol.codes.shape
      (True, (1, 2, 8, 8))
    """
    prox_fn = shrink.get(prox, allowed=shrink.SIGN_PROXES)   # the z-update is the prox of a convex penalty
    balancing = _check_balancing(rho_balancing)
    N = tuple(s.shape[2:])
    dtype = s.dtype
    tiny = jnp.finfo(dtype).tiny
    fq = _freq_factors(filters, N, axis)
    Sf = rfft(s, N)
    inf = jnp.asarray(jnp.inf, dtype)
    xi = _target(balancing, lam, axis, mask is not None, dtype, s)
    one = jnp.asarray(1.0, dtype)
    objective = lambda st: cbpdn_objective(filters, s, st.z, lam, mask, axis, mu)  # noqa: E731

    def shrink_z(v, lam_, rho):
        """The z-update: the prox of (lam |.| (+ indicator(z >= 0)) + mu ||.||_2 over the channel axis) / rho."""
        z = prox_fn(v, lam_ / rho)
        return z if mu is None else shrink.group_soft(z, mu / rho, axis=0)

    def balance(rho, r, sd, k):
        if not auto_rho:
            return jnp.ones_like(rho)
        return balancing.factor(rho, r, sd, k, xi, auto_rho_iter)

    if mask is None:
        DHs = _adj_f(fq, Sf)                                  # D^H s, once per call (K, M, *F)
        dual_floor = DUAL_FLOOR * jnp.sqrt(psum(fsq(DHs, N), axis))   # DUAL_FLOOR ||D^T s||
        K, M = x0.shape[:2]
        c = _default_chunk(M, K * math.prod(N) * jnp.dtype(dtype).itemsize) if chunk is None else chunk
        if M % c:
            raise ValueError(f"chunk must divide the number of filters M = {M}, got {c}")
        n = M // c
        sl = lambda a, j, ax=1: jax.lax.dynamic_slice_in_dim(a, j * c, c, axis=ax)  # noqa: E731
        put = lambda a, v, j: jax.lax.dynamic_update_slice_in_dim(a, v, j * c, axis=1)  # noqa: E731
        lam_c = (lambda j: sl(lam, j)) if lam.shape[1] == M and M > 1 else (lambda j: lam)

        def step(st):
            # The iteration streams over chunks of c maps (c maps of one image fit in cache: the FFTs of a chunk
            # cost ~1.5x less than one FFT over all M maps). Pass 1: B = D^H s + rho F(z - u), and the
            # Sherman-Morrison / Woodbury projection t = E B (a sum over all maps, so the whole B is kept).
            # Pass 2: x = F^-1((B - E^H t / (rho + e)) / rho), relaxation, shrinkage, dual update and the five
            # residual sums, chunk by chunk, writing z and u in place.
            rho, us = st.rho, st.u_scale
            Kc = (DHs.shape[0],) + fq.e.shape

            def pass1(j, carry):
                B, t = carry
                Bj = sl(DHs, j) + rho * rfft(sl(st.z, j) - us * sl(st.u, j), N)
                t = t + jnp.sum(sl(fq.E, j)[None] * Bj[:, None], axis=2)
                return put(B, Bj, j), t

            B, t = jax.lax.fori_loop(0, n, pass1, (jnp.zeros_like(DHs), jnp.zeros(Kc, DHs.dtype)))
            t = psum(t, axis) / (rho + fq.e)[None]

            def pass2(j, carry):
                z, u, sums = carry
                Xf = (sl(B, j) - jnp.sum(jnp.conj(sl(fq.E, j))[None] * t[:, :, None], axis=1)) / rho
                x = irfft(Xf, N)
                zo, uo = sl(z, j), us * sl(u, j)
                v = alpha * x + (1.0 - alpha) * zo
                zn = shrink_z(v + uo, lam_c(j), rho)
                un = uo + v - zn
                sums = sums + jnp.stack([sq(x - zn), sq(x), sq(zn), sq(zn - zo), sq(un)])
                return put(z, zn, j), put(u, un, j), sums

            z, u, sums = jax.lax.fori_loop(0, n, pass2, (st.z, st.u, jnp.zeros(5, dtype)))
            sums = psum(sums, axis)
            r = jnp.sqrt(sums[0]) / jnp.maximum(jnp.sqrt(jnp.maximum(sums[1], sums[2])), tiny)
            sd = jnp.sqrt(sums[3]) / jnp.maximum(jnp.sqrt(sums[4]), jnp.maximum(dual_floor / rho, tiny))
            f = balance(rho, r, sd, st.k)
            return CBPDNState(None, z, u, None, None, None, None, rho * f, st.k + 1, r, sd, 1.0 / f)

        def init():
            u = jnp.broadcast_to((lam / rho) * jnp.sign(x0), x0.shape)
            return CBPDNState(None, x0, u, None, None, None, None, rho, jnp.asarray(0, jnp.int32), inf, inf, one)

    else:
        W2 = mask * mask
        W2s = W2 * s
        dual_floor = DUAL_FLOOR * jnp.sqrt(fsq(_adj_f(fq, rfft(W2s, N)), N))   # DUAL_FLOOR ||D^T W^2 s||

        def step(st):
            rho = st.rho
            b = _adj_f(fq, rfft(st.y0 - st.u0, N)) + (st.Zf - st.Uf)
            Xf = _solve_f(fq, b, one)
            x = irfft(Xf, N)
            Dx = irfft(_syn_f(fq, Xf), N)
            v0 = alpha * Dx + (1.0 - alpha) * st.y0
            v1 = alpha * x + (1.0 - alpha) * st.z
            y0 = (W2s + rho * (v0 + st.u0)) / (W2 + rho)
            z = shrink_z(v1 + st.u, lam, rho)
            u0 = st.u0 + v0 - y0
            u = st.u + v1 - z
            Zf = rfft(z, N)
            Uf = st.Uf + alpha * Xf + (1.0 - alpha) * st.Zf - Zf
            Ax = jnp.sqrt(sq(Dx) + sq(x))
            y = jnp.sqrt(sq(y0) + sq(z))
            r = jnp.sqrt(sq(Dx - y0) + sq(x - z)) / jnp.maximum(jnp.maximum(Ax, y), tiny)
            dy = _adj_f(fq, rfft(y0 - st.y0, N)) + (Zf - st.Zf)        # A^T (y - y_prev)
            # A^T u = D^T u0 + u1 vanishes at the optimum (x has no cost): scale by its parts instead
            un = jnp.sqrt(jnp.maximum(fsq(_adj_f(fq, rfft(u0, N)), N), sq(u)))
            sd = jnp.sqrt(fsq(dy, N)) / jnp.maximum(un, jnp.maximum(dual_floor / rho, tiny))
            f = balance(rho, r, sd, st.k)
            return CBPDNState(x, z, u / f, y0, u0 / f, Zf, Uf / f, rho * f, st.k + 1, r, sd)

        def init():
            X0f = rfft(x0, N)
            y0 = irfft(_syn_f(fq, X0f), N)
            u0 = W2 * (y0 - s) / rho
            u = (lam / rho) * jnp.sign(x0)
            return CBPDNState(x0, x0, u, y0, u0, X0f, rfft(u, N), rho, jnp.asarray(0, jnp.int32), inf, inf)

    return Solver(init=init if state is None else (lambda: state), step=step, codes=lambda st: st.z,
                  error=lambda old, new: jnp.maximum(new.primal_res, new.dual_res), objective=objective)


cbpdn_solver = cbpdn_admm_solver  # deprecated alias (the solver factories are named <problem>_<algorithm>_solver)


def _cbpdn_run(filters, s, lam, rho, alpha, x0, mask, tol, auto_rho_iter, *, max_iter, mode, prox, auto_rho,
               rho_balancing, history, chunk, axis=None, mu=None):
    dtype = s.dtype
    solver = cbpdn_admm_solver(filters, s, lam, rho, alpha, x0, mask, prox=prox, auto_rho=auto_rho,
                               auto_rho_iter=auto_rho_iter, rho_balancing=rho_balancing, chunk=chunk, axis=axis,
                               mu=mu)
    sol = iterate(solver, max_iter=max_iter, tol=jnp.asarray(tol, dtype), mode=mode, history=history)
    if axis is not None:   # the finiteness tests saw this device's maps only: combine
        div = jax.lax.pmax(sol.diverged.astype(jnp.int32), axis) > 0
        bad = jax.lax.pmax((sol.status == Status.NONFINITE_INPUT).astype(jnp.int32), axis) > 0
        converged = sol.converged & ~div
        sol = sol._replace(diverged=div, converged=converged, status=stop_status(converged, div, bad))
    return sol


@partial(jax.jit, static_argnames=("max_iter", "mode", "prox", "auto_rho", "rho_balancing", "history", "squeeze",
                                   "chunk", "mesh"))
def _cbpdn(filters, s, lam, rho, alpha, x0, mask, tol, auto_rho_iter, mu=None, *, max_iter, mode, prox, auto_rho,
           rho_balancing, history, squeeze, chunk, mesh=None):
    dtype = s.dtype
    if rho is None:
        weight = jnp.max(lam) if mu is None else jnp.max(lam) + mu
        rho = 50.0 * weight / _amplitude(s) + 1.0
    rho = jnp.asarray(rho, dtype)
    kw = dict(max_iter=max_iter, mode=mode, prox=prox, auto_rho=auto_rho, rho_balancing=rho_balancing,
              history=history, chunk=chunk)
    if mu is not None:
        kw["mu"] = mu
    if mesh is None:
        sol = _cbpdn_run(filters, s, lam, rho, alpha, x0, mask, tol, auto_rho_iter, **kw)
    else:
        ax = mesh.axis_names[0]
        maps = P(None, ax)
        state = CBPDNState(None, maps, maps, None, None, None, None, P(), P(), P(), P(), P())
        out_specs = Solution(maps, P(), P(), P(), P(), P(), state, P() if history else None, P())
        in_specs = (P(ax), P(), maps if lam.shape[1] > 1 else P(), P(), P(), maps, P(), P())
        run = partial(_cbpdn_run, mask=None, axis=ax, **kw)
        body = lambda f, s_, l_, r_, a_, x_, t_, k_: run(f, s_, l_, r_, a_, x_, tol=t_, auto_rho_iter=k_)  # noqa: E731
        sol = jax.shard_map(body, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)(
            filters, s, lam, rho, alpha, x0, tol, auto_rho_iter)
    if squeeze:
        sol = sol._replace(codes=sol.codes[0])
    return sol


# ----------------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------------
def _prepare(D, s, name_s="s"):
    """(filters, s in layout (K, C, *N), K, squeeze, dtype). Raises before tracing."""
    if isinstance(D, Conv):
        if D.boundary != "circular" or D.stride != 1:
            raise ValueError(
                f"D must be a Conv with boundary='circular' and stride=1 for the Fourier-domain solver, got "
                f"boundary={D.boundary!r}, stride={D.stride}; for zero boundaries pad the signal by the filter "
                "size - 1 and mask the padding out (mask=...)")
        filters = D.filters
        sig = tuple(D.signal_shape)
    else:
        if not hasattr(D, "shape") and not isinstance(D, (list, tuple)):
            raise TypeError(f"D must be a sparsejax.Conv or an (M, C, h[, w]) filter array, got {type(D).__name__}")
        filters = V.as_float_array("D", D)
        V.check_ndim("D", filters, (3, 4), "filters (M, C, h) or (M, C, h, w)")
        sig = None
    s = V.as_float_array(name_s, s)
    d = filters.ndim - 2
    M, C = filters.shape[:2]
    if s.ndim != d + 1:
        raise ValueError(f"{name_s} must have shape (C, *spatial) with {d} spatial dimension(s) to match filters "
                         f"of shape {tuple(filters.shape)}, got {tuple(s.shape)}")
    if sig is not None and tuple(s.shape[1:]) != sig[1:]:
        raise ValueError(f"{name_s} must have the spatial shape {sig[1:]} of D.signal_shape {sig}, "
                         f"got {tuple(s.shape)}")
    Cs = s.shape[0]
    if Cs != C and C != 1:
        raise ValueError(f"{name_s} has {Cs} channel(s) but the filters have {C} (filters shape "
                         f"{tuple(filters.shape)}); a multi-channel signal needs filters with as many channels "
                         "or single-channel filters (then each channel gets its own maps)")
    N = tuple(s.shape[1:])
    for a, (n, kk) in enumerate(zip(N, filters.shape[2:])):
        if kk > n:
            raise ValueError(f"filter size {kk} exceeds the signal size {n} on spatial axis {a}")
    V.check_finite(name_s, s)
    V.check_finite("D", filters)
    dtype = jnp.result_type(filters.dtype, s.dtype)
    if C == 1 and Cs > 1:
        K, sK = Cs, s[:, None]
    else:
        K, sK = 1, s[None]
    return filters.astype(dtype), sK.astype(dtype), K, K == 1, dtype


def _prepare_lam(lam, code_shape, dtype, squeeze, name="lam"):
    """lam in the internal layout (K, M, *N), keeping its broadcast (size-1) axes: a scalar or per-map lam
    is never expanded to a full code-sized array (which would cost a full read per iteration)."""
    lam = V.as_float_array(name, lam)
    V.broadcastable(name, lam, code_shape)
    V.check_nonnegative(name, lam)
    lam = lam.astype(dtype).reshape((1,) * (len(code_shape) - lam.ndim) + tuple(lam.shape))
    return lam[None] if squeeze else lam


def _check_alpha(alpha) -> jax.Array:
    alpha = V.check_scalar("alpha", alpha)
    if V.is_concrete(alpha) and not (0.0 < float(alpha) < 2.0):
        raise ValueError(f"alpha (over-relaxation) must lie in (0, 2), got {float(alpha)}")
    return alpha


def _prepare_x0(x0, code_shape, K, M, N, dtype):
    if x0 is None:
        return jnp.zeros((K, M) + N, dtype)
    x0 = V.as_float_array("x0", x0)
    V.check_shape("x0", x0, code_shape, "the code shape")
    return x0.astype(dtype).reshape((K, M) + N)


def _prepare_mask(mask, s, sK, dtype):
    if mask is None:
        return None
    mask = V.as_float_array("mask", mask)
    try:
        np.broadcast_shapes(tuple(mask.shape), tuple(s.shape))
    except ValueError:
        raise ValueError(f"mask of shape {tuple(mask.shape)} must broadcast against the signal s of shape "
                         f"{tuple(jnp.shape(s))}") from None
    V.check_nonnegative("mask", mask)
    return jnp.broadcast_to(mask.astype(dtype), tuple(jnp.shape(s))).reshape(sK.shape)


def _check_chunk(chunk, M, mesh, masked):
    """``chunk`` a positive divisor of the maps per device; ``mesh`` a 1-D mesh whose devices divide M."""
    per_device = M
    if mesh is not None:
        if masked:
            raise ValueError("mesh (filters split over devices) supports the unmasked form only; got a mask")
        per_device = M // V.check_mesh(mesh, M, "the number of filters M")
    if chunk is None:
        return None
    chunk = V.check_positive_int("chunk", chunk)
    if per_device % chunk:
        what = "the number of filters M" if mesh is None else "the filters per device M / devices"
        raise ValueError(f"chunk must be a positive divisor of {what} = {per_device}, got {chunk!r}")
    return chunk


def cbpdn_admm(D, s, lam, *, rho=None, alpha=1.8, auto_rho: bool = True, auto_rho_iter: int = 100,
               rho_balancing: RhoBalancing = RhoBalancing(), max_iter: int = 500, tol=1e-4, mode: str = "while",
               prox: str = "soft", x0=None, mask=None, history: bool = False, chunk: Optional[int] = None,
               mesh=None, mu=None) -> Solution:
    """Fourier-domain ADMM for convolutional BPDN (one signal; batch with ``jax.vmap``).

        min_x 1/2 || W (sum_m d_m * x_m - s) ||_2^2 + lam sum_m ||x_m||_1     (circular boundary, W = 1 by default)
              (+ mu sum_{m,n} ||x_{:,m,n}||_2 with ``mu``: the joint form, ``sparsejax.pursuit.joint``)

    Algorithm, per-frequency solves, residuals and rho balancing: module docstring. Wohlberg, "Efficient
    algorithms for convolutional sparse representations", IEEE TIP 2016; Wohlberg, "Boundary handling for
    convolutional sparse representations", ICIP 2016 (mask); Boyd et al., "Distributed optimization and statistical
    learning via the alternating direction method of multipliers", FnT ML 2011.

    Args:
      D: a ``Conv`` with boundary "circular" and stride 1, or a filter array (M, C, h[, w]).
      s: signal (C, *N) (C = D's channels; or any C with single-channel filters: each channel coded separately).
      lam: l1 weight >= 0 (traced): scalar or broadcastable to the codes (per-map / per-coefficient weights).
      rho: initial ADMM penalty > 0 (traced); default 50 max(lam) / max|s| + 1 (the same iterates for s and lam
        scaled together).
      alpha: over-relaxation parameter in (0, 2) (traced); 1 is plain ADMM.
      auto_rho: residual balancing of rho.
      auto_rho_iter: rho is balanced during the first ``auto_rho_iter`` iterations only (traced int), then frozen:
        balancing on every iteration for ever can keep ADMM from converging at high accuracy (the changes must
        stop or become summable; SPORCO's unbounded rule makes the residuals grow again once they reach
        ~1e-5 on some small problems, and stalls there).
      rho_balancing: the balancing rule, a ``RhoBalancing`` (default: SPORCO's ConvBPDN rule).
      max_iter: static iteration bound.
      tol: stop when max(relative primal, relative dual residual) <= tol.
      mode: one of ``sparsejax.solve.MODES``: "while" (early stop), "scan" (exactly ``max_iter`` steps,
        reverse-differentiable), ... (passed to ``sparsejax.solve.iterate``).
      prox: "soft" (signed codes) or "nonneg_soft" (codes x >= 0: projection in the z-update), one of
        ``sparsejax.shrink.SIGN_PROXES``.
      x0: warm start for the codes (default zeros); the dual starts at lam / rho sign(x0).
      mask: W >= 0 broadcastable to ``s`` (masked / inpainting / boundary-handling variant; module doc).
      history: record the objective after every step (``mode="scan"``).
      chunk: the unmasked iteration streams over chunks of ``chunk`` maps (a divisor of M; static). Default: the
        largest divisor of M whose maps of one image fit in about 1 MiB (4 maps of 256 x 256 in float32), which
        keeps each chunk's FFTs in cache (~1.5x cheaper than one FFT over all maps on a CPU). Under ``jax.vmap``
        over images pass ``chunk=M`` (one chunk): a chunk of maps is then a strided slice of the batched arrays,
        and on 16 images of 128 x 128 one chunk was 1.45x faster than chunks of 2.
      mesh: a 1-D ``jax.sharding.Mesh`` (e.g. ``sparsejax.distributed.batch_mesh()``): the M filters, codes and duals
        are split over its devices (``shard_map``; the sums over maps of the per-frequency solve, the residuals and
        the objective become ``psum`` s), so one large problem uses every device; M must be a multiple of the number
        of devices. Unmasked form only. On a CPU, host devices come from ``sparsejax.use_cpu_cores()`` (or
        ``XLA_FLAGS=--xla_force_host_platform_device_count=N``; XLA runs each FFT on one thread, so this is how
        one image's FFTs use several cores). Default: after ``use_cpu_cores()``, a mesh over the cores when M is a
        multiple of them and the call is not traced (not inside the caller's ``jit`` / ``vmap``); else none.
      mu: the weight >= 0 (a traced scalar) of the joint l2,1 term across the channels of a C-channel signal coded
        with single-channel filters (codes (C, M, *N)): mu sum_{m,n} ||x_{:,m,n}||_2, SPORCO's ConvBPDNJoint
        (``sparsejax.pursuit.joint.conv_bpdn_joint``); None (default): plain CBPDN. The default rho then uses
        max(lam) + mu in place of max(lam). Not with ``mesh``.

    Returns:
      ``Solution``: codes z (M, *N) (or (C, M, *N) for single-channel filters and a C-channel signal), exactly
      sparse; objective F(z); error = max(r, s); ``state`` a ``CBPDNState`` (internal layout with a leading
      channel axis) holding ``rho``, ``primal_res``, ``dual_res``.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> f = sj.normalize_filters(jax.random.normal(jax.random.PRNGKey(0), (4, 1, 3, 3)))
      >>> s = jax.random.normal(jax.random.PRNGKey(1), (1, 16, 16))
      >>> sol = sj.cbpdn_admm(f, s, 0.1, max_iter=300)
      >>> sol.codes.shape, bool(sol.converged), sj.solve.status_name(sol.status)
      ((4, 16, 16), True, 'converged')
      >>> pos = sj.cbpdn_admm(f, s, 0.1, max_iter=300, prox="nonneg_soft")
      >>> bool(jnp.all(pos.codes >= 0))
      True
      >>> batch = jax.vmap(lambda y: sj.cbpdn_admm(f, y, 0.1, chunk=4).codes)(jnp.stack([s, -s]))
      >>> batch.shape
      (2, 4, 16, 16)
    """
    filters, sK, K, squeeze, dtype = _prepare(D, s)
    M = filters.shape[0]
    N = tuple(sK.shape[2:])
    code_shape = (M,) + N if squeeze else (K, M) + N
    check_iteration(max_iter, tol, mode)
    shrink.get(prox, allowed=shrink.SIGN_PROXES)
    rho_balancing = _check_balancing(rho_balancing)
    lam = V.nan_if_negative(_prepare_lam(lam, code_shape, dtype, squeeze))   # traced lam < 0: an invalid problem
    if rho is not None:
        rho = V.check_nonnegative_scalar("rho", rho, strict=True)
    alpha = _check_alpha(alpha)
    x0 = _prepare_x0(x0, code_shape, K, M, N, dtype)
    mask = _prepare_mask(mask, s, sK, dtype)
    if mesh is None and mask is None and mu is None:
        mesh = cores_mesh(M, (filters, sK, x0, lam))      # after sparsejax.use_cpu_cores(): filters over the cores
    chunk = _check_chunk(chunk, M, mesh, mask is not None)
    auto_rho_iter = V.check_int("auto_rho_iter", auto_rho_iter)
    if mu is not None:
        if mesh is not None:
            raise ValueError("mu (the joint form) does not support mesh; got both")
        mu = V.nan_if_negative(V.check_nonnegative_scalar("mu", mu).astype(dtype))
    return _cbpdn(filters, sK, lam, rho, alpha.astype(dtype), x0, mask, jnp.asarray(tol, dtype),
                  jnp.asarray(auto_rho_iter, jnp.int32), mu,
                  max_iter=max_iter, mode=mode, prox=prox, auto_rho=bool(auto_rho), rho_balancing=rho_balancing,
                  history=bool(history), squeeze=squeeze, chunk=chunk, mesh=mesh)


# ----------------------------------------------------------------------------------------------------
# convolutional thresholding
# ----------------------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("prox", "squeeze"))
def _conv_thr(filters, s, lam, *, prox, squeeze):
    N = tuple(s.shape[2:])
    Df = rfft(filters, N)
    c = irfft(jnp.sum(jnp.conj(Df)[None] * rfft(s, N)[:, None], axis=2), N)   # D^T s (K, M, *N)
    a = shrink.get(prox)(c, lam)
    r = irfft(jnp.sum(Df[None] * rfft(a, N)[:, :, None], axis=1), N) - s
    rr = sq(r)
    finite = jnp.all(jnp.isfinite(a))
    codes = a[0] if squeeze else a
    return Solution(codes=codes, num_steps=jnp.asarray(1, jnp.int32), converged=finite, diverged=~finite,
                    objective=0.5 * rr, error=jnp.sqrt(rr), status=stop_status(finite, ~finite))


def conv_thresholding(D, s, lam, prox: str = "soft") -> Solution:
    """Convolutional thresholding pursuit x = P_lam(D^T s), D^T s the correlation of s with each filter.

    The one-step pursuit of the convolutional model (Papyan, Sulam & Elad, "Working locally thinking globally:
    theoretical guarantees for convolutional sparse coding", IEEE TSP 2017, and the layered thresholding of
    Papyan, Romano & Elad, "Convolutional neural networks analyzed via convolutional sparse coding", JMLR 2017).

    Args:
      D: a ``Conv`` (circular, stride 1) or a filter array (M, C, h[, w]).
      s: signal (C, *N) (single-channel filters and a C-channel signal: each channel separately).
      lam: threshold >= 0, scalar or broadcastable to the codes (traced).
      prox: "soft" (sign(z) max(|z| - lam, 0)), "hard" (z 1{|z| > lam}), "nonneg_soft" (max(z - lam, 0)) or a
        callable (z, threshold) -> z (``sparsejax.shrink.get``).

    Returns:
      ``Solution``: codes (M, *N) (or (C, M, *N)); objective = 1/2||s - D x||^2; error = ||s - D x||; one step.
      Under ``jit`` a non-finite signal, filter or ``lam``, or a negative ``lam``, gives status ``NONFINITE_INPUT``;
      codes or a residual that overflow give ``DIVERGED``; ``converged`` only otherwise.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> f = sj.normalize_filters(jax.random.normal(jax.random.PRNGKey(0), (4, 1, 3, 3)))
      >>> s = jax.random.normal(jax.random.PRNGKey(1), (1, 16, 16))
      >>> sol = sj.conv_thresholding(f, s, 1.0, prox="hard")
      >>> D = sj.Conv(f, (1, 16, 16))
      >>> bool(jnp.allclose(sol.codes, sj.shrink.hard(D.adjoint(s), 1.0), atol=1e-5)), int(sol.num_steps)
      (True, 1)
    """
    shrink.get(prox)
    filters, sK, K, squeeze, dtype = _prepare(D, s)
    M = filters.shape[0]
    N = tuple(sK.shape[2:])
    code_shape = (M,) + N if squeeze else (K, M) + N
    lam = V.nan_if_negative(_prepare_lam(lam, code_shape, dtype, squeeze))   # traced lam < 0: an invalid problem
    sol = _conv_thr(filters, sK, lam, prox=prox, squeeze=squeeze)
    inputs_ok = V.all_finite(filters, sK, lam)
    output_ok = jnp.all(jnp.isfinite(sol.codes)) & jnp.isfinite(sol.objective)
    converged = output_ok & inputs_ok
    return sol._replace(converged=converged, diverged=~output_ok,
                        status=stop_status(converged, ~output_ok, ~inputs_ok))
