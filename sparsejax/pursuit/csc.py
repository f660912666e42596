"""Convolutional sparse coding pursuits (REFERENCE A1, A4): Fourier-domain ADMM for convolutional BPDN,
its masked variant, and convolutional thresholding.

Convolutional BPDN (CBPDN), circular boundary, filters d_{m,c} (M, C, *k), maps x_m (M, *N), signal s (C, *N):

    min_x 1/2 || sum_m d_m * x_m - s ||_2^2 + lam sum_m ||x_m||_1            (nonneg: + indicator(x >= 0))

ADMM with the splitting x = z, scaled dual u and over-relaxation alpha (Wohlberg 2016, sec. III; Boyd et al.
2011, sec. 3.4.3):

    x <- (D^T D + rho I)^{-1} (D^T s + rho (z - u))         solved per frequency in the DFT domain
    v <- alpha x + (1 - alpha) z
    z <- S_{lam/rho}(v + u)                                  (nonneg: S+)
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

    r = ||A x - y|| / max(||A x||, ||y||),   s = rho ||A^T (y - y_prev)|| / (rho ||A^T u||)

(masked form: A^T u = D^T u0 + u1 tends to 0, so the dual scale is rho max(||D^T u0||, ||u1||))
(``state.primal_res``, ``state.dual_res``; ``Solution.error`` = max(r, s); stop when <= tol). With ``auto_rho``
rho is multiplied by f = min(tau, sqrt(r / (xi s)) or its inverse) when r > xi mu s (divided when
s > (mu / xi) r), u is divided by the same factor (tau = 1000, mu = 1.2, xi = 1 + 18.3^(log10(lam) + 1) for
CBPDN and xi = 1 for the masked form: SPORCO's ConvBPDN defaults). Default rho = 50 lam + 1 (SPORCO's).
Unlike SPORCO, balancing stops after ``auto_rho_iter`` iterations (then ADMM converges with a fixed rho; with
balancing on for ever both SPORCO and this code can stall at low accuracy).

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
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.conv.fourier import fsq, irfft, psum, rfft, sq
from sparsejax.conv.operator import Conv
from sparsejax.solve import Solution, Solver, iterate

__all__ = ["cbpdn_admm", "cbpdn_solver", "cbpdn_objective", "conv_thresholding", "CBPDNState"]

# SPORCO ConvBPDN AutoRho defaults (Scaling with AutoScaling, RsdlRatio)
_TAU = 1000.0
_MU = 1.2


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


# ----------------------------------------------------------------------------------------------------
# the solver
# ----------------------------------------------------------------------------------------------------
class CBPDNState(NamedTuple):
    """ADMM state (internal layout: leading axis K of independent channels).

    x: least-squares variable (K, M, *N); z: sparse codes (= y1 for the masked form); u: scaled dual of x = z;
    y0, u0: masked form only, the split D x = y0 and its scaled dual (K, C, *N), else None;
    Zf, Uf: masked form only, rfft of z and u (kept in the DFT domain), else None;
    rho: penalty; k: iterations done; primal_res, dual_res: relative residuals r, s (module doc);
    u_scale: unmasked form only: the scaled dual is ``u * u_scale`` (the residual-balancing rescaling of u is
    applied lazily, inside the next iteration's pass over u, instead of costing a pass of its own); x is None in the
    unmasked form (the least-squares variable is never needed outside one iteration).
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


def _balance(rho, r, s, k, xi, auto_rho, auto_rho_iter):
    """SPORCO AutoRho (period 1, AutoScaling): the factor f by which rho is multiplied (u is divided);
    1 from iteration ``auto_rho_iter`` on."""
    if not auto_rho:
        return jnp.ones_like(rho)
    tiny = jnp.finfo(rho.dtype).tiny
    ratio = jnp.where(r > s * xi, r / jnp.maximum(s * xi, tiny), s * xi / jnp.maximum(r, tiny))
    mlt = jnp.where((s == 0) | (r == 0), _TAU, jnp.minimum(jnp.sqrt(ratio), _TAU))
    f = jnp.where(r > xi * _MU * s, mlt, jnp.where(s > (_MU / xi) * r, 1.0 / mlt, 1.0))
    f = jnp.where((k > 0) & (k < auto_rho_iter) & jnp.isfinite(f), f, 1.0)
    return f.astype(rho.dtype)


def _chunk_size(M, bytes_per_map, target=1 << 20):
    """The largest divisor c of M with c maps of ``bytes_per_map`` bytes within ``target`` (at least 1)."""
    best = 1
    for c in range(1, M + 1):
        if M % c == 0 and c * bytes_per_map <= target:
            best = c
    return best


def cbpdn_objective(filters, s, lam, codes, mask=None, axis=None):
    """F(x) = 1/2||W (sum_m d_m * x_m - s)||^2 + sum(lam |x|) (circular boundary; internal layout (K, ...)).

    ``filters`` (M, C, *k), ``s`` (K, C, *N), ``codes`` (K, M, *N), ``mask`` broadcastable to ``s`` or None;
    ``axis``: mesh axis over which filters and codes are split (inside ``shard_map``), or None.
    """
    N = tuple(s.shape[2:])
    fq = rfft(filters, N)
    r = irfft(psum(jnp.sum(fq[None] * rfft(codes, N)[:, :, None], axis=1), axis), N) - s
    if mask is not None:
        r = mask * r
    return 0.5 * sq(r) + psum(jnp.sum(lam * jnp.abs(codes)), axis)


def cbpdn_solver(filters, s, lam, rho, alpha, x0, mask=None, *, nonneg=False, auto_rho=True,
                 auto_rho_iter=100, chunk=None, axis=None) -> Solver:
    """The (init, step) pair of Fourier-domain ADMM for (masked) CBPDN; codes are the sparse variable z.

    Internal layout: ``s`` (K, C, *N), ``lam`` broadcastable to and ``x0`` of shape (K, M, *N), ``mask`` (K, C, *N) or
    None; all traced. ``chunk`` (static): maps per chunk of the unmasked iteration (None: about 1 MiB of one
    image's maps, see ``_chunk_size``). ``axis`` (unmasked form only): the mesh axis over which the filters, codes
    and duals are split when the solver runs inside ``shard_map`` (sums over maps become ``psum`` s), or None.
    """
    prox = shrink.nonneg_soft if nonneg else shrink.soft
    N = tuple(s.shape[2:])
    dtype = s.dtype
    tiny = jnp.finfo(dtype).tiny
    fq = _freq_factors(filters, N, axis)
    Sf = rfft(s, N)
    inf = jnp.asarray(jnp.inf, dtype)
    lam_s = jnp.max(lam) if axis is None else jax.lax.pmax(jnp.max(lam), axis)
    xi = jnp.where(lam_s > 0, 1.0 + 18.3 ** (jnp.log10(jnp.maximum(lam_s, tiny)) + 1.0), 1.0).astype(dtype)
    one = jnp.asarray(1.0, dtype)
    objective = lambda st: cbpdn_objective(filters, s, lam, st.z, mask, axis)

    if mask is None:
        DHs = _adj_f(fq, Sf)                                  # D^H s, once per call (K, M, *F)
        K, M = x0.shape[:2]
        c = _chunk_size(M, K * math.prod(N) * jnp.dtype(dtype).itemsize) if chunk is None else chunk
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
                zn = prox(v + uo, lam_c(j) / rho)
                un = uo + v - zn
                sums = sums + jnp.stack([sq(x - zn), sq(x), sq(zn), sq(zn - zo), sq(un)])
                return put(z, zn, j), put(u, un, j), sums

            z, u, sums = jax.lax.fori_loop(0, n, pass2, (st.z, st.u, jnp.zeros(5, dtype)))
            sums = psum(sums, axis)
            r = jnp.sqrt(sums[0]) / jnp.maximum(jnp.sqrt(jnp.maximum(sums[1], sums[2])), tiny)
            sd = jnp.sqrt(sums[3]) / jnp.maximum(jnp.sqrt(sums[4]), tiny)
            f = _balance(rho, r, sd, st.k, xi, auto_rho, auto_rho_iter)
            return CBPDNState(None, z, u, None, None, None, None, rho * f, st.k + 1, r, sd, 1.0 / f)

        def init():
            u = jnp.broadcast_to((lam / rho) * jnp.sign(x0), x0.shape)
            return CBPDNState(None, x0, u, None, None, None, None, rho, jnp.asarray(0, jnp.int32), inf, inf, one)

        return Solver(init=init, step=step, codes=lambda st: st.z,
                      error=lambda old, new: jnp.maximum(new.primal_res, new.dual_res), objective=objective)

    W2 = mask * mask
    W2s = W2 * s

    def step_m(st):
        rho = st.rho
        b = _adj_f(fq, rfft(st.y0 - st.u0, N)) + (st.Zf - st.Uf)
        Xf = _solve_f(fq, b, one)
        x = irfft(Xf, N)
        Dx = irfft(_syn_f(fq, Xf), N)
        v0 = alpha * Dx + (1.0 - alpha) * st.y0
        v1 = alpha * x + (1.0 - alpha) * st.z
        y0 = (W2s + rho * (v0 + st.u0)) / (W2 + rho)
        z = prox(v1 + st.u, lam / rho)
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
        sd = jnp.sqrt(fsq(dy, N)) / jnp.maximum(un, tiny)
        f = _balance(rho, r, sd, st.k, one, auto_rho, auto_rho_iter)
        return CBPDNState(x, z, u / f, y0, u0 / f, Zf, Uf / f, rho * f, st.k + 1, r, sd)

    def init_m():
        X0f = rfft(x0, N)
        y0 = irfft(_syn_f(fq, X0f), N)
        u0 = W2 * (y0 - s) / rho
        u = (lam / rho) * jnp.sign(x0)
        return CBPDNState(x0, x0, u, y0, u0, X0f, rfft(u, N), rho, jnp.asarray(0, jnp.int32), inf, inf)

    return Solver(init=init_m, step=step_m, codes=lambda st: st.z,
                  error=lambda old, new: jnp.maximum(new.primal_res, new.dual_res), objective=objective)


def _cbpdn_run(filters, s, lam, rho, alpha, x0, mask, tol, auto_rho_iter, *, max_iter, mode, nonneg, auto_rho,
               history, chunk, axis=None):
    dtype = s.dtype
    solver = cbpdn_solver(filters, s, lam, rho, alpha, x0, mask, nonneg=nonneg, auto_rho=auto_rho,
                          auto_rho_iter=auto_rho_iter, chunk=chunk, axis=axis)
    sol = iterate(solver, max_iter=max_iter, tol=jnp.asarray(tol, dtype), mode=mode, history=history)
    if axis is not None:   # the finiteness test saw this device's maps only: combine
        div = jax.lax.pmax(sol.diverged.astype(jnp.int32), axis) > 0
        sol = sol._replace(diverged=div, converged=sol.converged & ~div)
    return sol


@partial(jax.jit, static_argnames=("max_iter", "mode", "nonneg", "auto_rho", "history", "squeeze", "chunk", "mesh"))
def _cbpdn(filters, s, lam, rho, alpha, x0, mask, tol, auto_rho_iter, *, max_iter, mode, nonneg, auto_rho, history,
           squeeze, chunk, mesh=None):
    dtype = s.dtype
    if rho is None:
        rho = 50.0 * jnp.max(lam) + 1.0
    rho = jnp.asarray(rho, dtype)
    kw = dict(max_iter=max_iter, mode=mode, nonneg=nonneg, auto_rho=auto_rho, history=history, chunk=chunk)
    if mesh is None:
        sol = _cbpdn_run(filters, s, lam, rho, alpha, x0, mask, tol, auto_rho_iter, **kw)
    else:
        ax = mesh.axis_names[0]
        maps = P(None, ax)
        state = CBPDNState(None, maps, maps, None, None, None, None, P(), P(), P(), P(), P())
        out_specs = Solution(maps, P(), P(), P(), P(), P(), state, P() if history else None)
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


def cbpdn_admm(D, s, lam, *, rho=None, alpha=1.8, auto_rho: bool = True, auto_rho_iter: int = 100,
               max_iter: int = 500, tol=1e-4, mode: str = "while", nonneg: bool = False, x0=None, mask=None,
               history: bool = False, chunk: Optional[int] = None, mesh=None) -> Solution:
    """Fourier-domain ADMM for convolutional BPDN (one signal; batch with ``jax.vmap``).

        min_x 1/2 || W (sum_m d_m * x_m - s) ||_2^2 + lam sum_m ||x_m||_1     (circular boundary, W = 1 by default)

    Algorithm, per-frequency solves, residuals and rho balancing: module docstring.

    Args:
      D: a ``Conv`` with boundary "circular" and stride 1, or a filter array (M, C, h[, w]).
      s: signal (C, *N) (C = D's channels; or any C with single-channel filters: each channel coded separately).
      lam: l1 weight >= 0 (traced): scalar or broadcastable to the codes (per-map / per-coefficient weights).
      rho: initial ADMM penalty > 0 (traced); default 50 max(lam) + 1.
      alpha: over-relaxation parameter in (0, 2) (traced); 1 is plain ADMM.
      auto_rho: residual balancing of rho (SPORCO AutoRho, period 1).
      auto_rho_iter: rho is balanced during the first ``auto_rho_iter`` iterations only (traced int), then frozen:
        balancing on every iteration for ever can keep ADMM from converging at high accuracy (the changes must
        stop or become summable; SPORCO's unbounded rule makes the residuals grow again once they reach
        ~1e-5 on some small problems, and stalls there).
      max_iter: static iteration bound.
      tol: stop when max(relative primal, relative dual residual) <= tol.
      mode: "while" (early stop) or "scan" (exactly ``max_iter`` steps, reverse-differentiable).
      nonneg: constrain x >= 0 (projection in the z-update).
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
        of devices. Unmasked form only. On a CPU, host devices come from
        ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (XLA runs each FFT on one thread, so this is how
        one image's FFTs use several cores).

    Returns:
      ``Solution``: codes z (M, *N) (or (C, M, *N) for single-channel filters and a C-channel signal), exactly
      sparse; objective F(z); error = max(r, s); ``state`` a ``CBPDNState`` (internal layout with a leading
      channel axis) holding ``rho``, ``primal_res``, ``dual_res``.

    Example:
      >>> D = sj.Conv(filters, (1, 256, 256))
      >>> sol = cbpdn_admm(D, image[None], lam=0.05, max_iter=200)
      >>> codes = jax.vmap(lambda y: cbpdn_admm(D, y, 0.05).codes)(images)     # batch (B, 1, 256, 256)

    References: Wohlberg, IEEE TIP 2016; Wohlberg, ICIP 2016 (mask); Boyd et al. 2011.
    """
    filters, sK, K, squeeze, dtype = _prepare(D, s)
    M = filters.shape[0]
    N = tuple(sK.shape[2:])
    code_shape = (M,) + N if squeeze else (K, M) + N
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative Python int, got {max_iter!r}")
    V.check_nonnegative("tol", tol)
    V.check_choice("mode", mode, ("while", "scan"))
    lam = _prepare_lam(lam, code_shape, dtype, squeeze)
    if rho is not None:
        rho = V.as_float_array("rho", rho)
        if rho.ndim != 0:
            raise ValueError(f"rho must be a scalar, got shape {tuple(rho.shape)}")
        V.check_nonnegative("rho", rho, strict=True)
    alpha_a = V.as_float_array("alpha", alpha)
    if alpha_a.ndim != 0:
        raise ValueError(f"alpha must be a scalar, got shape {tuple(alpha_a.shape)}")
    if V.is_concrete(alpha_a) and not (0.0 < float(alpha_a) < 2.0):
        raise ValueError(f"alpha (over-relaxation) must lie in (0, 2), got {float(alpha_a)}")
    if x0 is None:
        x0 = jnp.zeros((K, M) + N, dtype)
    else:
        x0 = V.as_float_array("x0", x0)
        V.check_shape("x0", x0, code_shape, "the code shape")
        x0 = x0.astype(dtype).reshape((K, M) + N)
    if mask is not None:
        mask = V.as_float_array("mask", mask)
        try:
            np.broadcast_shapes(tuple(mask.shape), tuple(s.shape))
        except ValueError:
            raise ValueError(f"mask of shape {tuple(mask.shape)} must broadcast against the signal s of shape "
                             f"{tuple(jnp.shape(s))}") from None
        V.check_nonnegative("mask", mask)
        mask = jnp.broadcast_to(mask.astype(dtype), tuple(jnp.shape(s))).reshape(sK.shape)
    if mesh is not None:
        if not isinstance(mesh, Mesh) or len(mesh.axis_names) != 1:
            raise ValueError(f"mesh must be a 1-D jax.sharding.Mesh, got {mesh!r}")
        if mask is not None:
            raise ValueError("mesh (filters split over devices) supports the unmasked form only; got a mask")
        ndev = mesh.devices.size
        if M % ndev:
            raise ValueError(f"mesh: the number of filters M = {M} must be a multiple of the {ndev} devices")
        if chunk is not None and (M // ndev) % chunk:
            raise ValueError(f"chunk must divide the filters per device M / devices = {M // ndev}, got {chunk!r}")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1
                              or M % chunk):
        raise ValueError(f"chunk must be a positive divisor of the number of filters M = {M}, got {chunk!r}")
    if isinstance(auto_rho_iter, bool) or not isinstance(auto_rho_iter, (int, np.integer)) or auto_rho_iter < 0:
        raise ValueError(f"auto_rho_iter must be a non-negative int, got {auto_rho_iter!r}")
    return _cbpdn(filters, sK, lam, rho, alpha_a.astype(dtype), x0, mask, jnp.asarray(tol, dtype),
                  jnp.asarray(auto_rho_iter, jnp.int32),
                  max_iter=max_iter, mode=mode, nonneg=bool(nonneg), auto_rho=bool(auto_rho),
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
                    objective=0.5 * rr, error=jnp.sqrt(rr))


def conv_thresholding(D, s, lam, prox: str = "soft") -> Solution:
    """Convolutional thresholding pursuit x = P_lam(D^T s), D^T s the correlation with each filter (REFERENCE A1).

    Args:
      D: a ``Conv`` (circular, stride 1) or a filter array (M, C, h[, w]).
      s: signal (C, *N) (single-channel filters and a C-channel signal: each channel separately).
      lam: threshold >= 0, scalar or broadcastable to the codes (traced).
      prox: "soft" (sign(z) max(|z| - lam, 0)), "hard" (z 1{|z| > lam}) or "nonneg_soft" (max(z - lam, 0)).

    Returns:
      ``Solution``: codes (M, *N) (or (C, M, *N)); objective = 1/2||s - D x||^2; error = ||s - D x||.
    """
    V.check_choice("prox", prox, ("soft", "hard", "nonneg_soft"))
    filters, sK, K, squeeze, dtype = _prepare(D, s)
    M = filters.shape[0]
    N = tuple(sK.shape[2:])
    code_shape = (M,) + N if squeeze else (K, M) + N
    lam = _prepare_lam(lam, code_shape, dtype, squeeze)
    return _conv_thr(filters, sK, lam, prox=prox, squeeze=squeeze)
