"""Executable multi-layer (ML-CSC) guarantees: T5-T9 of ``sparsejax.theory``.

Model (ML-CSC; Papyan, Romano & Elad, JMLR 2017): Y = X + E, X = D_1 G_1, G_{i-1} = D_i G_i (i = 1..K,
G_0 = X), ``layers = (D_1, ..., D_K)`` of ``Conv`` (boundary "circular" or "full": every atom is a whole filter)
or ``Dense`` operators with unit-norm atoms. Per layer i the measured quantities (``layer_statistics``) are

    k_i   = ||G_i||^s_{0,inf}   stripe l0,inf: nonzeros of G_i whose atoms overlap one patch of G_{i-1}
                                (Conv stride s, filter k: window ceil(k/s) per axis); Dense: ||G_i||_0
    p_i   = ||G_i||^p_{0,inf}   patch l0,inf: most nonzeros of G_i inside the footprint of one atom of
                                D_{i+1} (the patch that enters D_{i+1}^T); for i = K (no next layer) and Dense
                                next layers: ||G_i||_0, so that the last bound is a plain l2 bound
    |G_i^min|, |G_i^max|        smallest / largest nonzero magnitude
    mu_i  = mu(D_i)             (convolutional) mutual coherence (``conv_coherence`` with the stride)

and eps_0 = ||E||^p_{2,inf} (patch = the footprint of an atom of D_1; Dense: ||E||_2), ``noise_level``.
An atom's inner product with the noise obeys |d^T E| <= eps_0, which is all the proofs use.

T5 layered thresholding (Papyan, Romano & Elad, "Convolutional neural networks analyzed via convolutional
   sparse coding", JMLR 18, 2017, Thm 10 (hard) / Thm 11 (soft)). With
       C_i = (k_i - 1) mu_i |G_i^max|   (interference on the support),  K_i = k_i mu_i |G_i^max|  (off it),
   if for every layer  k_i < 1/2 (1 + |G_i^min| / (mu_i |G_i^max|)) - eps_{i-1} / (mu_i |G_i^max|)
   (equivalently the window K_i + eps_{i-1} < b_i < |G_i^min| - C_i - eps_{i-1} is non-empty) and the
   threshold b_i lies in that window, then supp(G_i^LT) = supp(G_i) and
       ||G_i^LT - G_i||_inf <= eps_{i-1} + C_i (+ b_i for soft),   eps_i = sqrt(p_i) (eps_{i-1} + C_i [+ b_i]).
T6 layered BP (same paper, Thm 12; the constants 4 and 7.5 are those of the stripe BP result of Papyan, Sulam &
   Elad, "Working locally thinking globally", IEEE TSP 2017, applied per layer, as read from the papers): with
   xi_i = 4 eps_{i-1}, if k_i < (1 + 1/mu_i)/3 then
   supp(G_i^LBP) inside supp(G_i), ||G_i^LBP - G_i||_inf <= 7.5 eps_{i-1}, every |G_i| entry above 7.5 eps_{i-1}
   is found, and eps_i = 7.5 sqrt(p_i) eps_{i-1} = 7.5^i eps_0 prod_{j<=i} sqrt(p_j).
T7 projection (Sulam, Papyan, Romano & Elad, "Multilayer convolutional sparse modeling: pursuit and dictionary
   learning", IEEE TSP 2018; the form below as read from the paper, checked to hold, not to be tight): if
   k_K = ||G_K||^s_{0,inf} < (1 + 1/mu(D^{(1,K)}))/2 then any G^ with ||G^||^s_{0,inf} <= k_K and
   ||Y - D^{(1,K)} G^||_2 <= eps (= ||E||_2), e.g. the P_{0,inf}^eps solution, obeys
       ||G^ - G_K||^2 <= 4 eps^2 / (1 - (2 k_K - 1) mu(D^{(1,K)})).
   It rests on one inequality, exposed as ``projection_error_bound``: for any estimate with residual
   delta = ||Y - D G^||_2 and stripe sparsity s of G^ - G_K (Gershgorin on the stripe-sparse Gram matrix),
       ||G^ - G_K||^2 <= (eps + delta)^2 / (nu_min - (s - 1) mu nu_max),
   nu = squared norms of the effective atoms (the molecules of D^{(1,K)} are not unit-norm in general).
T8 holistic oracles (Aberdam, Sulam & Elad, SIMODS 2019): closed-form traces from ``sparsejax.multilayer.holistic``,
   checked against a Monte Carlo estimate (``oracle_mse_check``).
T9 adversarial robustness (Romano, Aberdam, Sulam & Elad, "Adversarial noise attacks of deep learning
   architectures: stability analysis via sparse-modeled signals", JMIV 2020): a linear classifier
   w^T G_K + b on the pursuit's deepest code keeps the decision of the clean code whenever
   margin > ||w||_2 * (l2 error bound of the pursuit). ``lt_certified_radius`` / ``lbp_certified_radius``
   return the largest eps_0 = ||E||^p_{2,inf} for which T5 / T6 certify this.

Every function is pure jnp (jit/vmap friendly; layers are static Python structure). Where a condition fails
the corresponding bound is ``inf`` (the theorem then says nothing) and later layers inherit it; no field is ever
NaN. Where the theorem prescribes no threshold (T5: an earlier layer not guaranteed, or an empty window) or no l1
weight (T6: an earlier layer not guaranteed), ``LTBound.has_threshold`` / ``LBPBound.has_xi`` is False and the
threshold / weight field holds a documented nominal stand-in.
"""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax import _validate as V
from sparsejax.conv.norms import conv_coherence, patch_l2_inf, stripe_l0_inf
from sparsejax.conv.operator import Conv, normalize_filters
from sparsejax.dictionary import mutual_coherence
from sparsejax.multilayer import holistic as H
from sparsejax.multilayer.layered import check_layers
from sparsejax.multilayer.model import Chain, molecules, to_dense
from sparsejax.operators import Dense

