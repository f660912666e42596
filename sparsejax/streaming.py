"""Sparse coding of data sets bigger than memory: chunk by chunk, reading overlapped with computing, codes written
as they come, resumable after a kill.

    for part in encode_chunks(D, NpySignals("signals.npy", 65536), "omp", k=8):    # any iterable of (B, n) arrays
        part.indptr, part.indices, part.values                                    # the chunk's codes, CSR
    summary = encode_to_file(D, NpySignals("signals.npy", 65536), "codes.npz", "omp", k=8)   # resumable
    X = read_codes("codes.npz")                                                   # scipy.sparse CSR (N, m)

Each chunk is coded by ``sparsejax.pursuit.encode`` (every dense method: Batch-OMP, the batched Lasso, ...), so the
codes of signal i are those of a one-shot ``encode(D, Y)`` on all the signals. The pipeline holds at most
``prefetch`` chunks read ahead (a reader thread: file reads release the GIL), the chunk being computed (JAX dispatch
is asynchronous: chunk t + 1 is dispatched before chunk t's codes are copied to the host and sparsified) and the
chunk being written, so its memory is a few chunks whatever the number of signals. A last chunk shorter than the
first is padded with copies of its own rows (one compiled shape for the whole stream) and the padding dropped.

Sources: ``NpySignals`` reads an ``.npy`` file (the file of a memory-mapped array) with positioned reads, so the
pages read are not kept mapped in the process (its resident memory stays flat; a plain ``np.load(mmap_mode="r")``
array works too, through ``ArraySignals``, but its touched pages count as resident); ``ImagePatches`` cuts the
images of a folder into overlapping patches, one image in memory at a time; ``ArraySignals`` chunks any array.

``encode_to_file`` writes each chunk atomically into a parts folder (``chunk_<i>.npz``: CSR pieces and the
per-signal ``converged`` flags) and appends it to ``done.jsonl``; after a kill, the same call skips the chunks
already written (the settings, the dictionary and the input are fingerprinted in ``settings.json`` and a resume
with other settings is refused). With ``out`` ending in ``.npz`` the parts are then joined, streaming, into one
scipy sparse CSR file (``scipy.sparse.load_npz`` reads it; its extra array ``converged`` holds the per-signal
flags) and the parts folder is removed. Signals that did not converge, or whose codes are not finite, are counted in
the returned ``StreamSummary`` (and kept in the output), never dropped silently.

References: Rubinstein, Zibulevsky & Elad, "Efficient implementation of the K-SVD algorithm using Batch Orthogonal
Matching Pursuit", Technion CS-2008-08 (Batch-OMP); Mairal, Bach, Ponce & Sapiro, "Online learning for matrix
factorization and sparse coding", JMLR 2010 (coding and learning from streams of signals).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import queue
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from tqdm.auto import tqdm

from sparsejax import _validate as V
from sparsejax.datasets.images import load_image
from sparsejax.pursuit.encode import METHODS, encode

__all__ = ["CodeChunk", "StreamSummary", "NpySignals", "ArraySignals", "ImagePatches", "encode_chunks",
           "encode_to_file", "read_codes", "iter_codes", "check_dictionary_array", "numbered_chunks", "prefetch",
           "jsonable"]

_SETTINGS = "settings.json"
_DONE = "done.jsonl"
_IMAGE_SUFFIXES = (".png",)


class CodeChunk(NamedTuple):
    """The codes of one chunk, as CSR pieces.

    index: the chunk number (0, 1, ...); start: the row of its first signal in the stream; rows: its signals.
    indptr (rows + 1,) int64, indices (nnz,) int32, values (nnz,): row i's codes are
    ``values[indptr[i]:indptr[i + 1]]`` at atoms ``indices[indptr[i]:indptr[i + 1]]``.
    converged (rows,) bool: the pursuit's flag per signal (``Solution.converged``); finite (rows,) bool: codes finite.

    Example:
      >>> import numpy as np
      >>> from sparsejax.streaming import CodeChunk
      >>> c = CodeChunk(0, 0, 1, np.array([0, 2]), np.array([1, 3], np.int32), np.array([0.5, -1.0]),
      ...               np.array([True]), np.array([True]))
      >>> c.dense(4).tolist()
      [[0.0, 0.5, 0.0, -1.0]]
    """

    index: int
    start: int
    rows: int
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    converged: np.ndarray
    finite: np.ndarray

    def dense(self, n_atoms: int) -> np.ndarray:
        """The chunk's codes as a dense (rows, n_atoms) array."""
        out = np.zeros((self.rows, n_atoms), self.values.dtype)
        rows = np.repeat(np.arange(self.rows), np.diff(self.indptr))
        out[rows, self.indices] = self.values
        return out


