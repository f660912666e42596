"""The one Architecture type (sparsejax.multilayer.architecture): validation before tracing, layer shapes equal to
the two former layer_shapes functions (sparsejax.nn.unfolded and sparsejax.learn.multilayer), old forms accepted."""
import pickle

import jax
import pytest

from sparsejax.conv.operator import conv_code_shape
from sparsejax.learn import multilayer as LM
from sparsejax.multilayer.architecture import (
    MNIST_ML_CSC,
    MNIST_ML_ISTA,
    Architecture,
    Layer,
    LayerShape,
)
from sparsejax.nn import unfolded as U


def _shapes_by_hand(arch, input_shape):
    """Per layer (filters, signal, code) straight from conv_code_shape, boundary "full" (the former code)."""
    out, sig = [], tuple(input_shape)
    d = len(sig) - 1
    for M, k, s in arch:
        k = tuple(k) if isinstance(k, tuple) else (k,) * d
        fshape = (M, sig[0]) + k
        code = tuple(conv_code_shape(fshape, sig, stride=s, boundary="full"))
        out.append((fshape, sig, code))
        sig = code
    return out


def test_mnist_constants():
    assert MNIST_ML_ISTA == ((32, 6, 2), (64, 6, 2), (512, 4, 1))
    assert MNIST_ML_CSC == ((32, 7, 7), (128, 3, 1), (1024, 2, 1))
    # the old names are the same objects
    assert U.MNIST_ARCH is MNIST_ML_ISTA and LM.MNIST_ARCHITECTURE is MNIST_ML_CSC
    assert LM.LayerSpec is Layer
    assert [s.code for s in MNIST_ML_ISTA.layer_shapes((1, 28, 28))] == [(32, 12, 12), (64, 4, 4), (512, 1, 1)]
    assert MNIST_ML_CSC.molecule_sizes() == ((7, 7), (21, 21), (28, 28))


@pytest.mark.parametrize("arch,input_shape", [
    (MNIST_ML_ISTA, (1, 28, 28)),
    (MNIST_ML_CSC, (1, 28, 28)),
    (((6, 5, 2), (10, 4, 1)), (1, 17)),            # 1-D signals
    (((4, (3, 2), 2), (6, 2, 1)), (2, 11, 9)),      # per-axis kernel, 2 channels
])
def test_layer_shapes_equal_the_old_functions(arch, input_shape):
    new = Architecture(arch).layer_shapes(input_shape)
    assert new == tuple(_shapes_by_hand(arch, input_shape))
    assert all(isinstance(s, LayerShape) for s in new)
    # the learn.multilayer form: (filter shape, signal shape, code shape) per layer
    assert LM.layer_shapes(arch, input_shape) == new
    if len(input_shape) == 3 and not any(isinstance(k, tuple) for _, k, _ in arch):
        # the nn.unfolded form: signal shapes, then the deepest code shape
        assert U.layer_shapes(arch, input_shape) == tuple(s.signal for s in new) + (new[-1].code,)


def test_old_forms_accepted():
    plain = ((4, 3, 2), (6, 2, 1))
    for form in (plain, list(plain), [list(x) for x in plain], (Layer(4, 3, 2), Layer(6, 2)),
                 (LM.LayerSpec(4, 3, 2), (6, 2)), Architecture(plain)):
        arch = Architecture(form)
        assert arch == plain and isinstance(arch, tuple)
        assert all(isinstance(layer, Layer) for layer in arch)
    arch = Architecture(plain)
    assert Architecture(arch) is arch
    assert Architecture(plain).strides == (2, 1)
    assert LM.check_architecture(plain, 1) == (Layer(4, (3,), 2), Layer(6, (2,), 1))
    assert LM.molecule_sizes(plain, 1) == Architecture(plain).molecule_sizes(1) == ((3,), (5,))
    arch, shape = U.check_arch(plain, (1, 9, 9))
    assert arch == plain and shape == (1, 9, 9)


def test_immutable_hashable_static():
    arch = Architecture(((4, 3, 2),))
    with pytest.raises(TypeError):
        arch[0] = (5, 3, 2)
    assert hash(arch) == hash(Architecture([(4, 3, 2)]))
    assert pickle.loads(pickle.dumps(arch)) == arch
    assert "Architecture" in repr(arch)
    # a static argument of jit
    f = jax.jit(lambda x, a: x * len(a), static_argnums=1)
    assert float(f(2.0, arch)) == 2.0


def test_validation_names_the_argument():
    with pytest.raises(TypeError, match="architecture must be a non-empty sequence"):
        Architecture(None)
    with pytest.raises(ValueError, match="architecture must hold at least one layer"):
        Architecture(())
    with pytest.raises(TypeError, match=r"architecture\[0\] must be a layer"):
        Architecture((4, 3, 1))                 # one layer instead of a sequence of layers
    with pytest.raises(ValueError, match=r"architecture\[1\] must be \(n_filters, kernel, stride\)"):
        Architecture(((4, 3, 1), (4, 3, 1, 1)))
    with pytest.raises(ValueError, match=r"architecture\[0\].n_filters must be >= 1"):
        Architecture(((0, 3, 1),))
    with pytest.raises(TypeError, match=r"architecture\[0\].stride must be a Python int"):
        Architecture(((4, 3, 1.5),))
    with pytest.raises(ValueError, match=r"architecture\[0\].kernel\[1\] must be >= 1"):
        Architecture(((4, (3, 0), 1),))
    with pytest.raises(TypeError, match=r"arch\[0\].kernel must be a Python int"):
        Architecture(((4, "3", 1),), name="arch")
    arch = Architecture(((4, 3, 1),))
    with pytest.raises(ValueError, match="input_shape must be"):
        arch.layer_shapes((28, 28, 1, 1))
    with pytest.raises(ValueError, match=r"input_shape\[1\] must be >= 1"):
        arch.layer_shapes((1, 0, 5))
    with pytest.raises(ValueError, match="does not fit"):
        arch.layer_shapes((1, 2, 2))
    with pytest.raises(ValueError, match=r"architecture\[0\].kernel must have 2 entries"):
        Architecture(((4, (3, 3, 3), 1),)).layer_shapes((1, 9, 9))
