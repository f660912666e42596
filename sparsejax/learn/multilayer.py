"""Unsupervised multi-layer convolutional (ML-CSC) dictionary learning (J. Sulam, V. Papyan, Y. Romano, M. Elad,
"Multilayer convolutional sparse modeling: pursuit and dictionary learning", IEEE TSP 2018).

Model: y = D_1 D_2 ... D_K G_K with every D_i a convolution (``Conv``, boundary "full", stride s_i, filters
(M_i, M_{i-1}, *k_i), M_0 = image channels): a CNN decoder whose layers are the dictionaries. Problem

    min_{D_i, G_K}  sum_n 1/2 ||y_n - D_1 ... D_K G_K,n||^2 + lam ||G_K,n||_1 + sum_i beta_i ||D_i||_1
    s.t.            every filter of D_i has unit l2 norm (all channels and taps together).

One learning step (``ml_dl_step``, pure and jitted, on an ``MLDLState``):

1. draw a mini-batch Y (PRNG key in the state);
2. projection pursuit (Sulam et al. TSP 2018) for each y: G_K = argmin 1/2||y - D^{(1,K)} G||^2 + lam ||G||_1,
   ``n_iter`` FISTA steps from 0 (``sparsejax.pursuit.ista.fista_solver`` run by ``sparsejax.solve.iterate``,
   which reports a diverged pursuit) on D^{(1,K)}, applied as the ``Chain`` (L = 1.05 x power iteration, which
   converges from below) or formed densely once per step (``ml_codes``); ``prox`` other than "soft" changes the
   shrinkage of the pursuit (e.g. "nonneg_soft": non-negative codes); no warm start (mini-batches are drawn at
   random, so warm codes would need a buffer of codes for every training image);
3. with G_K fixed, one step of any Optax optimiser on every D_i along the gradient (``jax.grad`` through the
   synthesis) of f(D_1, ..., D_K) = 1/(2B) sum_n ||y_n - D_1 ... D_K G_K,n||^2;
4. proximal step of the filter penalty: entries soft-thresholded, d <- S_{t_i}(d), with t_i = ``filter_l1[i]``
   the per-step threshold of layer i (for SGD with rate eta this is the proximal-gradient step of
   beta_i ||D_i||_1 with beta_i = t_i / eta); the zeros are exact;
5. renormalisation: ``normalize="layers"`` scales every filter of every D_i to unit norm (with the "full"
   boundary every atom of D_i then has unit norm); ``normalize="effective"`` does that and then rescales the
   filters of D_K so that the atoms of the effective dictionary D^{(1,K)} (the deepest molecules) have unit
   norm. Rescaling keeps the zeros exact.

Geometry: an ``sparsejax.multilayer.architecture.Architecture``. Layer i maps G_i (M_i, *P_i) to G_{i-1}
(M_{i-1}, *N_i) with N_i = (P_i - 1) s_i + k_i (a CNN with VALID padding run backwards); the signal size fixes
every code size. The molecules (atoms of D^{(1,j)}, ``sparsejax.multilayer.model.molecules``) have size E_1 where
E_j = k_j and E_l = s_l (E_{l+1} - 1) + k_l (``Architecture.molecule_sizes``).

MNIST architecture (``sparsejax.multilayer.architecture.MNIST_ML_CSC``, here also ``MNIST_ARCHITECTURE``): D_1 32
filters 7x7, D_2 128 filters 3x3, D_3 1024 filters 2x2 (the sizes of the MNIST dictionaries after Sulam et al.
TSP 2018), strides s_1 = 7, s_2 = 1, s_3 = 1: molecules 7x7, 21x21 and 28x28; the codes fit the 28x28 digit
exactly (G_1 32x4x4, G_2 128x2x2, G_3 1024x1x1: one deepest molecule is the whole digit). Why these strides:
molecules of 15x15 and 28x28 (the sizes shown with those dictionaries) need E_2 = 2 s_1 + 7 = 15 (s_1 = 4) and
E_3 = s_1 (s_2 + 2) + 7 = 28 (s_1 s_2 + 2 s_1 = 21), and no integer pair does both. Moreover a layer whose stride
exceeds its kernel (s_i > k_i) leaves gaps: e.g. s_1 = 3, s_2 = 5 gives molecules 13 and 28, but G_1
rows/columns 3 and 4 are never synthesised by D_2, so pixel rows/columns 13 and 14 (the centre of the digit) lie
outside every deepest molecule. Requiring s_i <= k_i and E_3 = 28 leaves s_1 (s_2 + 2) = 21 with s_2 <= 3:
s_1 = 7, s_2 = 1 only (D_1's atoms tile the digit).
"""
from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.conv.operator import Conv, normalize_filters
from sparsejax.learn.loop import run_loop
from sparsejax.multilayer.architecture import MNIST_ML_CSC, Architecture, Layer
from sparsejax.multilayer.layered import back_project
from sparsejax.multilayer.model import Chain, to_dense
from sparsejax.operators import Dense, power_iteration
from sparsejax.pursuit.ista import fista_solver
from sparsejax.solve import Solution, iterate