class StreamSummary(NamedTuple):
    """What ``encode_to_file`` did.

    path: the output (the ``.npz`` file, or the parts folder); signals, chunks, nnz: totals of the output;
    computed / skipped: chunks coded by this call / found already written (resume); not_converged, nonfinite:
    signals whose pursuit did not converge / whose codes are not finite (kept in the output, flagged in
    ``converged``); seconds: wall time of this call; signals_per_s: signals coded by this call per second.

    Example:
      >>> from sparsejax.streaming import StreamSummary
      >>> StreamSummary._fields[:4]
      ('path', 'signals', 'chunks', 'nnz')
    """

    path: Path
    signals: int
    chunks: int
    nnz: int
    computed: int
    skipped: int
    not_converged: int
    nonfinite: int
    seconds: float
    signals_per_s: float


# ----------------------------------------------------------------------------------------------
# sources: objects with num_chunks, num_signals, n (signal length), read(i) and fingerprint()
# ----------------------------------------------------------------------------------------------

class _Indexed:
    """Base of the sources that can read chunk i directly (so a resume skips finished chunks unread)."""

    chunk_size: int
    num_signals: int

    @property
    def num_chunks(self) -> int:
        return -(-self.num_signals // self.chunk_size)

    def start(self, i: int) -> int:
        return i * self.chunk_size

    def __len__(self) -> int:
        return self.num_chunks

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self.num_chunks):
            yield self.read(i)


