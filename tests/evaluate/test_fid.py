import numpy as np
import pytest
import torch
from waekit_testruns import real_images

from waekit.evaluate import fid as F

HAVE_NET, WHY_NOT = F.inception_available()
needs_net = pytest.mark.skipif(not HAVE_NET, reason=f"FID network unavailable: {WHY_NOT}")
N = 24  # per set: Inception-v3 at 299x299 runs at a few images per second on a small CPU


# -- the resize ---------------------------------------------------------------------------
def test_tf_bilinear_matches_tf1_resize_bilinear():
    # TF1 resize_bilinear, align_corners=False: output i samples input i * in / out.
    m = F._tf_bilinear_matrix(2, 4).numpy()
    np.testing.assert_allclose(m, [[1, 0], [0.5, 0.5], [0, 1], [0, 1]])
    m = F._tf_bilinear_matrix(3, 2).numpy()  # positions 0 and 1.5
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 0.5, 0.5]])
    x = torch.tensor([[[[0.0, 10.0], [20.0, 30.0]]]])
    y = F.tf_bilinear_resize(x, (4, 4))[0, 0]
    np.testing.assert_allclose(y[1].numpy(), [10, 15, 20, 20])  # row at 0.5: between 0.. and 20..


def test_resize_to_299_keeps_constants_and_rows_sum_to_one():
    m = F._tf_bilinear_matrix(28, 299)
    np.testing.assert_allclose(m.sum(1).numpy(), 1.0)
    x = torch.full((2, 1, 28, 28), 77.0)
    np.testing.assert_allclose(F.tf_bilinear_resize(x, (299, 299)).numpy(), 77.0, rtol=1e-6)


# -- the Frechet distance -----------------------------------------------------------------
def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    v1, v2 = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    # Diagonal covariances commute: tr sqrt(S1 S2) = sum sqrt(v1 v2), so
    # d^2 = ||mu1 - mu2||^2 + sum (sqrt(v1) - sqrt(v2))^2.
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    value = F.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert value == pytest.approx(expected, rel=1e-10)
    a = F.GaussianStatistics(mu=mu1, root=np.diag(np.sqrt(v1)), n=10)
    b = F.GaussianStatistics(mu=mu2, root=np.diag(np.sqrt(v2)), n=10)
    assert F.frechet_distance_statistics(a, b) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_one_dimension_is_w2_squared():
    # N(1, 4) vs N(-2, 1): W_2^2 = 3^2 + (2 - 1)^2 = 10.
    assert F.frechet_distance([1.0], [[4.0]], [-2.0], [[1.0]]) == pytest.approx(10.0)


@pytest.mark.parametrize("n, d", [(300, 20), (12, 40)])  # full rank, and singular (n < d)
def test_exact_statistics_path_agrees_with_sqrtm(n, d):
    rng = np.random.default_rng(1)
    fa = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3
    fb = rng.normal(size=(n + 5, d)) * 1.5 + 0.2
    exact = F.frechet_distance_statistics(F.gaussian_statistics(fa), F.gaussian_statistics(fb))
    mu_a, s_a = F.feature_statistics(fa)
    mu_b, s_b = F.feature_statistics(fb)
    np.testing.assert_allclose(F.gaussian_statistics(fa).sigma, s_a, atol=1e-10)
    assert np.isfinite(F.frechet_distance(mu_a, s_a, mu_b, s_b))
    assert F.frechet_distance(mu_a, s_a, mu_b, s_b) == pytest.approx(exact, rel=1e-4)


def test_singular_covariance_against_itself_is_zero():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(10, 64))  # rank 9 covariance in 64 dimensions
    mu, sigma = F.feature_statistics(f)
    # sqrtm of a singular product is accurate to round-off relative to tr(sigma) ~ 128
    assert abs(F.frechet_distance(mu, sigma, mu, sigma)) < 1e-6 * np.trace(sigma)
    s = F.gaussian_statistics(f)
    assert F.frechet_distance_statistics(s, s) < 1e-9


def test_cached_statistics_written_once_and_keyed(tmp_path, monkeypatch):
    class Fake:
        protocol = {"network": "fake"}
        protocol_id = "fake01"
        calls = 0

        def features(self, x, batch_size=50):
            Fake.calls += 1
            return x.reshape(x.shape[0], -1).double().numpy()[:, :5]

    images = np.random.default_rng(0).integers(0, 256, (20, 1, 4, 4), dtype=np.uint8)
    first = F.cached_real_statistics("mnist/test", images, Fake(), cache_dir=tmp_path)
    second = F.cached_real_statistics("mnist/test", images, Fake(), cache_dir=tmp_path)
    assert Fake.calls == 1
    np.testing.assert_array_equal(first.mu, second.mu)
    np.testing.assert_array_equal(first.root, second.root)
    (path,) = tmp_path.glob("*.npz")
    assert path.name.startswith("mnist_test-n20-fake01-")
    F.cached_real_statistics("mnist/test", images[:10], Fake(), cache_dir=tmp_path)
    assert Fake.calls == 2 and len(list(tmp_path.glob("*.npz"))) == 2
    monkeypatch.setenv("WAEKIT_CACHE", str(tmp_path / "elsewhere"))
    assert F.fid_cache_dir() == tmp_path / "elsewhere" / "fid"
    F.cached_real_statistics("mnist-test", images, Fake())
    assert len(list((tmp_path / "elsewhere" / "fid").glob("*.npz"))) == 1