__all__ = [
    "LayerSpec",
    "MNIST_ARCHITECTURE",
    "NORMALIZE",
    "MLDLState",
    "MLDictLearnResult",
    "check_architecture",
    "layer_shapes",
    "molecule_sizes",
    "build_layers",
    "init_filters",
    "normalize_ml_filters",
    "PURSUITS",
    "ml_codes",
    "reconstruction_loss",
    "ml_dl_init",
    "ml_dl_step",
    "evaluate_ml",
    "learn_ml_dictionaries",
]

NORMALIZE = ("layers", "effective")
_L_MARGIN = 1.05          # FISTA step 1/(1.05 L): power iteration estimates L from below
_POWER_ITER = 50

LayerSpec = Layer                       # deprecated alias: sparsejax.multilayer.architecture.Layer
MNIST_ARCHITECTURE = MNIST_ML_CSC       # deprecated alias: sparsejax.multilayer.architecture.MNIST_ML_CSC


class MLDLState(NamedTuple):
    """State of ML-CSC dictionary learning (a pytree: checkpointable).

    Attributes:
      filters: (F_1, ..., F_K), F_i of shape (M_i, M_{i-1}, *k_i).
      opt_state: the Optax state.
      key: PRNG key (mini-batches).
      step: int32 count of completed steps.

    Example:
      >>> import jax, optax
      >>> import sparsejax as sj
      >>> f = sj.learn.multilayer.init_filters(jax.random.PRNGKey(0), [(4, 3, 2)], (1, 9, 9))
      >>> state = sj.learn.multilayer.ml_dl_init(f, optax.sgd(0.1), jax.random.PRNGKey(1))
      >>> int(state.step), state.filters[0].shape
      (0, (4, 1, 3, 3))
    """

    filters: Tuple[jax.Array, ...]
    opt_state: Any
    key: jax.Array
    step: jax.Array


class MLDictLearnResult(NamedTuple):
    """Result of ``learn_ml_dictionaries``.

    Attributes:
      filters: the learned filters (F_1, ..., F_K).
      layers: the ``Conv`` operators (D_1, ..., D_K) built from them.
      loop: the ``sparsejax.learn.loop.LoopResult`` (history: loss, recon_error, rep_sparsity_i,
        filter_sparsity_i, grad_norm, L, pursuit_diverged).

    Example:
      >>> import sparsejax as sj
      >>> sj.learn.multilayer.MLDictLearnResult._fields
      ('filters', 'layers', 'loop')
    """

    filters: Tuple[jax.Array, ...]
    layers: Tuple[Conv, ...]
    loop: Any


# ----------------------------------------------------------------------------------------------------
# geometry (static, pure Python): sparsejax.multilayer.architecture
# ----------------------------------------------------------------------------------------------------
def check_architecture(architecture, d: int) -> Tuple[Layer, ...]:
    """Deprecated: use ``Architecture(architecture)`` and ``Architecture.kernel_shapes(d)``.

    Checks ``architecture`` (a sequence of ``Layer`` / (n_filters, kernel, stride) tuples) for signals with ``d``
    spatial axes.

    Args:
      architecture: the layers, D_1 first.
      d: number of spatial axes of the signals (1 or 2).

    Returns:
      The layers with their kernels as ``d``-tuples of ints.

    Example:
      >>> import sparsejax as sj
      >>> sj.learn.multilayer.check_architecture([(4, 3, 2)], 2)
      (Layer(n_filters=4, kernel=(3, 3), stride=2),)
    """
    arch = Architecture(architecture)
    return tuple(Layer(layer.n_filters, kernel, layer.stride)
                 for layer, kernel in zip(arch, arch.kernel_shapes(d)))


def layer_shapes(architecture, signal_shape) -> Tuple[Tuple[tuple, tuple, tuple], ...]:
    """Deprecated: use ``Architecture(architecture).layer_shapes(signal_shape)``.

    Per layer (filter shape, signal shape, code shape) of the chain for signals of shape ``signal_shape``
    = (C, *N) (boundary "full": P = floor((N - k)/s) + 1).

    Args:
      architecture: the layers, D_1 first.
      signal_shape: (C, L) or (C, H, W).

    Returns:
      One ``LayerShape(filters, signal, code)`` per layer.

    Raises:
      ValueError: an architecture that does not fit the signals.

    Example:
      >>> import sparsejax as sj
      >>> [c for _, _, c in sj.learn.multilayer.layer_shapes(sj.learn.multilayer.MNIST_ARCHITECTURE, (1, 28, 28))]
      [(32, 4, 4), (128, 2, 2), (1024, 1, 1)]
    """
    return Architecture(architecture).layer_shapes(signal_shape)