class NpySignals(_Indexed):
    """Chunks of the rows of a 2-D ``.npy`` file (N, n), read by positioned reads (``os.pread``): nothing is kept
    mapped, so the process's resident memory holds only the chunks in flight.

    Args:
      path: a C-ordered 2-D ``.npy`` file of floats (e.g. written by ``np.lib.format.open_memmap``).
      chunk_size: signals per chunk.

    Example:
      >>> import tempfile, os
      >>> import numpy as np
      >>> from sparsejax.streaming import NpySignals
      >>> with tempfile.TemporaryDirectory() as d:
      ...     np.save(os.path.join(d, "y.npy"), np.arange(12.0).reshape(6, 2))
      ...     src = NpySignals(os.path.join(d, "y.npy"), chunk_size=4)
      ...     print(src.num_chunks, src.read(1).tolist())
      2 [[8.0, 9.0], [10.0, 11.0]]
    """

    def __init__(self, path, chunk_size: int):
        self.path = Path(path)
        self.chunk_size = V.check_positive_int("chunk_size", chunk_size)
        if not self.path.is_file():
            raise FileNotFoundError(f"signals file {self.path} does not exist")
        try:
            with open(self.path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
                self.offset = f.tell()
        except (ValueError, OSError) as e:
            raise ValueError(f"signals file {self.path} is not a readable .npy file: {e}") from e
        if len(shape) != 2:
            raise ValueError(f"signals file {self.path} must hold a 2-D array (N signals, n), got shape {shape}")
        if fortran:
            raise ValueError(f"signals file {self.path} is Fortran-ordered: rows must be contiguous (save it with "
                             f"np.save(path, np.ascontiguousarray(Y)))")
        if dtype.kind not in "fiu" or dtype.hasobject:
            raise ValueError(f"signals file {self.path} must hold real numbers, got dtype {dtype}")
        self.num_signals, self.n = int(shape[0]), int(shape[1])
        self.dtype = dtype
        need = self.offset + self.num_signals * self.n * dtype.itemsize
        if self.path.stat().st_size < need:
            raise ValueError(f"signals file {self.path} is truncated: {self.path.stat().st_size} bytes, its header "
                             f"announces {need}")

    def read(self, i: int) -> np.ndarray:
        """Chunk i as a fresh (rows, n) array (a copy: the file is not kept mapped)."""
        lo = i * self.chunk_size
        rows = min(self.chunk_size, self.num_signals - lo)
        out = np.empty((rows, self.n), self.dtype)
        buf = memoryview(out).cast("B")
        pos, done = self.offset + lo * self.n * self.dtype.itemsize, 0
        with open(self.path, "rb", buffering=0) as f:
            while done < buf.nbytes:
                got = os.preadv(f.fileno(), [buf[done:]], pos + done)
                if got == 0:
                    raise OSError(f"unexpected end of {self.path} reading chunk {i}")
                done += got
        return out

    def fingerprint(self) -> dict:
        st = self.path.stat()
        return {"source": "npy", "path": str(self.path.resolve()), "shape": [self.num_signals, self.n],
                "dtype": str(self.dtype), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                "chunk_size": self.chunk_size}


class ArraySignals(_Indexed):
    """Chunks of the rows of an array already open (a NumPy array, an ``np.load(..., mmap_mode="r")`` memmap, a
    JAX array, an HDF5 dataset: anything sliceable with a 2-D shape).

    Example:
      >>> import numpy as np
      >>> from sparsejax.streaming import ArraySignals
      >>> [c.shape for c in ArraySignals(np.zeros((5, 3)), chunk_size=2)]
      [(2, 3), (2, 3), (1, 3)]
    """

    def __init__(self, array, chunk_size: int):
        shape = getattr(array, "shape", None)
        if shape is None or len(shape) != 2:
            raise ValueError(f"signals must be a 2-D array (N signals, n), got "
                             f"{'shape ' + str(tuple(shape)) if shape is not None else type(array).__name__}")
        self.array = array
        self.chunk_size = V.check_positive_int("chunk_size", chunk_size)
        self.num_signals, self.n = int(shape[0]), int(shape[1])

    def read(self, i: int) -> np.ndarray:
        lo = i * self.chunk_size
        return np.array(self.array[lo:lo + self.chunk_size])

    def fingerprint(self) -> dict:
        return {"source": "array", "shape": [self.num_signals, self.n], "dtype": str(self.array.dtype),
                "chunk_size": self.chunk_size}


class ImagePatches:
    """The ``size`` x ``size`` patches (every ``stride`` pixels) of the PNG images of a folder, flattened row-major
    into signals of length size^2, in chunks of ``chunk_size`` (patches of consecutive images share a chunk). One
    image is in memory at a time. ``center=True`` removes each patch's mean (the DC, as usual for patch
    dictionaries). Images are read grey in [0, 1] (``sparsejax.datasets.images.load_image``).

    Args:
      folder: a folder of ``.png`` files (sorted by name), or one ``.png`` file.
      size: patch side; stride: step between patches (1: all overlapping patches); chunk_size: signals per chunk.
      center: subtract each patch's mean.

    Example:
      >>> import tempfile
      >>> import numpy as np
      >>> from sparsejax.datasets.images import save_image
      >>> from sparsejax.streaming import ImagePatches
      >>> with tempfile.TemporaryDirectory() as d:
      ...     _ = save_image(d + "/a.png", np.zeros((10, 12)))
      ...     src = ImagePatches(d, size=4, stride=2, chunk_size=8)
      ...     print(src.num_signals, [c.shape for c in src])
      20 [(8, 16), (8, 16), (4, 16)]
    """

    def __init__(self, folder, size: int, *, stride: int = 1, chunk_size: int = 65536, center: bool = False):
        self.folder = Path(folder)
        self.size = V.check_positive_int("size", size)
        self.stride = V.check_positive_int("stride", stride)
        self.chunk_size = V.check_positive_int("chunk_size", chunk_size)
        self.center = bool(center)
        if self.folder.is_dir():
            self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file())
        elif self.folder.is_file() and self.folder.suffix.lower() in _IMAGE_SUFFIXES:
            self.files = [self.folder]
        else:
            raise FileNotFoundError(f"image folder {self.folder} does not exist (or is not a .png file)")
        if not self.files:
            raise FileNotFoundError(f"no PNG image in folder {self.folder}")
        self.n = self.size * self.size
        self._counts = None

    def _patches(self, path) -> np.ndarray:
        img = load_image(path)
        if min(img.shape) < self.size:
            raise ValueError(f"image {path} ({img.shape[0]} x {img.shape[1]}) is smaller than the patch size "
                             f"{self.size}")
        P = sliding_window_view(img, (self.size, self.size))[::self.stride, ::self.stride]
        P = P.reshape(-1, self.n).astype(np.float32)
        if self.center:
            P = P - P.mean(axis=1, keepdims=True)
        return P

    @property
    def num_signals(self) -> int:
        """Total patches (reads each image once, the first time it is asked)."""
        if self._counts is None:
            counts = []
            for f in self.files:
                h, w = load_image(f).shape
                counts.append(((h - self.size) // self.stride + 1) * ((w - self.size) // self.stride + 1)
                              if min(h, w) >= self.size else 0)
            self._counts = counts
        return int(sum(self._counts))

    def __iter__(self) -> Iterator[np.ndarray]:
        buf, have = [], 0
        for f in self.files:
            P = self._patches(f)
            while P.shape[0]:
                take = min(self.chunk_size - have, P.shape[0])
                buf.append(P[:take])
                have += take
                P = P[take:]
                if have == self.chunk_size:
                    yield np.concatenate(buf)
                    buf, have = [], 0
        if have:
            yield np.concatenate(buf)

    def fingerprint(self) -> dict:
        files = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in self.files]
        return {"source": "images", "folder": str(self.folder.resolve()), "files": files, "size": self.size,
                "stride": self.stride, "center": self.center, "chunk_size": self.chunk_size}


