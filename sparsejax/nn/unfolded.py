"""Unfolded pursuits as Flax (linen) networks: LISTA, ML-ISTA, ML-FISTA, layered BP, ML-LISTA and the CNN.

Every network is the library's pursuit run for a fixed number of steps, never a second copy of the maths:

* the layers are ``sparsejax.conv.operator.Conv`` operators with boundary "full" and stride s, so D_i^T (``adjoint``)
  is the VALID strided correlation, i.e. the CNN layer, and D_i (``apply``) the transposed convolution;
* the thresholding start is the first ML-ISTA sweep from G = 0: G_i = S+_{r_i lam_i}(r_i D_i^T G_{i-1})
  = ReLU(r_i D_i^T G_{i-1} + b_i), with the shrinkage parametrised by the CNN bias b_i = -r_i lam_i
  (REFERENCE section 3: S+_b = ReLU(. - b));
* ML-ISTA / ML-FISTA steps are ``sparsejax.multilayer.layered.ml_ista_solver`` (which calls ``ml_ista_step``,
  ``back_project``, ``layer_prox_grad_step``); layered BP steps are ``layer_prox_grad_step``.

Networks (arch = sequence of (filters, kernel, stride) conv layers, then a linear classifier on G_K):

======================  ========================================================================================
``CNN``                 G_i = ReLU(D_i^T G_{i-1} + b_i)  (layered thresholding, REFERENCE A5)
``MLISTANet(T)``        thresholding pass, then T ML-ISTA sweeps (A8): exactly T + 1 ML-ISTA iterations from 0
``MLFISTANet(T)``       the same with ML-FISTA momentum on G_K: exactly T + 1 ML-FISTA iterations from 0
``LBPNet(T)``           layer by layer: thresholding start, then T ISTA steps on
                        min 1/2||G_{i-1} - D_i G||^2 + lam_i ||G||_1 (+ G >= 0) (A6, unfolded)
``MLLISTANet(T)``       ML-ISTA with untied filters: analysis W_i (used by D_i^T, the CNN filters) and synthesis
                        A_i (used by D_i and the back-projection), A_i initialised to W_i
``LISTA(n, m, T)``      Gregor-LeCun (A10): Z_0 = h_th(W_e x), Z_t = h_th(W_e x + S Z_{t-1}); ``lista_params``
                        gives the ISTA values W_e = D^T/L, S = I - D^T D/L, th = lam/L
======================  ========================================================================================

T = 0 gives exactly the CNN with the same weights for every convolutional network.

Parameters and steps. The published ml-ista code learns a step r_i per layer. A learned step is one extra
scalar per layer, so by default the steps are FIXED at r_i = 1 (``learn_steps=False``): the scale of the
filters, which is learned, plays the role of the step (r D^T D with ||D||^2 free), and ML-ISTA, ML-FISTA and
LBP then have exactly the CNN's parameters (filters W_i, biases b_i, classifier). ``learn_steps=True`` adds
K scalars ``r1 .. rK`` (initialised to 1 and used as they are, as in the reference code; the shrinkage
threshold stays -b_i). ML-LISTA adds the K synthesis filter banks A_i.

Layout: images are channels-first, a batch x of shape (B, C, H, W) (per image the (C, H, W) signal of
``sparsejax.conv.operator``). The networks run the pursuit functions on the whole batch at once, with the layers as
``sparsejax.conv.operator.BatchConv`` operators (block-diagonal over images: one batched convolution per map, with
hand-written VJPs), and the T unfoldings unrolled: on XLA:CPU a ``vmap`` of the one-image pursuit with a
``fori_loop`` ran 10x (forward) to 20x (training step) slower. The pure functions below work on either
operator (``conv_layers(..., batch=B)`` or ``jax.vmap`` over ``Conv`` s).

References: J. Sulam, A. Aberdam, A. Beck, M. Elad, "On multi-layer basis pursuit, efficient algorithms and
convolutional neural networks", IEEE TPAMI 2020; K. Gregor, Y. LeCun, "Learning fast approximations of
sparse coding", ICML 2010.
"""
from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from sparsejax import shrink
from sparsejax.conv.operator import BatchConv, Conv, conv_code_shape
from sparsejax.multilayer.layered import (
    MLFISTAState,
    layer_prox_grad_step,
    ml_ista_solver,
)
from sparsejax.operators import Dense, LinearOperator