def molecule_sizes(architecture, d: int = 2) -> Tuple[Tuple[int, ...], ...]:
    """Deprecated: use ``Architecture(architecture).molecule_sizes(d)``.

    Spatial sizes of the molecules of D^{(1,1)}, D^{(1,2)}, ..., D^{(1,K)}: for D^{(1,j)}, E_j = k_j,
    E_l = s_l (E_{l+1} - 1) + k_l for l = j-1, ..., 1.

    Example:
      >>> import sparsejax as sj
      >>> sj.learn.multilayer.molecule_sizes(sj.learn.multilayer.MNIST_ARCHITECTURE)
      ((7, 7), (21, 21), (28, 28))
    """
    return Architecture(architecture).molecule_sizes(d)


def build_layers(filters, signal_shape, strides) -> Tuple[Conv, ...]:
    """The ``Conv`` dictionaries (D_1, ..., D_K), boundary "full", direct convolution (exact zeros
    propagate, so back-projected codes have exact zeros), for signals of shape ``signal_shape``.

    Args:
      filters: (F_1, ..., F_K), F_i of shape (M_i, M_{i-1}, *k_i).
      signal_shape: (C, *N), the shape of one signal.
      strides: (s_1, ..., s_K) (``Architecture.strides``).

    Returns:
      The tuple of K ``Conv`` operators, D_1 synthesising the signal.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D1, D2 = sj.learn.multilayer.build_layers((jnp.ones((4, 1, 3, 3)), jnp.ones((6, 4, 2, 2))), (1, 9, 9), (2, 1))
      >>> D1.code_shape, D2.code_shape
      ((4, 4, 4), (6, 3, 3))
    """
    layers, sig = [], tuple(signal_shape)
    for F, s in zip(filters, strides):
        D = Conv(F, sig, stride=int(s), boundary="full", method="direct")
        layers.append(D)
        sig = tuple(D.code_shape)
    return tuple(layers)


def init_filters(key, architecture, signal_shape, dtype=jnp.float32) -> Tuple[jax.Array, ...]:
    """Random Gaussian filters, each scaled to unit norm, one array per layer.

    Args:
      key: PRNG key.
      architecture: an ``Architecture`` or a sequence of (n_filters, kernel, stride) layers.
      signal_shape: (C, *N), the shape of one signal.
      dtype: floating dtype of the filters.

    Returns:
      (F_1, ..., F_K), F_i of shape (M_i, M_{i-1}, *k_i).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> (F,) = sj.learn.multilayer.init_filters(jax.random.PRNGKey(0), [(4, 3, 2)], (1, 9, 9))
      >>> F.shape, bool(jnp.allclose(jnp.sum(F * F, axis=(1, 2, 3)), 1.0))
      ((4, 1, 3, 3), True)
    """
    shapes = Architecture(architecture).layer_shapes(signal_shape)
    keys = jax.random.split(key, len(shapes))
    return tuple(normalize_filters(jax.random.normal(k, s.filters, dtype)) for k, s in zip(keys, shapes))


# ----------------------------------------------------------------------------------------------------
# pure maths (jit / vmap / grad compatible)
# ----------------------------------------------------------------------------------------------------
def _impulses(code_shape, dtype):
    """Unit impulses at the first code position of each channel: shape (M, M, *P)."""
    M = code_shape[0]
    e = jnp.zeros((M,) + tuple(code_shape), dtype)
    idx = (jnp.arange(M), jnp.arange(M)) + (0,) * (len(code_shape) - 1)
    return e.at[idx].set(1.0)