# ----------------------------------------------------------------------------------------------
# the pipeline
# ----------------------------------------------------------------------------------------------

def check_dictionary_array(D) -> np.ndarray:
    """``D`` as a finite (n, m) NumPy float array of JAX's dtype for it (float32; float64 only for float64 input
    under ``jax_enable_x64``), or a ValueError naming it.

    Example:
      >>> from sparsejax.streaming import check_dictionary_array
      >>> check_dictionary_array([[1, 0], [0, 1]]).dtype
      dtype('float32')
    """
    D = np.asarray(D)
    if D.dtype.kind not in "fiu":
        raise ValueError(f"D must be an (n, m) array of real numbers (atoms as columns), got dtype {D.dtype}")
    if D.ndim != 2 or 0 in D.shape:
        raise ValueError(f"D must be an (n, m) array (atoms as columns), got shape {D.shape}")
    D = D.astype(jax.dtypes.canonicalize_dtype(D.dtype if D.dtype.kind == "f" else np.float32))
    if not np.all(np.isfinite(D)):
        raise ValueError("D has non-finite entries (NaN or inf)")
    return D


def numbered_chunks(chunks, skip=()) -> Iterator[tuple]:
    """``(index, start, array)`` for each chunk of ``chunks``, ``array`` None for the chunk numbers in ``skip``
    (sources of this module do not read those; other iterables are still iterated through them).

    Example:
      >>> import numpy as np
      >>> from sparsejax.streaming import ArraySignals, numbered_chunks
      >>> [(i, s, None if y is None else y.shape) for i, s, y in numbered_chunks(ArraySignals(np.ones((5, 2)), 2), {1})]
      [(0, 0, (2, 2)), (1, 2, None), (2, 4, (1, 2))]
    """
    return _numbered(chunks, frozenset(int(i) for i in skip))


def prefetch(iterable: Iterable, depth: int = 2) -> Iterator:
    """Iterate ``iterable`` in a background thread, ``depth`` items ahead (reads that release the GIL, such as file
    reads, overlap with the consumer's work); an exception of the iterable is raised in the consumer; closing the
    returned generator stops the thread.

    Example:
      >>> from sparsejax.streaming import prefetch
      >>> list(prefetch(iter(range(5)), depth=2))
      [0, 1, 2, 3, 4]
    """
    depth = V.check_positive_int("depth", depth)
    return _prefetched(iter(iterable), depth)


def _prefetched(it, depth):
    reader = _Prefetch(it, depth)
    try:
        yield from reader
    finally:
        reader.close()


def _numbered(chunks, skip) -> Iterator[tuple]:
    """(index, start, array or None when skipped); indexed sources skip finished chunks unread."""
    if isinstance(chunks, _Indexed):
        for i in range(chunks.num_chunks):
            if i in skip:
                yield i, chunks.start(i), None
            else:
                yield i, chunks.start(i), chunks.read(i)
        return
    start = 0
    for i, Y in enumerate(chunks):
        Y = np.asarray(Y)
        yield i, start, (None if i in skip else Y)
        start += int(Y.shape[0]) if Y.ndim >= 1 else 0


