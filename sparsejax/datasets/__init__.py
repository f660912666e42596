"""The bundled data (images, SPORCO's convolutional dictionaries, MNIST), read from the installed package, and
the download code for online users.
"""

from sparsejax.datasets import images, mnist
from sparsejax.datasets.images import (
    data_dir,
    dictionary_names,
    image_names,
    load_conv_dictionary,
    load_image,
    save_image,
)
from sparsejax.datasets.mnist import (
    MNIST_FILES,
    MNIST_MIRRORS,
    download_mnist,
    load_mnist,
    mnist_dir,
    read_idx,
    verify_mnist,
)

__all__ = [
    "images",
    "mnist",
    "data_dir",
    "image_names",
    "load_image",
    "save_image",
    "dictionary_names",
    "load_conv_dictionary",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "mnist_dir",
    "read_idx",
    "load_mnist",
    "download_mnist",
    "verify_mnist",
]