def test_unavailable_network_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv(F.WEIGHTS_ENV, str(tmp_path / "missing.pt"))
    ok, reason = F.inception_available()
    assert not ok and "missing.pt" in reason
    with pytest.raises(RuntimeError, match="missing.pt"):
        F.InceptionFeatures("cpu")


# -- the network on real images -----------------------------------------------------------
@pytest.fixture(scope="module")
def extractor():
    if not HAVE_NET:
        pytest.skip(f"FID network unavailable: {WHY_NOT}")
    return F.InceptionFeatures("cpu")


@pytest.fixture(scope="module")
def real_features(extractor):
    mnist = real_images("mnist", 2 * N)
    fashion = real_images("fashion-mnist", N)
    feats = extractor.features(np.concatenate([mnist, fashion]), batch_size=N)
    return {"ref": feats[:N], "mnist": feats[N : 2 * N], "fashion": feats[2 * N :]}


@needs_net
def test_fid_of_a_set_with_itself_is_zero(extractor):
    x = real_images("mnist", 8)
    assert F.fid(x, x, extractor, batch_size=3) < 1e-3
    # Features do not depend on the batch, and floats in [0, 1] are quantised like uint8.
    f_u8 = extractor.features(x[:3], batch_size=3)
    f_float = extractor.features(torch.from_numpy(x[:3]).float() / 255.0, batch_size=1)
    np.testing.assert_allclose(f_float, f_u8, atol=1e-4)
    assert f_u8.shape == (3, 2048) and f_u8.dtype == np.float64


@needs_net
def test_fid_mnist_vs_fashion_is_large_and_mixing_lowers_it(real_features):
    ref = F.gaussian_statistics(real_features["ref"])

    def fid_to_ref(features):
        return F.frechet_distance_statistics(F.gaussian_statistics(features), ref)

    half = N // 2
    mixes = [
        real_features["fashion"],  # 0% MNIST
        np.concatenate([real_features["fashion"][:half], real_features["mnist"][half:]]),
        real_features["mnist"],  # 100% MNIST (other images than the reference)
    ]
    scores = [fid_to_ref(f) for f in mixes]
    assert scores[0] > scores[1] > scores[2]
    # Measured at N = 24: about 279, 154 and 89 (small-N FID is biased upward).
    assert scores[0] > 200.0  # different data sets
    assert scores[0] > 2.5 * scores[2]


@pytest.fixture(scope="module")
def torchscript_features():
    if not HAVE_NET:
        pytest.skip(f"FID network unavailable: {WHY_NOT}")
    x = np.concatenate([real_images("mnist", 2), real_images("fashion-mnist", 2)])
    return x, F.InceptionFeatures("cpu", fast=False).features(x, batch_size=4)


@needs_net
@pytest.mark.parametrize("backend", ["folded", "openvino"])
def test_fast_features_equal_the_torchscript_reference(backend, torchscript_features):
    # the eager, batch-norm-folded, channels_last copy and its OpenVINO compilation against
    # the shipped TorchScript graph
    if backend == "openvino" and not F._openvino_importable():
        pytest.skip("openvino is not installed (pip install -e '.[fid]')")
    x, ref = torchscript_features
    extractor = F.InceptionFeatures("cpu", backend=backend)
    assert extractor.fast and extractor.protocol["implementation"] == F.BACKENDS[backend]
    fast = extractor.features(x, batch_size=4)
    assert np.abs(fast - ref).max() <= 1e-4 * np.abs(ref).max()
    # per image, the features' direction agrees to 1e-8 (cosine similarity)
    cos = (fast * ref).sum(1) / np.linalg.norm(fast, axis=1) / np.linalg.norm(ref, axis=1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-8)
    if backend == "openvino":  # fp32 (not the bf16 OpenVINO picks on some CPUs), unpinned
        import openvino

        compiled = extractor.openvino_request.get_compiled_model()
        assert compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32
        assert compiled.get_property("ENABLE_CPU_PINNING") is False
        assert compiled.get_property("INFERENCE_NUM_THREADS") == torch.get_num_threads()
    # any batch size gives the same features (the OpenVINO graph has a dynamic batch)
    np.testing.assert_allclose(extractor.features(x, batch_size=3), fast, rtol=0, atol=1e-5)


def test_backend_choice_and_refusals():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert F.choose_backend(cpu, "auto", openvino=True) == "openvino"
    assert F.choose_backend(cpu, "auto", openvino=False) == "folded"
    assert F.choose_backend(cuda, "auto", openvino=True) == "folded"
    assert F.choose_backend(cpu, "torchscript", openvino=True) == "torchscript"
    with pytest.raises(ValueError, match="unknown FID back end 'tensorrt'"):
        F.choose_backend(cpu, "tensorrt")
    with pytest.raises(ValueError, match="runs on the CPU, not on cuda"):
        F.choose_backend(cuda, "openvino")
    with pytest.raises(ValueError, match="runs on the CPU, not on cuda"):
        F.InceptionFeatures("cuda", backend="openvino")  # refused before any weights load