class _Prefetch:
    """Runs an iterator in a thread, ``depth`` items ahead; exceptions come out in the consumer."""

    _END = object()

    def __init__(self, it: Iterator, depth: int):
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(it,), daemon=True, name="sparsejax-prefetch")
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, it):
        try:
            for item in it:
                if not self._put(("item", item)):
                    return
            self._put(("end", None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self._put(("error", e))

    def __iter__(self):
        while True:
            kind, item = self._q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item

    def close(self):
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._q.get(timeout=0.05)
            except queue.Empty:
                pass


def _check_chunk(Y, index, start, n) -> np.ndarray:
    if Y.ndim != 2 or Y.shape[1] != n:
        raise ValueError(f"chunk {index} must have shape (rows, {n}) (signals as rows, n = the dictionary's "
                         f"signal length), got {Y.shape}")
    if Y.dtype.kind not in "fiu":
        raise ValueError(f"chunk {index} must hold real numbers, got dtype {Y.dtype}")
    bad = ~np.isfinite(Y).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"chunk {index} has non-finite values (NaN or inf) in signal {start + row} (row {row} of "
                         f"the chunk)")
    return Y


def _to_host(pending) -> CodeChunk:
    index, start, rows, sol = pending
    codes = np.asarray(sol.codes)[:rows]
    converged = np.asarray(sol.converged)[:rows].astype(bool)
    finite = np.isfinite(codes).all(axis=1)
    nz = codes != 0
    indptr = np.zeros(rows + 1, np.int64)
    np.cumsum(nz.sum(axis=1), out=indptr[1:])
    r, c = np.nonzero(nz)
    return CodeChunk(index, start, rows, indptr, c.astype(np.int32), codes[r, c], converged, finite)


def encode_chunks(D, chunks: Iterable, method: str = "omp", *, skip=(), prefetch: int = 2,
                  **options) -> Iterator[CodeChunk]:
    """Sparse-code a stream of chunks of signals, yielding each chunk's codes (CSR pieces) in order.

    Chunk t + 1 is read (by a thread, ``prefetch`` chunks ahead) and dispatched to the device before chunk t's
    codes are copied back and sparsified, so reading, computing and the caller's writing overlap. The codes are
    those of ``sparsejax.pursuit.encode(D, Y, method, **options)`` per chunk; every chunk of the first chunk's
    length or shorter runs through one compiled shape.

    Args:
      D: (n, m) dictionary, atoms as columns.
      chunks: an iterable of (rows, n) arrays (signals as rows), or a source of this module (``NpySignals``,
        ``ArraySignals``: finished chunks are then skipped without being read).
      method: one of ``sparsejax.pursuit.encode.METHODS`` ("omp", "lasso", "threshold", "ista", "fista", "admm",
        "bp_constrained").
      skip: chunk numbers not to compute (and not to yield).
      prefetch: chunks read ahead (>= 1).
      **options: for ``encode`` (``k`` / ``tol`` for omp, ``lam`` for lasso, ...).

    Returns:
      An iterator of ``CodeChunk``.

    Raises:
      ValueError before any computation for a bad dictionary / method / prefetch; for a chunk of the wrong shape or
      with non-finite values when that chunk is reached (naming the chunk and the signal).

    Example: the same codes as one call of ``encode`` on all the signals.
      >>> import numpy as np
      >>> import sparsejax as sj
      >>> from sparsejax.streaming import ArraySignals, encode_chunks
      >>> rng = np.random.default_rng(0)
      >>> D = rng.standard_normal((8, 16)).astype(np.float32); D /= np.linalg.norm(D, axis=0)
      >>> Y = rng.standard_normal((10, 8)).astype(np.float32)
      >>> parts = list(encode_chunks(D, ArraySignals(Y, 4), "omp", k=2))
      >>> [p.rows for p in parts], np.allclose(np.vstack([p.dense(16) for p in parts]),
      ...                                      sj.encode(D, Y, "omp", k=2).codes, atol=1e-5)
      ([4, 4, 2], True)
    """
    atoms = check_dictionary_array(D)
    V.check_choice("method", method, METHODS)
    prefetch = V.check_positive_int("prefetch", prefetch)
    skip = frozenset(int(i) for i in skip)
    return _encode_iter(jnp.asarray(atoms), atoms.shape[0], chunks, method, skip, prefetch, options)


def _encode_iter(atoms, n, chunks, method, skip, prefetch, options):
    reader = _Prefetch(_numbered(chunks, skip), prefetch)
    width, pending = None, None
    try:
        for index, start, Y in reader:
            if Y is None:
                continue
            Y = _check_chunk(np.asarray(Y), index, start, n)
            rows = Y.shape[0]
            if rows == 0:
                continue
            width = rows if width is None else width
            if rows < width:                     # pad with the chunk's own rows: one compiled shape
                Y = np.take(Y, np.arange(width) % rows, axis=0)
            sol = encode(atoms, jnp.asarray(Y, atoms.dtype), method, **options)     # dispatched, not waited for
            if pending is not None:
                done, pending = pending, None
                yield _to_host(done)
            pending = (index, start, rows, sol)
    except (Exception, KeyboardInterrupt):
        if pending is not None:                  # a failure later in the stream: hand over the finished chunk first
            done, pending = pending, None
            yield _to_host(done)
        raise
    finally:
        reader.close()
    if pending is not None:
        yield _to_host(pending)


# ----------------------------------------------------------------------------------------------
# writing, resuming, reading back
# ----------------------------------------------------------------------------------------------

def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _chunk_file(folder: Path, index: int) -> Path:
    return folder / f"chunk_{index:07d}.npz"


def jsonable(v):
    """``v`` as JSON-ready data for a settings fingerprint: scalars as they are (floats by ``repr``), containers
    recursively, arrays of up to 8 entries as values, larger arrays as shape, dtype and SHA-256.

    Example:
      >>> import numpy as np
      >>> jsonable({"lam": 0.1, "D": np.zeros(2)})
      {'lam': '0.1', 'D': {'array': [0.0, 0.0], 'dtype': 'float64'}}
    """
    if isinstance(v, (str, bool, int, type(None))):
        return v
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    a = np.asarray(v)
    if a.size <= 8:
        return {"array": a.tolist(), "dtype": str(a.dtype)}
    return {"shape": list(a.shape), "dtype": str(a.dtype), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}


def _settings(atoms, method, options, chunks, fingerprint) -> dict:
    if fingerprint is None and hasattr(chunks, "fingerprint"):
        fingerprint = chunks.fingerprint()
    return {"format": 1, "method": method, "options": jsonable(options),
            "dictionary": {"shape": list(atoms.shape), "dtype": str(atoms.dtype),
                           "sha256": hashlib.sha256(np.ascontiguousarray(atoms).tobytes()).hexdigest()},
            "input": jsonable(fingerprint)}


def _read_done(folder: Path) -> dict:
    """Finished chunks from ``done.jsonl`` (a torn last line, from a kill, is ignored) whose file exists."""
    done = {}
    p = folder / _DONE
    if not p.exists():
        return done
    for line in p.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "index" in rec and _chunk_file(folder, rec["index"]).exists():
            done[int(rec["index"])] = rec
    return done


def _differences(saved: dict, current: dict, prefix="") -> list:
    out = []
    for k in sorted(set(saved) | set(current)):
        a, b = saved.get(k), current.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} then, {b!r} now")
    return out