__all__ = [
    "LT_FACTOR", "LBP_LAMBDA_FACTOR", "LBP_LINF_FACTOR",
    "ModelStats", "LTBound", "LBPBound", "OracleCheck",
    "layer_coherences", "layer_statistics", "noise_level", "model_quantities",
    "lt_bound", "lbp_bound", "lbp_eps_closed_form",
    "effective_constants", "projection_condition", "projection_bound", "projection_error_bound",
    "oracle_mse_check",
    "classifier_margins", "lt_certified_radius", "lbp_certified_radius",
    "incoherent_conv_layers",
]

LBP_LAMBDA_FACTOR = 4.0    # T6 xi_i = 4 eps_{i-1}        (as read from the papers; checked to hold, not to be tight)
LBP_LINF_FACTOR = 7.5      # T6 ||.||_inf <= 7.5 eps_{i-1} (as read from the papers; checked to hold, not to be tight)
LT_FACTOR = 0.5            # T5: k < 1/2 (1 + ...)


# ----------------------------------------------------------------------------------------------------
# measured quantities
# ----------------------------------------------------------------------------------------------------
class ModelStats(NamedTuple):
    """Per-layer measurements of a model signal, each of shape (K,) (``layer_statistics``).

    Attributes:
      stripe_l0: k_i = ||G_i||^s_{0,inf}.
      patch_l0: p_i = ||G_i||^p_{0,inf} (footprint of D_{i+1}; ||G_K||_0 for the last layer).
      l0: ||G_i||_0.
      gmin: |G_i^min| over the nonzeros.
      gmax: |G_i^max|.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.theory import multilayer as tm
      >>> layers = (sj.Dense(jnp.eye(4)), sj.Dense(jnp.eye(4)))        # orthonormal layers: mu = 0
      >>> codes = (jnp.array([1.0, 0.0, 0.5, 0.0]), jnp.array([1.0, 0.0, 0.5, 0.0]))
      >>> stats = tm.layer_statistics(layers, codes)
      >>> stats.l0.tolist(), stats.gmin.tolist()
      ([2.0, 2.0], [0.5, 0.5])
    """

    stripe_l0: jax.Array
    patch_l0: jax.Array
    l0: jax.Array
    gmin: jax.Array
    gmax: jax.Array


def _check_theory_layers(layers):
    layers = check_layers(layers)
    for i, D in enumerate(layers):
        if isinstance(D, Conv):
            if D.boundary not in ("circular", "full"):
                raise ValueError(f"layers[{i}] has boundary {D.boundary!r}: the theorems need every atom to be a "
                                 "whole filter (boundary 'circular' or 'full')")
            if D.boundary == "circular" and any(n < 2 * k - 1 for n, k in zip(D.signal_shape[1:], D.filter_shape)):
                raise ValueError(f"layers[{i}] is circular with signal {D.signal_shape[1:]} shorter than 2k - 1 "
                                 f"for filters {D.filter_shape}: atoms would overlap themselves")
            W = D.filters
        elif isinstance(D, Dense):
            W = D.atoms.T
        else:
            raise TypeError(f"layers[{i}] must be a Conv or Dense operator, got {type(D).__name__}")
        if V.is_concrete(W):
            norms = np.sqrt(np.sum(np.asarray(W, np.float64).reshape(W.shape[0], -1) ** 2, axis=1))
            if np.max(np.abs(norms - 1.0)) > 1e-3:
                raise ValueError(f"layers[{i}] must have unit-norm atoms (the theorems assume them), got norms in "
                                 f"[{norms.min():.4g}, {norms.max():.4g}]; normalise with normalize_filters / "
                                 "normalize_atoms")
    return layers


def layer_coherences(layers) -> jax.Array:
    """(K,) mutual coherences mu(D_i): ``conv_coherence(filters, stride=s)`` for ``Conv`` (shifts that are
    multiples of the stride), ``mutual_coherence(atoms)`` for ``Dense``.

    Example:
      >>> import sparsejax as sj
      >>> [round(float(m), 4) for m in sj.theory.layer_coherences(sj.theory.incoherent_conv_layers(32))]
      [0.0769, 0.3333]
    """
    layers = _check_theory_layers(layers)
    mus = [conv_coherence(D.filters, stride=D.stride) if isinstance(D, Conv) else mutual_coherence(D.atoms)
           for D in layers]
    return jnp.stack([jnp.asarray(m, jnp.result_type(*[D.dtype for D in layers])) for m in mus])


