"""MNIST (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document recognition", Proc. IEEE
86(11), 1998; the database of LeCun, Cortes & Burges) from the bundled IDX files, with checksum verification.

The four original IDX files, gzip-compressed, are package data in ``sparsejax/datasets/files/mnist/`` (see its
README.md; licence CC BY-SA 3.0, keep the attribution). ``load_mnist`` returns

    images  float32 numpy array (N, 1, 28, 28) in [0, 1]  -- channels first, (C, H, W) per image, the
                                                            layout of ``sparsejax.conv.operator`` signals
    labels  int32 numpy array (N,) with values 0..9

Every file is checked before use: the MD5 of the *uncompressed* IDX bytes (a property of the data, the same
for any gzip of it) and the IDX header (magic 0x803 images / 0x801 labels, sizes). ``download_mnist`` fetches
the files into another folder (it needs network access; the tests never download) and verifies them the same
way.
"""
from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from sparsejax.datasets.images import data_dir

__all__ = ["MNIST_FILES", "MNIST_MIRRORS", "mnist_dir", "read_idx", "load_mnist", "download_mnist",
           "verify_mnist"]

# name -> (MD5 of the uncompressed file, SHA-256 of the bundled .gz), as listed in files/mnist/README.md
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": ("6bbc9ace898e44ae57da46a324031adb",
                                   "db8f937d487057fb14a9f0fbe97f0bc8d311ab41b750d41e1ff37c43b9e55e19"),
    "train-labels-idx1-ubyte.gz": ("a25bea736e30d166cdddb491f175f624",
                                   "51fc562b6747b666fbf6e84ce29d43c3cb5f9c388c664d43b33f02095313405a"),
    "t10k-images-idx3-ubyte.gz": ("2646ac647ad5339dbf082846283269ea",
                                  "cfeddb84311ecf044fc6a5b0f6ee8a24d265d4e83e388400186eb114082f4209"),
    "t10k-labels-idx1-ubyte.gz": ("27ae3e4e09519cfbb04c329615203637",
                                  "e41c74e484045d39b462a7790a4af51301bd9b0b24f0154798d713ec68c45920"),
}
_SPLITS = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
           "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000)}
# public mirrors of the original files (tried in order by download_mnist)
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/")


def mnist_dir() -> Path:
    """The folder of the four MNIST files: ``<data_dir()>/mnist`` (``SPARSEJAX_DATA`` overrides the data folder).

    Returns:
      The folder path.

    Example:
      >>> from sparsejax.datasets.mnist import MNIST_FILES, mnist_dir
      >>> all((mnist_dir() / name).is_file() for name in MNIST_FILES)
      True
    """
    return data_dir() / "mnist"


def _raw(path: Path, name: str) -> bytes:
    """Uncompressed bytes of ``path``, checked against the MD5 of ``name`` in ``MNIST_FILES``."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as e:
        raise ValueError(f"{path} is not a valid gzip file ({e}); delete it and run "
                         "sparsejax.datasets.mnist.download_mnist()") from None
    md5 = hashlib.md5(raw).hexdigest()
    if md5 != MNIST_FILES[name][0]:
        raise ValueError(f"checksum mismatch for {path}: MD5 of the uncompressed file is {md5}, expected "
                         f"{MNIST_FILES[name][0]} (corrupt or not the original MNIST file)")
    return raw


def read_idx(raw: bytes, expected_magic: int | None = None) -> np.ndarray:
    """Parse an (uncompressed) IDX file of unsigned bytes: big-endian magic 0x0000 08 ndim, then ndim
    big-endian uint32 sizes, then the data.

    Args:
      raw: the file's bytes.
      expected_magic: the magic number it must carry (0x803 images, 0x801 labels), or None.

    Returns:
      A uint8 array of the stored sizes.

    Raises:
      ValueError for a wrong magic number, a data type other than unsigned bytes, or a size mismatch.

    Example:
      >>> import numpy as np
      >>> from sparsejax.datasets.mnist import read_idx
      >>> raw = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))
      >>> read_idx(raw, expected_magic=0x802).tolist()
      [[0, 1, 2], [3, 4, 5]]
    """
    if len(raw) < 4:
        raise ValueError(f"an IDX file needs at least 4 header bytes, got {len(raw)}")
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"IDX magic number {magic:#x}, expected {expected_magic:#x}")
    if magic >> 8 != 0x08:
        raise ValueError(f"IDX magic {magic:#x}: only unsigned-byte data (type 0x08) is supported")
    ndim = magic & 0xFF
    head = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != head + int(np.prod(dims)):
        raise ValueError(f"IDX sizes {dims} need {head + int(np.prod(dims))} bytes, the file has {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(dims)


def _file(folder: Path, name: str) -> Path:
    p = folder / name
    if not p.is_file():
        raise FileNotFoundError(
            f"MNIST file {name} not found in {folder}. The files ship as package data in "
            "sparsejax/datasets/files/mnist; set SPARSEJAX_DATA to a data folder, or fetch them (network needed) with "
            f"`python -c 'import sparsejax.datasets.mnist as m; m.download_mnist()'`")
    return p


def load_mnist(split: str = "train", *, limit: int | None = None, folder=None):
    """Load an MNIST split as float32 images in [0, 1] and int32 labels.

    Args:
      split: "train" (60,000 images) or "test" (10,000).
      limit: keep only the first ``limit`` images (None: all).
      folder: where the four .gz files are (default ``mnist_dir()``).

    Returns:
      ``(images, labels)``: numpy float32 (N, 1, 28, 28) = pixel / 255, and int32 (N,) in 0..9.

    Raises:
      FileNotFoundError when a file is missing, ValueError on a checksum or header mismatch.

    Example:
      >>> import numpy as np
      >>> from sparsejax.datasets.mnist import load_mnist
      >>> x, y = load_mnist("test", limit=5)
      >>> x.shape, x.dtype.name, float(x.max()), y.tolist()
      ((5, 1, 28, 28), 'float32', 1.0, [7, 2, 1, 0, 4])
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    img_name, lab_name, n = _SPLITS[split]
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or not 1 <= limit <= n:
            raise ValueError(f"limit must be an int in [1, {n}] or None for the {split} split, got {limit!r}")
    folder = mnist_dir() if folder is None else Path(folder)
    images = read_idx(_raw(_file(folder, img_name), img_name), 0x803)
    labels = read_idx(_raw(_file(folder, lab_name), lab_name), 0x801)
    if images.shape != (n, 28, 28) or labels.shape != (n,):
        raise ValueError(f"unexpected MNIST sizes {images.shape}, {labels.shape} for split {split!r}")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = (images.astype(np.float32) / np.float32(255.0))[:, None]
    return x, labels.astype(np.int32)