__all__ = ["MNIST_ARCH", "check_arch", "layer_shapes", "conv_layers", "threshold_pass", "unfolded_ml_ista",
           "unfolded_lbp", "CNN", "MLISTANet", "MLFISTANet", "LBPNet", "MLLISTANet", "LISTA", "lista_params",
           "count_params", "NETWORKS"]

# the MNIST network of the ml-ista paper: 28 -> 12 -> 4 -> 1
MNIST_ARCH = ((32, 6, 2), (64, 6, 2), (512, 4, 1))


# ----------------------------------------------------------------------------------------------------
# geometry (static, checked before tracing)
# ----------------------------------------------------------------------------------------------------
def _pos_int(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return v


def check_arch(arch, input_shape) -> Tuple[Tuple[Tuple[int, int, int], ...], Tuple[int, int, int]]:
    """Validate ``arch`` (sequence of (filters, kernel, stride)) and ``input_shape`` (C, H, W)."""
    try:
        arch = tuple(tuple(layer) for layer in arch)
    except TypeError:
        raise TypeError(f"arch must be a sequence of (filters, kernel, stride) tuples, got {arch!r}") from None
    if not arch:
        raise ValueError("arch must hold at least one (filters, kernel, stride) layer, got an empty sequence")
    for i, layer in enumerate(arch):
        if len(layer) != 3:
            raise ValueError(f"arch[{i}] must be (filters, kernel, stride), got {layer!r}")
        for nm, v in zip(("filters", "kernel", "stride"), layer):
            _pos_int(f"arch[{i}].{nm}", v)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    for nm, v in zip(("C", "H", "W"), input_shape):
        _pos_int(f"input_shape.{nm}", v)
    return arch, input_shape


def layer_shapes(arch, input_shape) -> Tuple[Tuple[int, ...], ...]:
    """Signal shapes (C_i, H_i, W_i) of every layer and, last, the code shape of the deepest layer.

    Layer i maps codes of shape ``shapes[i + 1]`` to signals of shape ``shapes[i]`` (boundary "full",
    P = floor((N - k)/s) + 1: a CNN layer with VALID padding)."""
    arch, shape = check_arch(arch, input_shape)
    shapes = [shape]
    for i, (M, k, s) in enumerate(arch):
        try:
            shape = conv_code_shape((M, shape[0], k, k), shape, stride=s, boundary="full")
        except ValueError as e:
            raise ValueError(f"arch[{i}] = {(M, k, s)} does not fit its input of shape {shape}: {e}") from None
        shapes.append(tuple(shape))
    return tuple(shapes)


def conv_layers(filters: Sequence[jax.Array], arch, input_shape, batch: int | None = None) -> Tuple[Any, ...]:
    """The tuple (D_1, ..., D_K) of ``Conv`` operators (boundary "full", direct method) for ``filters``;
    with ``batch`` = B, the ``BatchConv`` operators acting on B images at once."""
    shapes = layer_shapes(arch, input_shape)
    layers = tuple(Conv(W, shapes[i], stride=arch[i][2], boundary="full", method="direct")
                   for i, W in enumerate(filters))
    return layers if batch is None else tuple(BatchConv(D, batch) for D in layers)


# ----------------------------------------------------------------------------------------------------
# the pursuits (pure functions on any layer operators: one image with Conv, a batch with BatchConv)
# ----------------------------------------------------------------------------------------------------
def threshold_pass(layers, y, lams, steps, prox=shrink.nonneg_soft) -> Tuple[jax.Array, ...]:
    """G_i = P_{r_i lam_i}(r_i D_i^T G_{i-1}), G_0 = y: layered thresholding (A5), which is also the first
    ML-ISTA sweep from G = 0. With P = S+, r_i = 1 and lam_i = -b_i it is the CNN ReLU(D_i^T G_{i-1} + b_i)."""
    out, prev = [], y
    for D, lam, r in zip(layers, lams, steps):
        prev = prox(r * D.adjoint(prev), r * lam)
        out.append(prev)
    return tuple(out)


def unfolded_ml_ista(layers, y, lams, steps, T: int, fista: bool = False) -> Tuple[jax.Array, ...]:
    """T + 1 non-negative ML-ISTA (``fista``: ML-FISTA) iterations from G = 0 (REFERENCE A8).

    The first iteration is ``threshold_pass``; the remaining T use ``sparsejax.multilayer.layered.ml_ista_solver``.
    Equal to ``sparsejax.multilayer.layered.ml_ista(layers, y, lams, steps=steps, max_iter=T + 1, mode="scan",
    nonneg=True, fista=fista).state.G``. Returns (G_1, ..., G_K)."""
    G0 = threshold_pass(layers, y, lams, steps)
    solver = ml_ista_solver(layers, y, lams, steps, G0, nonneg=True, fista=fista)
    state = solver.init()
    if fista:   # the state after the first iteration from 0: t_1 = (1 + sqrt(5)) / 2, z_1 = G_K
        state = MLFISTAState(G0, G0[-1], jnp.asarray(0.5 * (1.0 + math.sqrt(5.0)), G0[-1].dtype))
    for _ in range(T):   # unrolled: T is small and static, and XLA:CPU runs convolutions in loops ~10x slower
        state = solver.step(state)
    return tuple(state.G)


def unfolded_lbp(layers, y, lams, steps, T: int) -> Tuple[jax.Array, ...]:
    """Unfolded layered BP (REFERENCE A6): for i = 1..K, T + 1 non-negative ISTA steps from 0 on
    min_G 1/2||G_{i-1} - D_i G||^2 + lam_i ||G||_1, G >= 0 (step r_i), G_0 = y; the first step is the
    thresholding start S+_{r_i lam_i}(r_i D_i^T G_{i-1}). Returns (G_1, ..., G_K)."""
    out, prev = [], y
    for D, lam, r in zip(layers, lams, steps):
        G = shrink.nonneg_soft(r * D.adjoint(prev), r * lam)
        target = prev
        for _ in range(T):   # unrolled (see unfolded_ml_ista)
            G = layer_prox_grad_step(D, G, target, lam, r, shrink.nonneg_soft)
        out.append(G)
        prev = G
    return tuple(out)


@jax.tree_util.register_pytree_node_class
class _Untied(LinearOperator):
    """D with untied maps: apply = ``synthesis.apply``, adjoint = ``analysis.adjoint`` (ML-LISTA). Equal to
    the ``Conv`` of the analysis filters when the two filter banks are equal."""

    def __init__(self, synthesis: Conv, analysis: Conv):
        self.synthesis, self.analysis = synthesis, analysis

    code_shape = property(lambda self: self.analysis.code_shape)
    signal_shape = property(lambda self: self.analysis.signal_shape)
    dtype = property(lambda self: self.analysis.dtype)

    def apply(self, codes):
        return self.synthesis.apply(codes)

    def adjoint(self, signal):
        return self.analysis.adjoint(signal)

    def tree_flatten(self):
        return (self.synthesis, self.analysis), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


# ----------------------------------------------------------------------------------------------------
# Flax modules
# ----------------------------------------------------------------------------------------------------
def _filter_init(scale: float):
    """N(0, (scale / sqrt(fan_in))^2) filters, fan_in = C k k (the ml-ista reference initialisation)."""
    def init(key, shape, dtype=jnp.float32):
        fan_in = math.prod(shape[1:])
        return (scale / math.sqrt(fan_in)) * jax.random.normal(key, shape, dtype)
    return init


class _ConvNet(nn.Module):
    """Base of the convolutional unfolded networks (see the module docstring).

    Attributes:
      arch: sequence of (filters, kernel, stride) conv layers (default ``MNIST_ARCH``).
      T: number of unfoldings (ignored by ``CNN``); T = 0 is the CNN.
      input_shape: (C, H, W) of one image.
      num_classes: outputs of the linear classifier on the flattened G_K.
      learn_steps: learn one step r_i per layer (K extra scalars); default fixed r_i = 1.
      first_scale: std of the first layer's filters times sqrt(fan_in) (others: 1), as in the reference.
      param_dtype: dtype of the parameters.

    Call: ``logits = net.apply(variables, x)``, x of shape (B, C, H, W); ``return_codes=True`` also returns
    the codes (G_1, ..., G_K), each (B, *code_shape).
    """

    arch: Sequence[Tuple[int, int, int]] = MNIST_ARCH
    T: int = 0
    input_shape: Tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10
    learn_steps: bool = False
    first_scale: float = 0.1
    param_dtype: Any = jnp.float32

    pursuit: ClassVar[str] = "cnn"
    untied: ClassVar[bool] = False

    def _encode(self, layers, y, lams, steps):
        if self.pursuit == "cnn" or self.T == 0:
            return threshold_pass(layers, y, lams, steps)
        if self.pursuit in ("ml_ista", "ml_fista"):
            return unfolded_ml_ista(layers, y, lams, steps, self.T, fista=self.pursuit == "ml_fista")
        return unfolded_lbp(layers, y, lams, steps, self.T)

    @nn.compact
    def __call__(self, x, return_codes: bool = False):
        if isinstance(self.T, bool) or not isinstance(self.T, int) or self.T < 0:
            raise ValueError(f"T (number of unfoldings) must be a non-negative int, got {self.T!r}")
        shapes = layer_shapes(self.arch, self.input_shape)
        arch = tuple(tuple(a) for a in self.arch)
        x = jnp.asarray(x)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ValueError(f"x must be a batch of images of shape (B, {', '.join(map(str, self.input_shape))})"
                             f" (channels first), got {tuple(x.shape)}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"x must be a floating-point array, got dtype {x.dtype}")
        pd = self.param_dtype
        W, A, b, r = [], [], [], []
        for i, (M, k, _) in enumerate(arch):
            C = shapes[i][0]
            scale = self.first_scale if i == 0 else 1.0
            Wi = self.param(f"W{i + 1}", _filter_init(scale), (M, C, k, k), pd)
            W.append(Wi)
            if self.untied:
                A.append(self.param(f"A{i + 1}", lambda _key, W=Wi: W))
            b.append(self.param(f"b{i + 1}", nn.initializers.zeros, (M, 1, 1), pd))
            r.append(self.param(f"r{i + 1}", nn.initializers.ones, (), pd) if self.learn_steps
                     else jnp.ones((), pd))
        # shrinkage S+_{r lam} with r lam = -b: the CNN bias
        lams = tuple(-bi / ri for bi, ri in zip(b, r))
        x = x.astype(jnp.result_type(x.dtype, pd))

        layers = conv_layers(W, arch, self.input_shape, batch=x.shape[0])
        if self.untied:
            synth = conv_layers(A, arch, self.input_shape, batch=x.shape[0])
            layers = tuple(_Untied(Ds, D) for Ds, D in zip(synth, layers))
        codes = self._encode(layers, x, lams, tuple(r))
        feats = codes[-1].reshape(codes[-1].shape[0], -1)
        logits = nn.Dense(self.num_classes, param_dtype=pd, name="classifier")(feats)
        return (logits, codes) if return_codes else logits


class CNN(_ConvNet):
    """The plain CNN: layered thresholding G_i = ReLU(D_i^T G_{i-1} + b_i) + linear classifier (T ignored)."""
    pursuit: ClassVar[str] = "cnn"


class MLISTANet(_ConvNet):
    """Unfolded non-negative ML-ISTA: T + 1 ML-ISTA iterations from 0 (Sulam et al. TPAMI 2020)."""
    pursuit: ClassVar[str] = "ml_ista"


class MLFISTANet(_ConvNet):
    """Unfolded non-negative ML-FISTA: T + 1 ML-FISTA iterations from 0 (momentum on G_K)."""
    pursuit: ClassVar[str] = "ml_fista"


class LBPNet(_ConvNet):
    """Unfolded layered BP: per layer T + 1 non-negative ISTA steps from 0 (the first is the CNN layer)."""
    pursuit: ClassVar[str] = "lbp"


class MLLISTANet(_ConvNet):
    """ML-LISTA: ML-ISTA with untied synthesis filters A_i (K extra filter banks, initialised to W_i)."""
    pursuit: ClassVar[str] = "ml_ista"
    untied: ClassVar[bool] = True


NETWORKS = {"cnn": CNN, "ml_ista": MLISTANet, "ml_fista": MLFISTANet, "lbp": LBPNet, "ml_lista": MLLISTANet}


class LISTA(nn.Module):
    """LISTA (Gregor-LeCun 2010, REFERENCE A10): Z_0 = h_th(W_e x), Z_t = h_th(W_e x + S Z_{t-1}), t = 1..T.

    Attributes:
      n: signal dimension; m: number of atoms (code dimension); T: number of recurrent layers.
      prox: shrinkage name for ``sparsejax.shrink.get`` ("soft", "nonneg_soft", "hard").
      param_dtype: parameter dtype.

    Parameters ``W_e`` (m, n), ``S`` (m, m), ``theta`` (m,) (one threshold per atom). The default init is
    generic (W_e ~ N(0, 1/n), S = 0, theta = 0); ``lista_params(D, lam)`` gives the ISTA values, with which
    LISTA(T) equals T + 1 ISTA steps from 0 with step 1/L.

    Call: ``Z = lista.apply(variables, x)``, x of shape (B, n) (or (n,)); returns codes (B, m) (or (m,)).
    """

    n: int
    m: int
    T: int
    prox: str = "soft"
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        _pos_int("n", self.n)
        _pos_int("m", self.m)
        if isinstance(self.T, bool) or not isinstance(self.T, int) or self.T < 0:
            raise ValueError(f"T must be a non-negative int, got {self.T!r}")
        P: Callable = shrink.get(self.prox)
        x = jnp.asarray(x)
        if x.ndim not in (1, 2) or x.shape[-1] != self.n:
            raise ValueError(f"x must have shape (B, {self.n}) or ({self.n},), got {tuple(x.shape)}")
        pd = self.param_dtype
        We = self.param("W_e", nn.initializers.normal(1.0 / math.sqrt(self.n)), (self.m, self.n), pd)
        S = self.param("S", nn.initializers.zeros, (self.m, self.m), pd)
        th = self.param("theta", nn.initializers.zeros, (self.m,), pd)

        def one(xi):
            B = We @ xi
            Z = P(B, th)
            for _ in range(self.T):   # unrolled, as the convolutional networks
                Z = P(B + S @ Z, th)
            return Z

        return one(x) if x.ndim == 1 else jax.vmap(one)(x)


def lista_params(D, lam, L=None) -> dict:
    """LISTA variables at the ISTA values for the dictionary D (n, m) and l1 weight lam (REFERENCE A10):
    W_e = D^T / L, S = I - D^T D / L, theta = lam / L (per atom), L = ||D||_2^2 by default.

    Returns ``{"params": {"W_e", "S", "theta"}}`` for ``LISTA(n, m, T).apply``."""
    op = D if isinstance(D, Dense) else Dense(D)
    atoms = op.atoms
    L = op.lipschitz() if L is None else jnp.asarray(L, atoms.dtype)
    m = atoms.shape[1]
    lam = jnp.broadcast_to(jnp.asarray(lam, atoms.dtype), (m,))
    return {"params": {"W_e": atoms.T / L, "S": jnp.eye(m, dtype=atoms.dtype) - op.gram() / L,
                       "theta": lam / L}}


def count_params(variables) -> int:
    """Number of scalar parameters in a Flax variables dict (or any pytree of arrays)."""
    tree = variables.get("params", variables) if isinstance(variables, dict) else variables
    return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree)))