def _stripe(D, G):
    if isinstance(D, Conv):
        window = tuple(-(-k // D.stride) for k in D.filter_shape)   # |s (p - q)| < k  <=>  |p - q| < k/s
        return stripe_l0_inf(G, window, periodic=D.boundary == "circular")
    return jnp.sum(G != 0)


def _patch(D_next, G):
    if isinstance(D_next, Conv):
        ind = (G != 0).astype(G.dtype)
        return jnp.round(patch_l2_inf(ind, D_next.filter_shape, periodic=D_next.boundary == "circular") ** 2)
    return jnp.sum(G != 0)


def layer_statistics(layers, codes) -> ModelStats:
    """Measure k_i, p_i, ||G_i||_0, |G_i^min|, |G_i^max| of the true codes (module docstring).

    Args:
      layers: (D_1, ..., D_K). codes: (G_1, ..., G_K) with G_i of shape ``layers[i-1].code_shape``.

    Returns:
      ``ModelStats`` of (K,) arrays (float, in the codes' dtype).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.theory import multilayer as tm
      >>> layers = (sj.Dense(jnp.eye(4)), sj.Dense(jnp.eye(4)))        # orthonormal layers: mu = 0
      >>> codes = (jnp.array([1.0, 0.0, 0.5, 0.0]), jnp.array([1.0, 0.0, 0.5, 0.0]))
      >>> stats = tm.layer_statistics(layers, codes)
      >>> stats.stripe_l0.tolist(), stats.gmax.tolist()
      ([2.0, 2.0], [1.0, 1.0])
    """
    layers = _check_theory_layers(layers)
    if not isinstance(codes, (tuple, list)) or len(codes) != len(layers):
        raise ValueError(f"codes must be a sequence of {len(layers)} arrays (G_1, ..., G_K), got "
                         f"{type(codes).__name__} of length {len(codes) if isinstance(codes, (tuple, list)) else '?'}")
    for i, (D, G) in enumerate(zip(layers, codes)):
        V.check_shape(f"codes[{i}]", G, tuple(D.code_shape), f"the code shape of layers[{i}]")
    dtype = jnp.result_type(*[jnp.asarray(G).dtype for G in codes])
    K = len(layers)
    out = {k: [] for k in ModelStats._fields}
    for i, (D, G) in enumerate(zip(layers, codes)):
        G = jnp.asarray(G)
        a = jnp.abs(G)
        out["stripe_l0"].append(_stripe(D, G))
        out["patch_l0"].append(_patch(layers[i + 1], G) if i + 1 < K else jnp.sum(G != 0))
        out["l0"].append(jnp.sum(G != 0))
        out["gmax"].append(jnp.max(a))
        out["gmin"].append(jnp.min(jnp.where(a > 0, a, jnp.inf)))
    return ModelStats(*[jnp.stack([jnp.asarray(v, dtype) for v in out[f]]) for f in ModelStats._fields])


def noise_level(layers, noise) -> jax.Array:
    """eps_0 = ||E||^p_{2,inf} with the patch of one atom of D_1 (``patch_l2_inf``, all channels; periodic for a
    circular D_1); ||E||_2 for a ``Dense`` D_1. |d^T E| <= eps_0 for every atom d of D_1.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> float(sj.theory.noise_level((sj.Dense(jnp.eye(2)),), jnp.array([0.3, 0.4])))
      0.5
    """
    layers = check_layers(layers)
    D = layers[0]
    E = V.as_float_array("noise", noise)
    V.check_shape("noise", E, tuple(D.signal_shape), "the signal shape of layers[0]")
    if isinstance(D, Conv):
        return patch_l2_inf(E, D.filter_shape, periodic=D.boundary == "circular")
    return jnp.sqrt(jnp.sum(E * E))


def model_quantities(layers, codes, noise):
    """``(layer_coherences(layers), layer_statistics(layers, codes), noise_level(layers, noise))``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> layers = (sj.Dense(jnp.eye(2)),)
      >>> mu, stats, eps0 = sj.theory.model_quantities(layers, (jnp.array([1.0, 0.0]),), jnp.array([0.3, 0.4]))
      >>> mu.tolist(), stats.l0.tolist(), float(eps0)
      ([0.0], [1.0], 0.5)
    """
    return layer_coherences(layers), layer_statistics(layers, codes), noise_level(layers, noise)


# ----------------------------------------------------------------------------------------------------
# T5: layered thresholding
# ----------------------------------------------------------------------------------------------------
class LTBound(NamedTuple):
    """T5 per layer, each (K,). ``guaranteed[i]``: the conditions of layers 1..i all hold, so supp(G_i^LT) =
    supp(G_i) and the bounds of layer i apply (they are ``inf`` otherwise).

    The theorem gives a threshold for layer i only when layers 1..i-1 are guaranteed (eps_{i-1} is a bound) and
    layer i's window is non-empty: ``has_threshold``. Elsewhere there is no theorem threshold, and ``threshold``
    (when not given) holds a documented stand-in, never NaN: the midpoint of the window computed with the nominal
    error chain (eps_i = sqrt(p_i) (eps_{i-1} + C_i [+ b_i]) as if every earlier layer had succeeded); mask it with
    ``has_threshold`` before trusting it.

    Attributes:
      eps_in: eps_{i-1} (eps_0 = noise level; ``inf`` after a layer that is not guaranteed).
      window_lo: K_i + eps_{i-1} (``inf`` when eps_{i-1} is).
      window_hi: |G_i^min| - C_i - eps_{i-1} (``-inf`` when eps_{i-1} is ``inf``).
      has_threshold: the theorem gives a threshold for this layer (earlier layers guaranteed, window_lo <
        window_hi).
      threshold: b_i used (given; else the window midpoint where ``has_threshold``, the nominal stand-in above
        elsewhere).
      stripe_condition: k_i < 1/2 (1 + |G^min|/(mu |G^max|)) - eps_{i-1}/(mu |G^max|).
      condition: window_lo < b_i < window_hi.
      guaranteed: the conditions of layers 1..i hold.
      linf: ||G_i^LT - G_i||_inf <= eps_{i-1} + C_i (+ b_i soft).
      eps: eps_i = sqrt(p_i) linf: ||G_i^LT - G_i||^p_{2,inf} (l2 for the last layer).
      l2: sqrt(||G_i||_0) linf: ||G_i^LT - G_i||_2.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.theory import multilayer as tm
      >>> layers = (sj.Dense(jnp.eye(4)), sj.Dense(jnp.eye(4)))        # orthonormal layers: mu = 0
      >>> codes = (jnp.array([1.0, 0.0, 0.5, 0.0]), jnp.array([1.0, 0.0, 0.5, 0.0]))
      >>> stats = tm.layer_statistics(layers, codes)
      >>> lt = tm.lt_bound(jnp.zeros(2), stats, 0.1)
      >>> lt.guaranteed.tolist(), [round(float(v), 4) for v in lt.threshold]
      ([True, True], [0.25, 0.25])
    """

    eps_in: jax.Array
    window_lo: jax.Array
    window_hi: jax.Array
    threshold: jax.Array
    stripe_condition: jax.Array
    condition: jax.Array
    guaranteed: jax.Array
    linf: jax.Array
    eps: jax.Array
    l2: jax.Array
    has_threshold: jax.Array


def _vec(name, x, K, dtype):
    x = jnp.asarray(x, dtype)
    if x.ndim == 0:
        x = jnp.broadcast_to(x, (K,))
    if x.shape != (K,):
        raise ValueError(f"{name} must be a scalar or have shape ({K},) (one value per layer), got {x.shape}")
    return x


def lt_bound(mu, stats: ModelStats, eps0, thresholds=None, soft: bool = False) -> LTBound:
    """T5 (layered hard / soft thresholding, Papyan, Romano & Elad JMLR 2017): conditions, admissible threshold
    windows and error bounds, layer by layer (module docstring).

    Args:
      mu: (K,) coherences mu(D_i) (``layer_coherences``).
      stats: ``ModelStats`` of the true codes (``layer_statistics``).
      eps0: noise level ||E||^p_{2,inf} (``noise_level``), or any upper bound of it.
      thresholds: (K,) thresholds b_i, or None for the midpoint of each layer's window (computed with the
        previous layers' midpoints; for ``soft`` the bias b_i enters eps_i).
      soft: soft thresholding (the error bound gains + b_i per layer).

    Returns:
      ``LTBound``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.theory import multilayer as tm
      >>> layers = (sj.Dense(jnp.eye(4)), sj.Dense(jnp.eye(4)))        # orthonormal layers: mu = 0
      >>> codes = (jnp.array([1.0, 0.0, 0.5, 0.0]), jnp.array([1.0, 0.0, 0.5, 0.0]))
      >>> stats = tm.layer_statistics(layers, codes)
      >>> lt = tm.lt_bound(jnp.zeros(2), stats, 0.01, thresholds=(0.1, 0.2), soft=True)
      >>> lt.condition.tolist(), [round(float(v), 4) for v in lt.linf]
      ([True, True], [0.11, 0.3556])
    """
    k = stats.stripe_l0
    K = k.shape[0]
    dtype = jnp.result_type(stats.gmax.dtype, jnp.asarray(mu).dtype, float)
    mu = _vec("mu", mu, K, dtype)
    b_given = None if thresholds is None else _vec("thresholds", thresholds, K, dtype)
    eps = jnp.asarray(eps0, dtype)            # the certified eps_{i-1}: inf once a layer is not guaranteed
    eps_nom = eps                             # the nominal chain, as if every layer had succeeded (the stand-in)
    ok_so_far = jnp.asarray(True)
    inf = jnp.asarray(jnp.inf, dtype)
    rows = []
    for i in range(K):
        gmax, gmin = stats.gmax[i].astype(dtype), stats.gmin[i].astype(dtype)
        C = (k[i] - 1) * mu[i] * gmax
        Kint = k[i] * mu[i] * gmax
        lo_nom, hi_nom = Kint + eps_nom, gmin - C - eps_nom
        prior_ok = ok_so_far
        lo, hi = jnp.where(prior_ok, lo_nom, inf), jnp.where(prior_ok, hi_nom, -inf)
        has_threshold = prior_ok & (lo < hi)
        mid_nom = 0.5 * (lo_nom + hi_nom)
        mid_nom = jnp.where(jnp.isfinite(mid_nom), mid_nom, jnp.where(jnp.isfinite(lo_nom), lo_nom, 0.0))
        b = jnp.where(has_threshold, 0.5 * (lo + hi), mid_nom) if b_given is None else b_given[i]
        b = jnp.maximum(b, 0.0)
        # the published form multiplied by mu |G^max| > 0 (also valid for mu = 0)
        stripe_cond = k[i] * mu[i] * gmax < LT_FACTOR * (mu[i] * gmax + gmin) - eps
        cond = (lo < b) & (b < hi)
        ok_so_far = ok_so_far & cond
        linf_nom = eps_nom + C + (b if soft else 0.0)
        linf = jnp.where(ok_so_far, linf_nom, inf)
        eps_i = jnp.where(ok_so_far, jnp.sqrt(stats.patch_l0[i].astype(dtype)) * linf, inf)   # never 0 * inf
        l2 = jnp.where(ok_so_far, jnp.sqrt(stats.l0[i].astype(dtype)) * linf, inf)
        rows.append((eps, lo, hi, b, stripe_cond, cond, ok_so_far, linf, eps_i, l2, has_threshold))
        eps = eps_i
        eps_nom = jnp.sqrt(stats.patch_l0[i].astype(dtype)) * linf_nom
    return LTBound(*[jnp.stack(c) for c in zip(*rows)])


# ----------------------------------------------------------------------------------------------------
# T6: layered BP
# ----------------------------------------------------------------------------------------------------
class LBPBound(NamedTuple):
    """T6 per layer, each (K,); ``guaranteed`` as in ``LTBound``.

    The theorem prescribes xi_i only when layers 1..i-1 are guaranteed (eps_{i-1} is a bound): ``has_xi``.
    Elsewhere ``xi`` holds a documented stand-in, never NaN or inf: 4 times the nominal eps_{i-1} of the chain
    eps_i = 7.5 sqrt(p_i) eps_{i-1} (as if every earlier layer had succeeded); mask it with ``has_xi``.

    Attributes:
      eps_in: eps_{i-1} (``inf`` after a layer that is not guaranteed).
      has_xi: the theorem prescribes this layer's xi (every earlier layer guaranteed).
      xi: xi_i = 4 eps_{i-1}, the l1 weight the theorem prescribes (the nominal stand-in where ``has_xi`` is
        False).
      condition: k_i < (1 + 1/mu_i)/3.
      guaranteed: the conditions of layers 1..i hold.
      linf: ||G_i^LBP - G_i||_inf <= 7.5 eps_{i-1}; entries above it are found.
      eps: eps_i = sqrt(p_i) linf = 7.5^i eps_0 prod sqrt(p_j).
      l2: sqrt(||G_i||_0) linf >= ||G_i^LBP - G_i||_2 (support inclusion).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.theory import multilayer as tm
      >>> layers = (sj.Dense(jnp.eye(4)), sj.Dense(jnp.eye(4)))        # orthonormal layers: mu = 0
      >>> codes = (jnp.array([1.0, 0.0, 0.5, 0.0]), jnp.array([1.0, 0.0, 0.5, 0.0]))
      >>> stats = tm.layer_statistics(layers, codes)
      >>> lb = tm.lbp_bound(jnp.zeros(2), stats, 0.01)
      >>> lb.guaranteed.tolist(), [round(float(v), 4) for v in lb.xi]
      ([True, True], [0.04, 0.4243])
    """

    eps_in: jax.Array
    xi: jax.Array
    condition: jax.Array
    guaranteed: jax.Array
    linf: jax.Array
    eps: jax.Array
    l2: jax.Array
    has_xi: jax.Array


def lbp_bound(mu, stats: ModelStats, eps0) -> LBPBound:
    """T6 (layered BP, Papyan, Romano & Elad JMLR 2017, Thm 12; constants as read from the papers): per layer the
    condition ||G_i||^s_{0,inf} < (1 + 1/mu_i)/3, the prescribed l1 weight xi_i = 4 eps_{i-1} and the error bounds.

    Args:
      mu: (K,) coherences. stats: ``ModelStats``. eps0: ||E||^p_{2,inf} or an upper bound of it.

    Returns:
      ``LBPBound``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.theory import multilayer as tm
      >>> layers = (sj.Dense(jnp.eye(4)), sj.Dense(jnp.eye(4)))        # orthonormal layers: mu = 0
      >>> codes = (jnp.array([1.0, 0.0, 0.5, 0.0]), jnp.array([1.0, 0.0, 0.5, 0.0]))
      >>> stats = tm.layer_statistics(layers, codes)
      >>> [round(float(v), 4) for v in tm.lbp_bound(jnp.zeros(2), stats, 0.01).linf]
      [0.075, 0.7955]
    """
    k = stats.stripe_l0
    K = k.shape[0]
    dtype = jnp.result_type(stats.gmax.dtype, jnp.asarray(mu).dtype, float)
    mu = _vec("mu", mu, K, dtype)
    eps = jnp.asarray(eps0, dtype)            # certified: inf once a layer is not guaranteed
    eps_nom = eps                             # nominal chain (the stand-in xi)
    ok_so_far = jnp.asarray(True)
    inf = jnp.asarray(jnp.inf, dtype)
    rows = []
    for i in range(K):
        has_xi = ok_so_far
        cond = 3.0 * k[i] * mu[i] < 1.0 + mu[i]      # k < (1 + 1/mu)/3, multiplied by 3 mu (mu = 0 allowed)
        ok_so_far = ok_so_far & cond
        linf = jnp.where(ok_so_far, LBP_LINF_FACTOR * eps_nom, inf)
        eps_i = jnp.where(ok_so_far, jnp.sqrt(stats.patch_l0[i].astype(dtype)) * linf, inf)   # never 0 * inf
        l2 = jnp.where(ok_so_far, jnp.sqrt(stats.l0[i].astype(dtype)) * linf, inf)
        rows.append((eps, LBP_LAMBDA_FACTOR * eps_nom, cond, ok_so_far, linf, eps_i, l2, has_xi))
        eps = eps_i
        eps_nom = jnp.sqrt(stats.patch_l0[i].astype(dtype)) * LBP_LINF_FACTOR * eps_nom
    return LBPBound(*[jnp.stack(c) for c in zip(*rows)])


def lbp_eps_closed_form(stats: ModelStats, eps0) -> jax.Array:
    """T6's closed form eps_i = 7.5^i eps_0 prod_{j<=i} sqrt(p_j), (K,) (no condition applied).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.theory import multilayer as tm
      >>> layers = (sj.Dense(jnp.eye(4)), sj.Dense(jnp.eye(4)))        # orthonormal layers: mu = 0
      >>> codes = (jnp.array([1.0, 0.0, 0.5, 0.0]), jnp.array([1.0, 0.0, 0.5, 0.0]))
      >>> stats = tm.layer_statistics(layers, codes)
      >>> [round(float(v), 4) for v in tm.lbp_eps_closed_form(stats, 0.01)]
      [0.1061, 1.125]
    """
    p = stats.patch_l0.astype(jnp.result_type(stats.gmax.dtype, float))
    i = jnp.arange(1, p.shape[0] + 1, dtype=p.dtype)
    return LBP_LINF_FACTOR ** i * jnp.asarray(eps0, p.dtype) * jnp.cumprod(jnp.sqrt(p))


# ----------------------------------------------------------------------------------------------------
# T7: projection
# ----------------------------------------------------------------------------------------------------
def effective_constants(layers):
    """(mu, nu_min, nu_max) of the effective dictionary D^{(1,K)} = D_1 ... D_K: the coherence of its
    normalised atoms and the smallest / largest squared atom norm.

    All-``Conv`` models: from the molecules (``sparsejax.multilayer.model.molecules``; effective stride = prod of
    strides), with ``conv_coherence``; otherwise from the explicit matrix (``sparsejax.multilayer.model.to_dense``,
    small models only).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> mu, nu_min, nu_max = sj.theory.effective_constants((sj.Dense(jnp.eye(3)), sj.Dense(jnp.eye(3))))
      >>> float(mu), float(nu_min), float(nu_max)
      (0.0, 1.0, 1.0)
    """

    layers = _check_theory_layers(layers)
    if all(isinstance(D, Conv) for D in layers):
        if len({D.boundary for D in layers}) != 1:
            raise ValueError("effective_constants needs one boundary mode for all Conv layers")
        mol = molecules(layers, len(layers))
        s = math.prod(D.stride for D in layers)
        D1 = layers[0]
        if D1.boundary == "circular" and any(n < 2 * e - 1 for n, e in zip(D1.signal_shape[1:], mol.shape[2:])):
            raise ValueError(f"the molecules {mol.shape[2:]} are too long for the circular signal "
                             f"{D1.signal_shape[1:]} (need N >= 2E - 1)")
        nu = jnp.sum(mol.reshape(mol.shape[0], -1) ** 2, axis=1)
        mu = conv_coherence(normalize_filters(mol), stride=s)
    else:
        A = to_dense(Chain(layers)) if len(layers) > 1 else to_dense(layers[0])
        nu = jnp.sum(A * A, axis=0)
        mu = mutual_coherence(A)
    return mu, jnp.min(nu), jnp.max(nu)


def projection_condition(mu, k):
    """T7 condition k_K < (1 + 1/mu(D^{(1,K)}))/2 (written 2 k mu < 1 + mu, valid for mu = 0).

    Example:
      >>> import sparsejax as sj
      >>> bool(sj.theory.projection_condition(0.25, 2)), bool(sj.theory.projection_condition(0.25, 3))
      (True, False)
    """
    mu = jnp.asarray(mu)
    return 2.0 * jnp.asarray(k) * mu < 1.0 + mu


def projection_bound(mu, k, eps):
    """T7 (Sulam, Papyan, Romano & Elad, IEEE TSP 2018, as read from the paper): ||G^ - G_K||^2 <=
    4 eps^2 / (1 - (2k - 1) mu) for an estimate with ||G^||^s_{0,inf} <= k and residual <= eps (the
    P_{0,inf}^eps solution); ``inf`` where the condition fails. Unit-norm effective atoms assumed (otherwise use
    ``projection_error_bound``).

    Example:
      >>> import sparsejax as sj
      >>> round(float(sj.theory.projection_bound(0.25, 2, 0.1)), 6), float(sj.theory.projection_bound(0.25, 3, 0.1))
      (0.16, inf)
    """
    mu, k, eps = jnp.asarray(mu), jnp.asarray(k), jnp.asarray(eps)
    den = 1.0 - (2.0 * k - 1.0) * mu
    ok = projection_condition(mu, k) & (den > 0)
    return jnp.where(ok, 4.0 * eps * eps / jnp.where(ok, den, 1.0), jnp.inf)


def projection_error_bound(mu, s_union, eps, delta, nu_min=1.0, nu_max=1.0):
    """The inequality behind T7, for any estimate G^ of G_K (Y = D G_K + E, ||E||_2 <= eps):

        ||G^ - G_K||^2 <= (eps + delta)^2 / (nu_min - (s - 1) mu nu_max),

    delta = ||Y - D G^||_2, s = ||G^ - G_K||^s_{0,inf} (stripe sparsity of the difference, <= the union
    support's), mu the coherence of the normalised effective atoms, nu their squared norms: ||D(G^ - G_K)||
    <= eps + delta, and Gershgorin on the Gram matrix restricted to a stripe-s support bounds its smallest
    eigenvalue below by nu_min - (s - 1) mu nu_max. ``inf`` where that is <= 0. With s = 2k, delta = eps and
    unit atoms it is ``projection_bound``.

    Example:
      >>> import sparsejax as sj
      >>> round(float(sj.theory.projection_error_bound(0.25, 4, 0.1, 0.1)), 6)
      0.16
    """
    mu, s = jnp.asarray(mu), jnp.asarray(s_union)
    den = jnp.asarray(nu_min) - (s - 1.0) * mu * jnp.asarray(nu_max)
    ok = den > 0
    num = (jnp.asarray(eps) + jnp.asarray(delta)) ** 2
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), jnp.inf)