def _prepare_folder(folder: Path, settings: dict, resume: bool) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    for p in folder.glob(".*.tmp"):                    # temporary files of a killed write
        p.unlink(missing_ok=True)
    sp = folder / _SETTINGS
    if resume and sp.exists():
        try:
            saved = json.loads(sp.read_text())
        except json.JSONDecodeError:
            saved = None
        if saved is not None:
            diff = _differences(saved, json.loads(json.dumps(settings)))
            if diff:
                raise ValueError(f"{folder} holds the parts of a run with other settings ({'; '.join(diff)}): use "
                                 f"another output, or resume=False (sparsejax encode --restart) to start afresh")
            return _read_done(folder)
    for p in list(folder.glob("chunk_*.npz")) + [folder / _DONE]:
        p.unlink(missing_ok=True)
    _atomic_write(sp, lambda f: f.write(json.dumps(settings, indent=1).encode()))
    return {}


def _write_chunk(folder: Path, c: CodeChunk) -> dict:
    _atomic_write(_chunk_file(folder, c.index), lambda f: np.savez(
        f, indptr=c.indptr, indices=c.indices, values=c.values, converged=c.converged, start=np.int64(c.start)))
    rec = {"index": c.index, "start": c.start, "rows": c.rows, "nnz": int(c.indptr[-1]),
           "not_converged": int(c.rows - c.converged.sum()), "nonfinite": int(c.rows - c.finite.sum())}
    with open(folder / _DONE, "a") as f:
        f.write(json.dumps(rec) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return rec


def _load_chunk(folder: Path, index: int) -> CodeChunk:
    with np.load(_chunk_file(folder, index)) as z:
        indptr, values = z["indptr"], z["values"]
        return CodeChunk(index, int(z["start"]), len(indptr) - 1, indptr, z["indices"], values, z["converged"],
                         _finite_rows(indptr, values))


def _finite_rows(indptr, values) -> np.ndarray:
    bad = np.concatenate([[0], np.cumsum(~np.isfinite(values))])
    return bad[indptr[1:]] == bad[indptr[:-1]]


def iter_codes(folder) -> Iterator[CodeChunk]:
    """The chunks of a parts folder written by ``encode_to_file``, in order, one in memory at a time.

    Example: see ``encode_to_file``.
    """
    folder = Path(folder)
    done = _read_done(folder)
    for i in sorted(done):
        yield _load_chunk(folder, i)


def _check_complete(done: dict) -> list:
    order = sorted(done)
    expect = 0
    for i in order:
        if done[i]["start"] != expect:
            raise ValueError(f"chunk {i} starts at signal {done[i]['start']}, expected {expect}: parts missing")
        expect += done[i]["rows"]
    return order


def _write_array_member(zf, name: str, dtype, length: int, pieces) -> None:
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_2_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                 "fortran_order": False, "shape": (int(length),)})
        for p in pieces:
            f.write(np.ascontiguousarray(p, dtype=dtype).tobytes())