def normalize_ml_filters(filters, signal_shape, strides, normalize: str = "layers"):
    """Renormalise (module doc, step 5): every filter of every layer to unit norm; with
    ``normalize="effective"`` also the deepest filters rescaled so that every atom of D^{(1,K)} has unit norm
    (the atom at code position 0 lies wholly inside the signal with the "full" boundary, and every atom of a
    channel is a shift of it).

    Args:
      filters: (F_1, ..., F_K).
      signal_shape: (C, *N), the shape of one signal.
      strides: (s_1, ..., s_K).
      normalize: "layers" or "effective".

    Returns:
      The renormalised filters.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> LM = sj.learn.multilayer
      >>> f = LM.init_filters(jax.random.PRNGKey(0), [(4, 3, 2), (6, 2, 1)], (1, 9, 9))
      >>> f = LM.normalize_ml_filters(f, (1, 9, 9), (2, 1), "effective")
      >>> atoms = sj.multilayer.molecules(LM.build_layers(f, (1, 9, 9), (2, 1)), 2).reshape(6, -1)
      >>> bool(jnp.allclose(jnp.linalg.norm(atoms, axis=1), 1.0, atol=1e-5))
      True
    """
    filters = tuple(normalize_filters(F) for F in filters)
    if normalize == "layers":
        return filters
    chain = Chain(build_layers(filters, signal_shape, strides))
    atoms = jax.vmap(chain.apply)(_impulses(chain.code_shape, filters[-1].dtype))
    n = jnp.sqrt(jnp.sum(atoms.reshape(atoms.shape[0], -1) ** 2, axis=1))
    n = jnp.where(n > 0, n, jnp.ones_like(n)).reshape((-1,) + (1,) * (filters[-1].ndim - 1))
    return filters[:-1] + (filters[-1] / n,)


PURSUITS = ("auto", "dense", "chain")
_DENSE_LIMIT = 1 << 24     # "auto": form D^{(1,K)} densely when it has at most this many entries


def _resolve_pursuit(layers, pursuit: str) -> str:
    if pursuit != "auto":
        return pursuit
    n = int(np.prod(layers[0].signal_shape)) * int(np.prod(layers[-1].code_shape))
    return "dense" if n <= _DENSE_LIMIT else "chain"


def ml_codes(layers, Y, lam, *, n_iter: int = 100, pursuit: str = "auto", L=None, prox="soft",
             return_solution: bool = False):
    """Projection pursuit (Sulam, Papyan, Romano, Elad, IEEE TSP 2018) for a batch:
    G_K,n = argmin 1/2||y_n - D^{(1,K)} G||^2 + lam ||G||_1 by ``n_iter`` FISTA steps from 0
    (``sparsejax.pursuit.ista.fista_solver`` run by ``sparsejax.solve.iterate``, mode "scan").

    ``pursuit="chain"`` applies D^{(1,K)} factor by factor (``sparsejax.multilayer.model.Chain``); ``"dense"``
    forms the (prod signal) x (prod code) matrix once (``sparsejax.multilayer.model.to_dense``, one synthesis per
    atom) and runs FISTA on it; L = 1.05 x power iteration (which converges from below) in both cases; the same
    iterates, and on the CPU much faster for MNIST-sized models (XLA runs small convolutions slowly inside
    loops); ``"auto"``: dense when the matrix has at most 2^24 entries.

    Args:
      layers: (D_1, ..., D_K).
      Y: signals (B, *signal_shape).
      lam: l1 weight, a scalar.
      n_iter: FISTA steps (static).
      pursuit: "auto" | "dense" | "chain".
      L: the Lipschitz constant to use instead of the power-iteration estimate.
      prox: the shrinkage of FISTA: "soft" (default, the Lasso), "nonneg_soft", "hard" or a callable
        ``(z, threshold) -> z``.
      return_solution: return the batched ``sparsejax.solve.Solution`` (flags per signal) instead of the codes.

    Returns:
      (G_K of shape (B, *code_shape_K), L), or (``Solution``, L) with ``return_solution``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> LM = sj.learn.multilayer
      >>> f = LM.init_filters(jax.random.PRNGKey(0), [(4, 3, 2)], (1, 9, 9))
      >>> Y = jax.random.normal(jax.random.PRNGKey(1), (5, 1, 9, 9))
      >>> sol, L = LM.ml_codes(LM.build_layers(f, (1, 9, 9), (2,)), Y, 0.1, n_iter=20, return_solution=True)
      >>> sol.codes.shape, bool(jnp.any(sol.diverged))
      ((5, 4, 4, 4), False)
    """
    layers = tuple(layers)
    op, L0 = _pursuit_operator(layers, pursuit, Y.dtype)
    L = L0 if L is None else L
    sol = _fista_batch(op, L, Y, lam, n_iter, tuple(layers[-1].code_shape), prox)
    return (sol if return_solution else sol.codes), L


def _pursuit_operator(layers, pursuit, dtype):
    """(operator FISTA runs on, L = 1.05 x power iteration): the Chain or the dense matrix."""
    op = Chain(layers)
    if _resolve_pursuit(layers, pursuit) == "dense":
        op = Dense(to_dense(op).astype(dtype))
    return op, _L_MARGIN * power_iteration(op.normal, tuple(op.code_shape), dtype, _POWER_ITER)