def verify_mnist(folder=None) -> dict:
    """Check all four files: the MD5 of the uncompressed data and the IDX headers.

    Args:
      folder: where the four .gz files are (default ``mnist_dir()``).

    Returns:
      ``{name: md5}`` for each file, and ``{name + ":gz": bool}``: whether the .gz is byte-identical to the
      bundled one (SHA-256).

    Raises:
      FileNotFoundError when a file is missing, ValueError on a checksum or header mismatch.

    Example:
      >>> from sparsejax.datasets.mnist import MNIST_FILES, verify_mnist
      >>> res = verify_mnist()
      >>> all(res[name] == md5 and res[name + ":gz"] for name, (md5, _) in MNIST_FILES.items())
      True
    """
    folder = mnist_dir() if folder is None else Path(folder)
    out = {}
    for name, (_, sha) in MNIST_FILES.items():
        p = _file(folder, name)
        raw = _raw(p, name)
        read_idx(raw, 0x803 if "images" in name else 0x801)
        out[name] = hashlib.md5(raw).hexdigest()
        out[name + ":gz"] = hashlib.sha256(p.read_bytes()).hexdigest() == sha
    return out


def download_mnist(folder=None, *, mirrors=MNIST_MIRRORS, overwrite: bool = False, timeout: float = 60.0
                   ) -> Path:
    """Download the four MNIST .gz files into ``folder`` (default ``mnist_dir()``) and verify them.

    Each file is fetched from the first mirror that answers, written to a temporary file, checked (MD5 of
    the uncompressed data, IDX header) and only then moved into place. Files already present and valid
    are kept unless ``overwrite``: then nothing is fetched. Needs network access otherwise.

    Args:
      folder: the destination (created; default ``mnist_dir()``).
      mirrors: base URLs tried in order.
      overwrite: fetch even the files already present and valid.
      timeout: seconds per request.

    Returns:
      The folder.

    Raises:
      RuntimeError listing every mirror's error when a file cannot be fetched.

    Example: a folder that already holds valid files is left as it is, without network access.
      >>> import shutil, tempfile
      >>> from pathlib import Path
      >>> from sparsejax.datasets.mnist import MNIST_FILES, download_mnist, mnist_dir
      >>> folder = Path(tempfile.mkdtemp())
      >>> for name in MNIST_FILES:
      ...     _ = shutil.copy(mnist_dir() / name, folder / name)
      >>> download_mnist(folder, mirrors=()) == folder
      True
    """
    folder = mnist_dir() if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        dest = folder / name
        if dest.is_file() and not overwrite:
            try:
                _raw(dest, name)
                continue
            except ValueError:
                pass
        errors = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r, \
                        tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".part") as tmp:
                    shutil.copyfileobj(r, tmp)
                    tmp_path = Path(tmp.name)
                try:
                    _raw(tmp_path, name)
                except ValueError:
                    tmp_path.unlink(missing_ok=True)
                    raise
                tmp_path.replace(dest)
                break
            except Exception as e:  # noqa: BLE001 - try the next mirror, report all failures below
                errors.append(f"{url}: {e}")
        else:
            raise RuntimeError(f"could not download {name}:\n  " + "\n  ".join(errors))
    return folder