# ----------------------------------------------------------------------------------------------------
# T8: holistic oracles, closed form vs Monte Carlo
# ----------------------------------------------------------------------------------------------------
class OracleCheck(NamedTuple):
    """T8 closed forms next to their Monte Carlo estimates (``oracle_mse_check``).

    Attributes:
      projection_closed, holistic_closed: sigma^2 tr((D_S^T D_S)^{-1}) and sigma^2 tr((N^T D_S^T D_S N)^{-1}).
      projection_mc, holistic_mc: the Monte Carlo means of ||G_2^ - G_2||^2.
      projection_se, holistic_se: the standard errors of those means.
      projection_z, holistic_z: (mc - closed) / se.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> chk = sj.theory.oracle_mse_check(jax.random.PRNGKey(0), jnp.eye(4), jnp.eye(4), jnp.array([0, 1, 2]),
      ...                                  jnp.array([0]), 0.1, n_trials=500)
      >>> round(float(chk.projection_closed), 6), round(float(chk.holistic_closed), 6)
      (0.03, 0.02)
    """

    projection_closed: jax.Array
    holistic_closed: jax.Array
    projection_mc: jax.Array
    holistic_mc: jax.Array
    projection_se: jax.Array
    holistic_se: jax.Array
    projection_z: jax.Array
    holistic_z: jax.Array


