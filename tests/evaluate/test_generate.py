"""The one pixel and inference path (waekit.generate) and the import graph it keeps acyclic."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import waekit
from waekit.generate import encode_batched, interpolation_codes, to_float, to_uint8


def test_uint8_float_round_trip_and_rounding():
    x = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    f = to_float(x)
    assert f.dtype == torch.float32 and f.min() == 0.0 and f.max() == 1.0
    np.testing.assert_array_equal(to_uint8(f), x)  # exact round trip
    # round(255 x), clipped: 0.5 / 255 rounds to even (0), values outside [0, 1] clip
    y = to_uint8(np.array([[[[-0.2, 0.002, 0.5, 1.7]]]]))
    np.testing.assert_array_equal(y[0, 0, 0], [0, 1, 128, 255])
    with pytest.raises(ValueError, match="uint8 or floats"):
        to_uint8(np.zeros((1, 1, 2, 2), dtype=np.int32))


def test_interpolation_codes_are_the_segment():
    a, b = torch.tensor([[0.0, 2.0]]), torch.tensor([[4.0, -2.0]])
    z = interpolation_codes(a, b, 5)
    np.testing.assert_allclose(z[0].numpy(), [[0, 2], [1, 1], [2, 0], [3, -1], [4, -2]])
    with pytest.raises(ValueError, match="steps=1"):
        interpolation_codes(a, b, 1)


def test_sampled_codes_follow_the_posterior():
    torch.manual_seed(0)
    model = waekit.build_model("vae", (1, 8, 8), 3, "mlp", mlp_hidden=(16,)).eval()
    x = np.random.default_rng(0).integers(0, 256, (1, 1, 8, 8), dtype=np.uint8)
    many = np.repeat(x, 4000, axis=0)
    gen = torch.Generator().manual_seed(1)
    z = encode_batched(model, many, batch_size=700, sample=True, generator=gen).numpy()
    with torch.no_grad():
        post = model.posterior(to_float(x), sample=False)
    mu, var = post.mu.double().numpy()[0], post.logvar.double().exp().numpy()[0]
    # mean within 4 standard errors, variance within 10% (4000 draws)
    assert np.all(np.abs(z.mean(0) - mu) < 4 * np.sqrt(var / 4000))
    np.testing.assert_allclose(z.var(0), var, rtol=0.1)
    means = encode_batched(model, many[:3], batch_size=2).numpy()
    np.testing.assert_allclose(means, np.repeat(mu[None], 3, 0), rtol=1e-6)


def test_importing_the_trainer_and_evaluator_does_not_import_matplotlib_or_reports():
    code = (
        "import sys, waekit.train, waekit.generate, waekit.evaluate\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'"
        " or m.startswith('waekit.report')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
