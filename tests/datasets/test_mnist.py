"""The bundled MNIST loader: checksums, IDX parsing, shapes, value and label ranges, errors."""
import gzip
import hashlib
import shutil

import numpy as np
import pytest

from sparsejax.datasets import mnist
@pytest.fixture(scope="module")
def mnist_test_split():
    return mnist.load_mnist("test")


def test_checksums_of_bundled_files():
    res = mnist.verify_mnist()
    for name, (md5, _) in mnist.MNIST_FILES.items():
        raw = gzip.decompress((mnist.mnist_dir() / name).read_bytes())
        assert hashlib.md5(raw).hexdigest() == md5 == res[name]
        assert res[name + ":gz"] is True


def test_test_split_shapes_ranges_and_counts(mnist_test_split):
    x, y = mnist_test_split
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (10000,) and y.dtype == np.int32
    assert x.min() == 0.0 and x.max() == 1.0
    # pixels are k / 255 exactly
    k = np.rint(x * 255)
    np.testing.assert_allclose(x, (k / 255).astype(np.float32), rtol=0, atol=0)
    assert set(np.unique(y)) == set(range(10))
    # label counts documented in data/mnist/README.md
    np.testing.assert_array_equal(np.bincount(y, minlength=10),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    # every digit image has ink and background
    assert np.all(x.reshape(len(x), -1).max(axis=1) > 0.5)
    assert np.all(x.reshape(len(x), -1).min(axis=1) == 0.0)


def test_limit_is_prefix(mnist_test_split):
    x, y = mnist_test_split
    xs, ys = mnist.load_mnist("test", limit=50)
    np.testing.assert_array_equal(xs, x[:50])
    np.testing.assert_array_equal(ys, y[:50])


def test_read_idx_roundtrip():
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = (0x0803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in a.shape) + a.tobytes()
    np.testing.assert_array_equal(mnist.read_idx(raw, 0x803), a)
    with pytest.raises(ValueError, match="magic"):
        mnist.read_idx(raw, 0x801)
    with pytest.raises(ValueError, match="bytes"):
        mnist.read_idx(raw[:-1])


def test_corrupt_and_missing_files(tmp_path):
    for name in mnist.MNIST_FILES:
        shutil.copy(mnist.mnist_dir() / name, tmp_path / name)
    raw = bytearray(gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10          # one flipped label
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ValueError, match="checksum"):
        mnist.load_mnist("test", folder=tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        mnist.load_mnist("test", folder=tmp_path)


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        mnist.load_mnist("validation")
    with pytest.raises(ValueError, match="limit"):
        mnist.load_mnist("test", limit=0)
    with pytest.raises(ValueError, match="limit"):
        mnist.load_mnist("test", limit=10001)