@partial(jax.jit, static_argnames=("n_trials",))
def _oracle_mc(key, D1, D2, G2, support2, cosupport1, sigma, *, n_trials):
    x = D1 @ (D2 @ G2)
    V_ = sigma * jax.random.normal(key, (n_trials, x.shape[0]), x.dtype)
    ep = jax.vmap(lambda v: jnp.sum((H.projection_oracle(D1, D2, x + v, support2) - G2) ** 2))(V_)
    eh = jax.vmap(lambda v: jnp.sum((H.holistic_oracle(D1, D2, x + v, support2, cosupport1) - G2) ** 2))(V_)
    return ep, eh


def oracle_mse_check(key, D1, D2, support2, cosupport1, sigma, n_trials: int = 2000, G2=None) -> OracleCheck:
    """T8: the closed-form oracle MSEs (``holistic.projection_oracle_mse`` / ``holistic_oracle_mse``) next to a
    Monte Carlo estimate over ``n_trials`` white-noise draws N(0, sigma^2 I) with the same estimators
    (``holistic.projection_oracle`` / ``holistic_oracle``), and the z-scores (mc - closed) / se.

    Args:
      key: PRNG key. D1 (n, m_1), D2 (m_1, m_2) arrays. support2 (s_2,), cosupport1 (l_1,) int indices.
      sigma: noise std. n_trials: Monte Carlo size (static).
      G2: the clean deepest code (supported on support2, D_2 G2 zero on cosupport1); default 0 (the
        oracles are linear and unbiased on the model, so the error does not depend on it).

    Returns:
      ``OracleCheck``.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> chk = sj.theory.oracle_mse_check(jax.random.PRNGKey(0), jnp.eye(4), jnp.eye(4), jnp.array([0, 1, 2]),
      ...                                  jnp.array([0]), 0.1, n_trials=500)
      >>> bool(abs(chk.projection_z) < 5), bool(abs(chk.holistic_z) < 5)
      (True, True)
    """
    D1 = jnp.asarray(getattr(D1, "atoms", D1))
    D2 = jnp.asarray(getattr(D2, "atoms", D2))
    n_trials = V.check_positive_int("n_trials", n_trials)
    if n_trials < 2:
        raise ValueError(f"n_trials must be >= 2 for a standard error, got {n_trials}")
    dtype = jnp.result_type(D1.dtype, D2.dtype)
    G2 = jnp.zeros((D2.shape[1],), dtype) if G2 is None else jnp.asarray(G2, dtype)
    pc = H.projection_oracle_mse(D1, D2, support2, sigma)
    hc = H.holistic_oracle_mse(D1, D2, support2, cosupport1, sigma)
    ep, eh = _oracle_mc(key, D1.astype(dtype), D2.astype(dtype), G2, jnp.asarray(support2),
                        jnp.asarray(cosupport1), jnp.asarray(sigma, dtype), n_trials=n_trials)
    sp = jnp.std(ep, ddof=1) / math.sqrt(n_trials)
    sh = jnp.std(eh, ddof=1) / math.sqrt(n_trials)
    return OracleCheck(pc, hc, jnp.mean(ep), jnp.mean(eh), sp, sh, (jnp.mean(ep) - pc) / sp,
                       (jnp.mean(eh) - hc) / sh)