def _fista_batch(op, L, Y, lam, n_iter, code_shape, prox) -> Solution:
    """Exactly ``n_iter`` FISTA steps from 0 for every signal of Y; the Solution with codes (B, *code_shape)."""
    x0 = jnp.zeros(tuple(op.code_shape), Y.dtype)
    Yv = Y.reshape((Y.shape[0],) + tuple(op.signal_shape))

    def one(y):
        return iterate(fista_solver(op, y, lam, L, x0, prox=prox), max_iter=n_iter, tol=0.0, mode="scan")

    sol = jax.vmap(one)(Yv)
    return sol._replace(codes=sol.codes.reshape((Y.shape[0],) + tuple(code_shape)))


def reconstruction_loss(filters, GK, Y, signal_shape, strides) -> jax.Array:
    """f(D_1, ..., D_K) = 1/(2B) sum_n ||y_n - D_1 ... D_K G_K,n||^2 (the function the filters descend).

    Args:
      filters: (F_1, ..., F_K).
      GK: deepest codes (B, *code_shape_K).
      Y: signals (B, *signal_shape).
      signal_shape, strides: the geometry (``build_layers``).

    Returns:
      The scalar loss.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> f = (jnp.ones((2, 1, 3, 3)),)
      >>> GK, Y = jnp.zeros((4, 2, 4, 4)), jnp.ones((4, 1, 9, 9))
      >>> float(sj.learn.multilayer.reconstruction_loss(f, GK, Y, (1, 9, 9), (2,)))
      40.5
    """
    chain = Chain(build_layers(filters, signal_shape, strides))
    R = jax.vmap(chain.apply)(GK) - Y
    return 0.5 * jnp.sum(R * R) / Y.shape[0]


def _sparsity(x):
    return jnp.mean((x == 0).astype(jnp.float32))


def _code_metrics(layers, GK, Y, lam):
    """loss (mean Lasso objective), relative reconstruction error, representation sparsity per layer."""
    chain = Chain(tuple(layers))
    R = jax.vmap(chain.apply)(GK) - Y
    B = Y.shape[0]
    out = {"loss": (0.5 * jnp.sum(R * R) + lam * jnp.sum(jnp.abs(GK))) / B,
           "recon_error": jnp.sqrt(jnp.sum(R * R) / jnp.maximum(jnp.sum(Y * Y), jnp.finfo(Y.dtype).tiny))}
    Gs = jax.vmap(lambda g: back_project(layers, g))(GK)
    for i, G in enumerate(Gs):
        out[f"rep_sparsity_{i + 1}"] = _sparsity(G)
    return out


def ml_dl_init(filters, optimizer, key) -> MLDLState:
    """Initial state: the given filters (normalise them first), ``optimizer.init(filters)``, key, step 0.

    Args:
      filters: (F_1, ..., F_K).
      optimizer: an Optax ``GradientTransformation``.
      key: PRNG key of the mini-batches.

    Returns:
      An ``MLDLState``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> import sparsejax as sj
      >>> state = sj.learn.multilayer.ml_dl_init((jnp.ones((2, 1, 3, 3)),), optax.adam(1e-3), jax.random.PRNGKey(0))
      >>> int(state.step)
      0
    """
    filters = tuple(filters)
    return MLDLState(filters, optimizer.init(filters), key, jnp.asarray(0, jnp.int32))


@partial(jax.jit, static_argnames=("signal_shape", "strides", "batch_size", "optimizer", "n_iter", "normalize",
                                   "pursuit", "prox"))
