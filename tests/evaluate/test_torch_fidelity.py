"""waekit's KID, precision/recall and FID equal torch-fidelity's feature-level functions
(``kernel_mmd`` / ``kid_features_to_metric``, ``prc_features_to_metric``,
``fid_statistics_to_metric``) on the same features.

torch-fidelity is not a dependency: it imports torchvision at start-up (for its data set
wrappers and LPIPS), and a torchvision build must match the installed torch exactly, so
depending on it would pin users' PyTorch. None of the functions compared here touches
torchvision, so the test imports torch-fidelity with an empty stand-in for torchvision,
only while it imports, and restores the import system afterwards. Install it with
``python3 -m pip install --no-deps torch-fidelity==0.4.0`` to run these tests.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

import numpy as np
import pytest
import torch

from waekit.evaluate import feature_metrics as fm
from waekit.evaluate.fid import frechet_distance_statistics, gaussian_statistics

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch_fidelity") is None,
    reason="torch-fidelity is not installed: python3 -m pip install --no-deps "
    "torch-fidelity==0.4.0",
)


class _EmptyModule(types.ModuleType):
    """A module whose every public attribute is an empty class (names imported, never used)."""

    __path__: list[str] = []

    def __getattr__(self, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


class _NoTorchvision(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _EmptyModule(spec.name)

    def exec_module(self, module) -> None:
        pass


@pytest.fixture(scope="module")
def tf():
    """torch-fidelity's metric modules, imported with torchvision stood in for."""
    before = set(sys.modules)
    finder = _NoTorchvision()
    sys.meta_path.insert(0, finder)
    try:
        import torch_fidelity.metric_fid as fid
        import torch_fidelity.metric_kid as kid
        import torch_fidelity.metric_prc as prc
    finally:
        sys.meta_path.remove(finder)
    yield types.SimpleNamespace(fid=fid, kid=kid, prc=prc)
    for name in set(sys.modules) - before:  # leave no stand-in behind for other tests
        if name.split(".")[0] in ("torchvision", "torch_fidelity"):
            del sys.modules[name]


def _features(seed: int, n: int, d: int = 64, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # correlated, non-Gaussian features, as Inception's pool features are (non-negative)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return np.maximum(rng.normal(shift, 1.0, size=(n, d)) @ mix, 0.0)


def test_kid_equals_torch_fidelity_subset_by_subset_and_in_the_mean(tf):
    real, fake = _features(0, 600), _features(1, 500, shift=0.3)
    kwargs = dict(
        kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1, kid_subsets=20, kid_subset_size=200, rng_seed=7,
        verbose=False,
    )  # fmt: skip
    theirs = tf.kid.kid_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), **kwargs)
    # the same subsets as theirs (their RandomState draws: generated first, then real)
    rng = np.random.RandomState(7)
    ours = []
    for _ in range(20):
        f = fake[rng.choice(len(fake), 200, replace=False)]
        r = real[rng.choice(len(real), 200, replace=False)]
        one = fm.polynomial_mmd2_unbiased(r, f)
        assert one == pytest.approx(tf.kid.kernel_mmd(f, r, **kwargs), rel=1e-9, abs=1e-12)
        ours.append(one)
    assert np.mean(ours) == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-9)
    # their sd is the population sd (ddof = 0); waekit reports the sample sd (ddof = 1)
    assert np.std(ours) == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-9)


def test_precision_recall_equal_torch_fidelity(tf):
    real, fake = _features(2, 400), _features(3, 300, shift=0.5)
    theirs = tf.prc.prc_features_to_metric(
        torch.from_numpy(fake), torch.from_numpy(real),
        prc_neighborhood=3, prc_batch_size=10_000, save_cpu_ram=False, verbose=False,
    )  # fmt: skip
    ours = fm.precision_recall(real, fake, k=3)
    assert 0.05 < ours["precision"] < 0.95 and 0.05 < ours["recall"] < 0.95  # not trivial
    # theirs are float32 means; one point of 300 would move them by 3e-3
    assert ours["precision"] == pytest.approx(theirs["precision"], abs=1e-6)
    assert ours["recall"] == pytest.approx(theirs["recall"], abs=1e-6)


def test_fid_equals_torch_fidelity(tf):
    a, b = _features(4, 500), _features(5, 400, shift=0.2)
    stats = [tf.fid.fid_features_to_statistics(torch.from_numpy(x)) for x in (a, b)]
    theirs = tf.fid.fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
    ours = frechet_distance_statistics(gaussian_statistics(a), gaussian_statistics(b))
    assert ours > 1.0
    assert ours == pytest.approx(theirs, rel=1e-8)