# ----------------------------------------------------------------------------------------------------
# T9: adversarial margin
# ----------------------------------------------------------------------------------------------------
def classifier_margins(W, bias, G):
    """Margins of a linear classifier on the code G and the norms that scale them (T9).

    Binary (``W`` of G's shape, decision sign(<W, G> + bias)): margins = |<W, G> + bias|, norms = ||W||_2,
    both of shape (1,). Multi-class (``W`` of shape (C, *G.shape), ``bias`` (C,), decision argmax): with t the
    decided class, margins[c] = s_t - s_c and norms[c] = ||W_t - W_c||_2 for c != t; entry t is (inf, 1).
    The decision on G^ equals the one on G whenever margins > norms * ||G^ - G||_2 for every entry.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> m, n = sj.theory.classifier_margins(jnp.array([1.0, -1.0]), 0.0, jnp.array([2.0, 0.5]))
      >>> float(m[0]), round(float(n[0]), 4)
      (1.5, 1.4142)
    """
    W = V.as_float_array("W", W)
    G = V.as_float_array("G", G)
    bias = jnp.asarray(bias, W.dtype)
    axes = tuple(range(-G.ndim, 0))
    if W.shape == G.shape:
        if bias.ndim != 0:
            raise ValueError(f"bias must be a scalar for a binary classifier, got shape {bias.shape}")
        s = jnp.sum(W * G) + bias
        return jnp.abs(s)[None], jnp.sqrt(jnp.sum(W * W))[None]
    if W.shape[1:] != G.shape:
        raise ValueError(f"W must have G's shape {G.shape} (binary) or (C, *{G.shape}) (multi-class), got {W.shape}")
    C = W.shape[0]
    bias = jnp.broadcast_to(bias, (C,))
    s = jnp.sum(W * G[None], axis=axes) + bias
    t = jnp.argmax(s)
    diff = W[t][None] - W
    margins = jnp.where(jnp.arange(C) == t, jnp.inf, s[t] - s)
    norms = jnp.where(jnp.arange(C) == t, 1.0, jnp.sqrt(jnp.sum(diff * diff, axis=axes)))
    return margins, norms