def ml_dl_step(state: MLDLState, images, lam, filter_l1, *, signal_shape, strides, batch_size: int, optimizer,
               n_iter: int = 100, normalize: str = "layers", pursuit: str = "auto", prox="soft"):
    """One ML-CSC dictionary-learning step (module doc, steps 1-5).

    Args:
      state: ``MLDLState``.
      images: (N, *signal_shape) training images.
      lam: l1 weight of G_K (scalar).
      filter_l1: per-layer tuple of soft thresholds t_i >= 0 for the filter entries.
      signal_shape, strides: static geometry (tuples).
      batch_size: images per step (drawn without replacement).
      optimizer: an Optax ``GradientTransformation``.
      n_iter: FISTA steps of the pursuit.
      normalize: "layers" | "effective".
      pursuit: "auto" | "dense" | "chain" (``ml_codes``).
      prox: the pursuit's shrinkage (``ml_codes``).

    Returns:
      (new state, metrics): metrics with the codes of the batch under the filters *before* the update: loss
      (mean of 1/2||y - D G_K||^2 + lam ||G_K||_1), recon_error (||Y - D G_K||_F / ||Y||_F), rep_sparsity_i
      (fraction of zero entries of G_i = D^{(i+1,K)} G_K over the batch), pursuit_diverged (fraction of the
      batch whose pursuit diverged, ``sparsejax.solve.iterate``); after the update: filter_sparsity_i (fraction
      of zero entries of D_i), grad_norm; and L (the pursuit's Lipschitz constant).

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> import sparsejax as sj
      >>> LM = sj.learn.multilayer
      >>> Y = jax.random.normal(jax.random.PRNGKey(0), (8, 1, 9, 9))
      >>> state = LM.ml_dl_init(LM.init_filters(jax.random.PRNGKey(1), [(4, 3, 2)], (1, 9, 9)), optax.sgd(0.1),
      ...                       jax.random.PRNGKey(2))
      >>> state, metrics = LM.ml_dl_step(state, Y, 0.1, (0.0,), signal_shape=(1, 9, 9), strides=(2,), batch_size=4,
      ...                                optimizer=optax.sgd(0.1), n_iter=10)
      >>> int(state.step), float(metrics["pursuit_diverged"])
      (1, 0.0)
    """

    key, sub = jax.random.split(state.key)
    idx = jax.random.choice(sub, images.shape[0], (batch_size,), replace=False)
    Y = images[idx]
    layers = build_layers(state.filters, signal_shape, strides)
    sol, L = ml_codes(layers, Y, lam, n_iter=n_iter, pursuit=pursuit, prox=prox, return_solution=True)
    GK = sol.codes
    metrics = _code_metrics(layers, GK, Y, lam)
    metrics["pursuit_diverged"] = jnp.mean(sol.diverged.astype(jnp.float32))
    grads = jax.grad(reconstruction_loss)(state.filters, GK, Y, signal_shape, strides)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.filters)
    filters = optax.apply_updates(state.filters, updates)
    filters = tuple(shrink.soft(F, t) for F, t in zip(filters, filter_l1))
    filters = normalize_ml_filters(filters, signal_shape, strides, normalize)
    for i, F in enumerate(filters):
        metrics[f"filter_sparsity_{i + 1}"] = _sparsity(F)
    metrics["grad_norm"] = jnp.sqrt(sum(jnp.sum(g * g) for g in grads))
    metrics["L"] = L
    return MLDLState(filters, opt_state, key, state.step + 1), metrics


# ----------------------------------------------------------------------------------------------------
# front door
# ----------------------------------------------------------------------------------------------------
def _check_images(images):
    images = V.as_float_array("images", images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, C, L) (1-D signals) or (N, C, H, W) (2-D images), with an "
                         f"explicit channel axis (MNIST: (N, 1, 28, 28)), got shape {tuple(images.shape)}")
    if any(v < 1 for v in images.shape):
        raise ValueError(f"images must not have an empty dimension, got shape {tuple(images.shape)}")
    V.check_finite("images", images)
    return images


def _check_prox(prox):
    shrink.get(prox)
    return prox


def _check_init(init, shapes, dtype):
    if not isinstance(init, (tuple, list)) or len(init) != len(shapes):
        raise ValueError(f"init must be a tuple of {len(shapes)} filter arrays, got {type(init).__name__}")
    out = []
    for i, (F, shape) in enumerate(zip(init, shapes)):
        F = V.as_float_array(f"init[{i}]", F)
        V.check_shape(f"init[{i}]", F, shape.filters, f"filters of layer {i + 1}")
        V.check_finite(f"init[{i}]", F)
        out.append(F.astype(dtype))
    return tuple(out)


@partial(jax.jit, static_argnames=("signal_shape", "strides", "n_iter", "chunk", "pursuit", "prox"))
def _evaluate(filters, images, lam, *, signal_shape, strides, n_iter, chunk, pursuit, prox):
    layers = build_layers(filters, signal_shape, strides)
    chain = Chain(layers)
    op, L = _pursuit_operator(layers, pursuit, images.dtype)
    nb = images.shape[0] // chunk
    Yc = images.reshape((nb, chunk) + tuple(signal_shape))

    def body(Y):
        sol = _fista_batch(op, L, Y, lam, n_iter, tuple(layers[-1].code_shape), prox)
        GK = sol.codes
        R = jax.vmap(chain.apply)(GK) - Y
        Gs = jax.vmap(lambda g: back_project(layers, g))(GK)
        zeros = jnp.stack([jnp.sum((G == 0).astype(jnp.float32)) for G in Gs])
        return jnp.sum(R * R), jnp.sum(Y * Y), lam * jnp.sum(jnp.abs(GK)), zeros, jnp.sum(sol.diverged)

    r2, y2, l1, zeros, diverged = lax.map(body, Yc)
    return jnp.sum(r2), jnp.sum(y2), jnp.sum(l1), jnp.sum(zeros, axis=0), jnp.sum(diverged)


