"""Image data sets as uint8 arrays: MNIST, Fashion-MNIST, CelebA, CIFAR-10, folders, npz.

>>> from waekit.data import load_dataset
>>> test = load_dataset("mnist", "test")          # (10000, 1, 28, 28) uint8, labels int64
>>> faces = load_dataset("celeba", "train")       # (162770, 3, 64, 64), WAE paper crop

Everything a reader rejects raises :class:`waekit.errors.DataError` naming the file, what
is wrong with it, and the fix.
"""

from waekit.data.datasets import (
    DATA_ENV,
    DATASET_NAMES,
    data_root,
    download_dataset,
    list_datasets,
    load_dataset,
    prepare_dataset,
    verify_dataset,
)
from waekit.data.imageset import DatasetInfo, ImageSet

__all__ = [
    "DATASET_NAMES",
    "DATA_ENV",
    "DatasetInfo",
    "ImageSet",
    "data_root",
    "download_dataset",
    "list_datasets",
    "load_dataset",
    "prepare_dataset",
    "verify_dataset",
]