def _radius_from_affine(slope, intercept, limit):
    """sup{e >= 0 : slope e + intercept < limit} for slope >= 0 (0 when even e = 0 fails; inf for slope 0, e.g.
    an all-zero layer, when e = 0 holds), never NaN."""
    flat = jnp.where(intercept < limit, jnp.inf, 0.0)
    safe = jnp.where(slope > 0, slope, 1.0)
    return jnp.where(slope > 0, jnp.maximum((limit - intercept) / safe, 0.0), flat)


def lt_certified_radius(mu, stats: ModelStats, thresholds, margins, norms, soft: bool = False) -> jax.Array:
    """T9 for layered thresholding with fixed thresholds b_i: the supremum of eps_0 = ||E||^p_{2,inf} such that
    T5 holds at every layer (K_i + eps_{i-1} < b_i < |G_i^min| - C_i - eps_{i-1}) and
    margins > norms * ||G_K^LT - G_K||_2 bound, with ||G_K^LT - G_K||_2 <= sqrt(||G_K||_0) (eps_{K-1} + C_K
    [+ b_K]). Each eps_{i-1} is affine in eps_0, so the radius is a minimum of closed forms. Returns 0 when
    no perturbation is certified. Perturbations with eps_0 strictly below the radius cannot change the decision.

    Args:
      mu, stats: as in ``lt_bound``. thresholds: (K,) b_i. margins, norms: from ``classifier_margins``.
      soft: soft thresholding.

    Returns:
      The certified radius (scalar).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.theory import multilayer as tm
      >>> layers = (sj.Dense(jnp.eye(4)), sj.Dense(jnp.eye(4)))        # orthonormal layers: mu = 0
      >>> codes = (jnp.array([1.0, 0.0, 0.5, 0.0]), jnp.array([1.0, 0.0, 0.5, 0.0]))
      >>> stats = tm.layer_statistics(layers, codes)
      >>> r = tm.lt_certified_radius(jnp.zeros(2), stats, (0.25, 0.25), jnp.array([1.0]), jnp.array([1.0]))
      >>> round(float(r), 4)
      0.1768
    """
    k = stats.stripe_l0
    K = k.shape[0]
    dtype = jnp.result_type(stats.gmax.dtype, jnp.asarray(mu).dtype, float)
    mu = _vec("mu", mu, K, dtype)
    b = _vec("thresholds", thresholds, K, dtype)
    a, c = jnp.asarray(1.0, dtype), jnp.asarray(0.0, dtype)       # eps_{i-1} = a eps_0 + c
    r = jnp.asarray(jnp.inf, dtype)
    for i in range(K):
        gmax, gmin = stats.gmax[i].astype(dtype), stats.gmin[i].astype(dtype)
        C = (k[i] - 1) * mu[i] * gmax
        Kint = k[i] * mu[i] * gmax
        r = jnp.minimum(r, _radius_from_affine(a, c, b[i] - Kint))
        r = jnp.minimum(r, _radius_from_affine(a, c, gmin - C - b[i]))
        shift = C + (b[i] if soft else 0.0)
        if i + 1 < K:
            sp = jnp.sqrt(stats.patch_l0[i].astype(dtype))
            a, c = sp * a, sp * (c + shift)
        else:
            sl = jnp.sqrt(stats.l0[i].astype(dtype))
            m = jnp.asarray(margins, dtype) / jnp.asarray(norms, dtype)
            r = jnp.minimum(r, jnp.min(_radius_from_affine(sl * a, sl * (c + shift), m)))
    return r