def evaluate_ml(filters, images, lam, strides, *, n_iter: int = 100, chunk: int = 50,
                pursuit: str = "auto", prox="soft") -> dict:
    """Code held-out ``images`` (N, *signal_shape) by projection pursuit (``ml_codes``) with the given filters
    and strides.

    Args:
      filters: (F_1, ..., F_K).
      images: (N, C, L) or (N, C, H, W), finite.
      lam: l1 weight of G_K (scalar >= 0).
      strides: (s_1, ..., s_K).
      n_iter: FISTA steps per image.
      chunk: images coded at a time (N is truncated to a multiple of ``chunk``).
      pursuit: "auto" | "dense" | "chain".
      prox: the pursuit's shrinkage (``ml_codes``).

    Returns:
      A dict: rel_error = ||Y - D^{(1,K)} G_K||_F / ||Y||_F, objective = mean Lasso objective,
      rep_sparsity = [fraction of zero entries of G_i, i = 1..K], filter_sparsity = [fraction of zero filter
      entries of D_i], n_images, pursuit_diverged (number of images whose pursuit diverged).

    Example:
      >>> import jax
      >>> import sparsejax as sj
      >>> LM = sj.learn.multilayer
      >>> f = LM.init_filters(jax.random.PRNGKey(0), [(4, 3, 2)], (1, 9, 9))
      >>> Y = jax.random.normal(jax.random.PRNGKey(1), (10, 1, 9, 9))
      >>> out = LM.evaluate_ml(f, Y, 0.1, (2,), n_iter=20, chunk=5)
      >>> out["n_images"], out["pursuit_diverged"], 0 < out["rel_error"] < 1
      (10, 0, True)
    """
    if not isinstance(filters, (tuple, list)) or not isinstance(strides, (tuple, list)) or len(filters) != len(strides):
        raise ValueError(f"filters and strides must be sequences with one entry per layer, got {type(filters).__name__}"
                         f" and {type(strides).__name__} of lengths {len(filters) if isinstance(filters, (tuple, list)) else '?'}"
                         f" and {len(strides) if isinstance(strides, (tuple, list)) else '?'}")
    for i, (F, s) in enumerate(zip(filters, strides)):
        V.check_finite(f"filters[{i}]", V.as_float_array(f"filters[{i}]", F))
        V.check_positive_int(f"strides[{i}]", s)
    images = _check_images(images)
    V.check_choice("pursuit", pursuit, PURSUITS)
    prox = _check_prox(prox)
    n_iter = V.check_positive_int("n_iter", n_iter)
    filters = tuple(jnp.asarray(F) for F in filters)
    strides = tuple(int(s) for s in strides)
    chunk = min(V.check_positive_int("chunk", chunk), images.shape[0])
    n = (images.shape[0] // chunk) * chunk
    dtype = jnp.result_type(images.dtype, *[F.dtype for F in filters])
    signal_shape = tuple(images.shape[1:])
    lam = V.check_nonnegative_scalar("lam", lam).astype(dtype)
    r2, y2, l1, zeros, diverged = _evaluate(tuple(F.astype(dtype) for F in filters), images[:n].astype(dtype), lam,
                                            signal_shape=signal_shape, strides=strides, n_iter=n_iter, chunk=chunk,
                                            pursuit=pursuit, prox=prox)
    layers = build_layers(filters, signal_shape, strides)
    sizes = [n * int(np.prod(D.code_shape)) for D in layers]
    return {"rel_error": float(np.sqrt(r2 / y2)), "objective": float((0.5 * r2 + l1) / n),
            "rep_sparsity": [float(z / s) for z, s in zip(np.asarray(zeros), sizes)],
            "filter_sparsity": [float(np.mean(np.asarray(F) == 0)) for F in filters], "n_images": n,
            "pursuit_diverged": int(diverged)}


def learn_ml_dictionaries(images, architecture, *, lam, filter_l1=0.0, n_steps: int = 100, batch_size: int = 32,
                          key=None, optimizer=None, init=None, n_iter: int = 100, normalize: str = "layers",
                          pursuit: str = "auto", prox="soft",
                          checkpoint_dir=None, checkpoint_every: int = 50, resume: bool = True,
                          progress: bool = True, stop_after: Optional[int] = None) -> MLDictLearnResult:
    """Learn the ML-CSC dictionaries D_1, ..., D_K on ``images`` (unsupervised; Sulam, Papyan, Romano, Elad,
    IEEE TSP 2018; module doc).

    Args:
      images: (N, C, H, W) images or (N, C, L) signals (finite; MNIST: ``sparsejax.datasets.mnist.load_mnist``
        layout).
      architecture: an ``Architecture`` or a sequence of (n_filters, kernel, stride) layers, D_1 first;
        ``sparsejax.multilayer.architecture.MNIST_ML_CSC`` is the MNIST model (strides 7, 1, 1).
      lam: l1 weight of the deepest code G_K (scalar >= 0).
      filter_l1: soft threshold applied to the filter entries after each step, one value or one per layer.
      n_steps: mini-batch steps.
      batch_size: images per step (<= N).
      key: PRNG key (initial filters and mini-batches); default PRNGKey(0).
      optimizer: Optax optimiser (default ``optax.adam(1e-3)``).
      init: initial filters (F_1, ..., F_K) instead of random ones (normalised first).
      n_iter: FISTA steps of the projection pursuit per mini-batch.
      normalize: "layers" or "effective" (module doc, step 5).
      pursuit: "auto" | "dense" | "chain": how FISTA applies D^{(1,K)} (``ml_codes``).
      prox: the pursuit's shrinkage: "soft" (default), "nonneg_soft", "hard" or a callable (``ml_codes``).
      checkpoint_dir, checkpoint_every, resume, progress, stop_after: passed to ``sparsejax.learn.loop.run_loop``
        (checkpoint of the full state, exact resume, divergence stop keeping the last good checkpoint); the
        settings above (hashes of the images and initial filters) are recorded, and resuming a folder written
        with other settings raises ``ConfigMismatchError`` (``resume="force"`` overrides).

    Returns:
      ``MLDictLearnResult(filters, layers, loop)``.

    Raises:
      ValueError / TypeError before any compilation: NaN / infinite images, a wrong shape, an architecture
      that does not fit the images, batch_size > N, negative lam or filter_l1, a bad ``normalize`` or ``prox``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> Y = jax.random.normal(jax.random.PRNGKey(0), (16, 1, 9, 9))
      >>> res = sj.learn.multilayer.learn_ml_dictionaries(Y, [(4, 3, 2), (6, 2, 1)], lam=0.1, filter_l1=0.01,
      ...                                                  n_steps=3, batch_size=8, n_iter=10, progress=False)
      >>> [F.shape for F in res.filters], bool(jnp.mean(res.filters[0] == 0) > 0)
      ([(4, 1, 3, 3), (6, 4, 2, 2)], True)
    """
    images = _check_images(images)
    signal_shape = tuple(int(v) for v in images.shape[1:])
    arch = Architecture(architecture)
    shapes = arch.layer_shapes(signal_shape)
    strides = arch.strides
    N = images.shape[0]
    batch_size = V.check_positive_int("batch_size", batch_size)
    if batch_size > N:
        raise ValueError(f"batch_size ({batch_size}) must not exceed the number of images ({N})")
    V.check_positive_int("n_steps", n_steps)
    V.check_positive_int("n_iter", n_iter)
    V.check_choice("normalize", normalize, NORMALIZE)
    V.check_choice("pursuit", pursuit, PURSUITS)
    prox = _check_prox(prox)
    dtype = images.dtype
    lam = V.check_nonnegative_scalar("lam", lam).astype(dtype)
    filter_l1 = V.per_layer_scalars("filter_l1", filter_l1, len(arch), dtype)
    key = jax.random.PRNGKey(0) if key is None else key
    key, sub = jax.random.split(key)
    f0 = init_filters(sub, arch, signal_shape, dtype) if init is None else _check_init(init, shapes, dtype)
    f0 = normalize_ml_filters(f0, signal_shape, strides, normalize)
    if optimizer is None:
        optimizer = optax.adam(1e-3)

    state = ml_dl_init(f0, optimizer, key)
    step = partial(ml_dl_step, images=images, lam=lam, filter_l1=filter_l1, signal_shape=signal_shape,
                   strides=strides, batch_size=batch_size, optimizer=optimizer, n_iter=n_iter, normalize=normalize,
                   pursuit=pursuit, prox=prox)
    config = None
    if checkpoint_dir is not None:   # recorded in the checkpoints: a resume with other settings is refused
        config = {"learner": "learn_ml_dictionaries", "architecture": tuple(arch),
                  "lam": float(str(np.asarray(lam))),
                  "filter_l1": [float(v) for v in filter_l1], "batch_size": batch_size, "images": images,
                  "init": f0, "key": key, "n_iter": n_iter, "normalize": normalize, "pursuit": pursuit,
                  "prox": prox if isinstance(prox, str) else getattr(prox, "__name__", type(prox).__name__),
                  "optimizer": optimizer}
    loop = run_loop(step, state, n_steps, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                    resume=resume, progress=progress, desc="ML-CSC dictionary learning", stop_after=stop_after,
                    config=config)
    filters = tuple(loop.state.filters)
    return MLDictLearnResult(filters, build_layers(filters, signal_shape, strides), loop)