def _assemble(folder: Path, out: Path, done: dict, n_atoms: int, dtype) -> None:
    """Join the parts into one scipy CSR ``.npz``, streaming: one chunk in memory at a time."""
    order = _check_complete(done)
    N = sum(done[i]["rows"] for i in order)
    nnz = sum(done[i]["nnz"] for i in order)

    def indptr_pieces():
        yield np.zeros(1, np.int64)
        offset = 0
        for i in order:
            c = _load_chunk(folder, i)
            yield c.indptr[1:] + offset
            offset += int(c.indptr[-1])

    def field(name):
        for i in order:
            with np.load(_chunk_file(folder, i)) as z:
                yield z[name]

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            _write_array_member(zf, "indices", np.int32, nnz, field("indices"))
            _write_array_member(zf, "indptr", np.int64, N + 1, indptr_pieces())
            _write_array_member(zf, "data", dtype, nnz, field("values"))
            _write_array_member(zf, "converged", np.bool_, N, field("converged"))
            for name, arr in (("format", np.array("csr")), ("shape", np.array([N, n_atoms], np.int64))):
                with zf.open(name + ".npy", "w") as g:
                    np.lib.format.write_array(g, arr, allow_pickle=False)

    _atomic_write(out, write)


def encode_to_file(D, chunks: Iterable, out, method: str = "omp", *, resume: bool = True, progress: bool = True,
                   total: Optional[int] = None, fingerprint: Any = None, keep_parts: bool = False,
                   prefetch: int = 2, **options) -> StreamSummary:
    """Code a stream of chunks and write the codes as they come; rerun after a kill to finish without redoing the
    chunks already written.

    Args:
      D: (n, m) dictionary, atoms as columns.
      chunks: as ``encode_chunks`` (a source of this module, or any iterable of (rows, n) arrays that yields the
        same chunks when the call is repeated).
      out: ``PATH.npz`` (one scipy sparse CSR file, parts kept in ``PATH.npz.parts`` until it is written) or a
        folder (the parts: ``chunk_<i>.npz`` with CSR pieces, read back by ``read_codes`` / ``iter_codes``).
      method, **options: for ``sparsejax.pursuit.encode``.
      resume: continue the run whose parts are in the folder (refused, naming them, if its settings differ);
        False: start afresh.
      progress: a tqdm bar (signals, throughput, time left).
      total: number of signals for the bar when the source does not say (``num_signals``).
      fingerprint: JSON-like identity of the input, stored and compared on resume (default: the source's own
        ``fingerprint()``, e.g. path, size and time of the ``.npy`` file).
      keep_parts: keep the parts folder after writing ``PATH.npz``.
      prefetch: chunks read ahead.

    Returns:
      ``StreamSummary`` (totals, chunks computed / skipped, signals not converged / non-finite, throughput).

    Example: a run that dies after its first chunk, resumed without recomputing it.
      >>> import tempfile
      >>> import numpy as np
      >>> from sparsejax.streaming import ArraySignals, encode_to_file, read_codes
      >>> rng = np.random.default_rng(0)
      >>> D = rng.standard_normal((8, 16)).astype(np.float32); D /= np.linalg.norm(D, axis=0)
      >>> src = ArraySignals(rng.standard_normal((10, 8)).astype(np.float32), chunk_size=4)
      >>> def dies(src):
      ...     yield src.read(0)
      ...     raise RuntimeError("killed")
      >>> with tempfile.TemporaryDirectory() as d:
      ...     try:
      ...         encode_to_file(D, dies(src), d + "/codes.npz", k=2, fingerprint="Y", progress=False)
      ...     except RuntimeError:
      ...         pass
      ...     s = encode_to_file(D, src, d + "/codes.npz", k=2, fingerprint="Y", progress=False)
      ...     print(s.skipped, s.computed, read_codes(d + "/codes.npz").shape)
      1 2 (10, 16)
    """
    atoms = check_dictionary_array(D)
    V.check_choice("method", method, METHODS)
    prefetch = V.check_positive_int("prefetch", prefetch)
    if not (resume is True or resume is False):
        raise ValueError(f"resume must be True or False, got {resume!r}")
    out = Path(out)
    as_file = out.suffix == ".npz"
    folder = out.with_name(out.name + ".parts") if as_file else out
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"out: {folder} exists and is not a folder")
    if as_file and out.is_dir():
        raise ValueError(f"out: {out} is a folder, expected a .npz file name")
    settings = _settings(atoms, method, options, chunks, fingerprint)
    done = _prepare_folder(folder, settings, resume)
    if total is None:
        total = getattr(chunks, "num_signals", None)
    skipped = len(done)
    bar = tqdm(total=total, initial=sum(r["rows"] for r in done.values()), unit="signal", unit_scale=True,
               desc=f"encode ({method})", dynamic_ncols=True, disable=not progress)
    t0, computed, coded = time.perf_counter(), 0, 0
    try:
        for c in _encode_iter(jnp.asarray(atoms), atoms.shape[0], chunks, method, frozenset(done), prefetch,
                              options):
            done[c.index] = _write_chunk(folder, c)
            computed += 1
            coded += c.rows
            bar.update(c.rows)
    finally:
        bar.close()
    _check_complete(done)
    if as_file:
        _assemble(folder, out, done, atoms.shape[1], atoms.dtype)
        if not keep_parts:
            shutil.rmtree(folder)
    seconds = time.perf_counter() - t0
    recs = done.values()
    return StreamSummary(out if as_file else folder, sum(r["rows"] for r in recs), len(done),
                         sum(r["nnz"] for r in recs), computed, skipped, sum(r["not_converged"] for r in recs),
                         sum(r["nonfinite"] for r in recs), seconds, coded / seconds if seconds > 0 else math.nan)


def read_codes(path):
    """The codes written by ``encode_to_file`` as a scipy sparse CSR matrix (N, m): a ``.npz`` file
    (``scipy.sparse.load_npz``) or a parts folder (joined in memory). Needs scipy.

    Example: see ``encode_to_file``.
    """
    import scipy.sparse as sp

    path = Path(path)
    if path.is_file():
        return sp.load_npz(path)
    if not (path / _SETTINGS).exists():
        raise FileNotFoundError(f"{path} is neither a codes .npz file nor a parts folder of encode_to_file")
    settings = json.loads((path / _SETTINGS).read_text())
    m = settings["dictionary"]["shape"][1]
    done = _read_done(path)
    _check_complete(done)
    parts = [sp.csr_matrix((c.values, c.indices, c.indptr), shape=(c.rows, m)) for c in iter_codes(path)]
    if not parts:
        return sp.csr_matrix((0, m))
    return sp.vstack(parts, format="csr")