def lbp_certified_radius(mu, stats: ModelStats, margins, norms) -> jax.Array:
    """T9 for layered BP: when every T6 condition holds (independent of the noise), LBP run with
    xi_i = 4 eps_{i-1}(r) (the budget r's bounds) keeps the decision for every ||E||^p_{2,inf} <= r as long as
    margins > norms * sqrt(||G_K||_0) 7.5^K r prod_{j<K} sqrt(p_j); the supremum of such r (0 when a condition
    fails).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.theory import multilayer as tm
      >>> layers = (sj.Dense(jnp.eye(4)), sj.Dense(jnp.eye(4)))        # orthonormal layers: mu = 0
      >>> codes = (jnp.array([1.0, 0.0, 0.5, 0.0]), jnp.array([1.0, 0.0, 0.5, 0.0]))
      >>> stats = tm.layer_statistics(layers, codes)
      >>> round(float(tm.lbp_certified_radius(jnp.zeros(2), stats, jnp.array([1.0]), jnp.array([1.0]))), 6)
      0.008889
    """
    lb = lbp_bound(mu, stats, 1.0)            # linear in eps_0: the bounds at eps_0 = 1 are the slopes
    slope = lb.l2[-1]
    m = jnp.asarray(margins, slope.dtype) / jnp.asarray(norms, slope.dtype)
    r = jnp.min(m / slope)
    return jnp.where(jnp.all(lb.condition) & jnp.isfinite(slope), jnp.maximum(r, 0.0), 0.0)


# ----------------------------------------------------------------------------------------------------
# test data: an incoherent two-layer convolutional model that meets T5-T7
# ----------------------------------------------------------------------------------------------------
BARKER13 = (1, 1, 1, 1, 1, -1, -1, 1, 1, -1, 1, -1, 1)
GOLOMB3 = (0, 1, 3)    # a Golomb ruler: all tap differences distinct -> sidelobes <= 1/3


def incoherent_conv_layers(N: int = 256, dtype=jnp.float32):
    """A 1-D circular two-layer ML-CSC model whose coherences are known exactly:

    D_1: the Barker-13 code (one filter, n = 13), mu(D_1) = 1/13 (aperiodic sidelobes <= 1);
    D_2: one sparse filter of length 4 with equal taps 1/sqrt(3) at the Golomb ruler {0, 1, 3}:
         every shifted copy overlaps in at most one tap, mu(D_2) = 1/3.
    G_1 = D_2 G_2 then holds 3 nonzeros per nonzero of G_2 (contrast preserved). With G_2 spikes at least
    28 apart, ||G_1||^s_{0,inf} = 3 < (1 + 13)/3 and ||G_2||^s_{0,inf} = 1 < (1 + 3)/3: T6 holds at both layers.

    Args:
      N: signal length (>= 25).
      dtype: float dtype.

    Returns:
      (D_1, D_2) ``Conv`` operators, boundary "circular", method "direct".

    Example:
      >>> import sparsejax as sj
      >>> D1, D2 = sj.theory.incoherent_conv_layers(64)
      >>> D1.filter_shape, D2.filter_shape, D2.signal_shape
      ((13,), (4,), (1, 64))
    """
    N = V.check_positive_int("N", N)
    if N < 25:
        raise ValueError(f"N must be >= 25 (2 x 13 - 1), got {N}")
    f1 = jnp.asarray(BARKER13, dtype)[None, None, :] / math.sqrt(13.0)
    f2 = jnp.zeros((1, 1, 4), dtype).at[0, 0, jnp.asarray(GOLOMB3)].set(1.0 / math.sqrt(3.0))
    return (Conv(f1, (1, N), boundary="circular", method="direct"),
            Conv(f2, (1, N), boundary="circular", method="direct"))
