import json

import numpy as np
import pytest
import torch
from waekit_testruns import make_run

from waekit.evaluate import evaluate_run
from waekit.evaluate import metrics as M
from waekit.evaluate.fid import inception_available
from waekit.run import load_run

pytestmark = pytest.mark.usefixtures("use_npz_loader")


def test_evaluate_run_numbers_protocols_and_determinism(tmp_path):
    run_dir = make_run(tmp_path, "wae", "wae-mmd")
    result = evaluate_run(run_dir, n=1000, device="cpu", seed=3, fid=False, ot_n=25)
    assert json.loads((run_dir / "metrics.json").read_text()) == result
    n_test = result["data"]["size"]
    assert n_test == 40 and result["n"] == 40 and result["n_requested"] == 1000  # capped
    m = result["metrics"]
    assert result["skipped"]["fid"] == "disabled (fid=False)"
    assert "iw_bound" in result["skipped"] and "iw_bound" not in m

    # Independent recomputation on the whole test split (n = all 40 images, in file order).
    run = load_run(run_dir, "cpu")
    images = run.dataset().images
    x = torch.from_numpy(images).float() / 255.0
    with torch.no_grad():
        recon = run.model.reconstruct(x)
        codes = run.model.encode(x).double()
    assert m["recon_mse"]["value"] == pytest.approx(((x - recon) ** 2).mean().item(), rel=1e-5)
    assert m["recon_cost"]["value"] == pytest.approx(
        ((x - recon) ** 2).flatten(1).sum(1).mean().item(), rel=1e-5
    )
    assert m["sharpness_test"]["value"] == pytest.approx(M.sharpness(images), rel=1e-12)
    assert m["sharpness_reconstructions"]["value"] == pytest.approx(M.sharpness(recon), rel=1e-4)
    np.testing.assert_allclose(result["code_statistics"]["mean"], codes.mean(0).numpy(), atol=1e-6)
    for name in ("ot_samples_test", "ot_codes_prior", "ot_reconstructions_test"):
        assert m[name]["n"] == 25 and m[name]["value"] > 0
    assert m["mmd2_codes_prior"]["n"] == 40
    assert m["sharpness_gmm_samples"]["gmm"]["fitted_on"] == "360 posterior means of train images"
    for entry in m.values():
        assert entry["split"] == "test" and entry["seed"] == 3 and entry["n"] >= 25
        assert isinstance(entry["value"], float)

    again = evaluate_run(run_dir, n=1000, device="cpu", seed=3, fid=False, ot_n=25, write=False)
    assert {k: v["value"] for k, v in again["metrics"].items()} == {
        k: v["value"] for k, v in m.items()
    }
    other = evaluate_run(run_dir, n=30, device="cpu", seed=4, fid=False, ot_n=25, write=False)
    assert other["metrics"]["ot_samples_test"]["value"] != m["ot_samples_test"]["value"]


def test_evaluate_run_gaussian_encoder_has_iw_bound(tmp_path):
    run_dir = make_run(tmp_path, "vae", "vae", net="mlp", mlp_hidden=(32,))
    result = evaluate_run(run_dir, n=20, device="cpu", fid=False, ot_n=10, iw_k=8, iw_n=12)
    iw = result["metrics"]["iw_bound"]
    assert iw["k"] == 8 and iw["n"] == 12 and iw["value"] < 0
    # binary cross-entropy of grey pixels summed over 784 pixels: hundreds of nats
    assert -2000 < iw["value"] < -100
    assert "iw_bound" not in result["skipped"]


@pytest.mark.skipif(not inception_available()[0], reason="FID network unavailable")
def test_evaluate_run_fid(tmp_path):
    run_dir = make_run(tmp_path, "wae", "wae-mmd")
    result = evaluate_run(
        run_dir, n=8, device="cpu", fid=True, ot_n=8, cache_dir=tmp_path / "cache"
    )
    m = result["metrics"]
    protocol = result["fid_protocol"]
    assert protocol["n"] == 8 and protocol["split"] == "test"
    assert "tf-2015-12-05" in protocol["network"]
    assert "singular" in protocol["note"]
    # An untrained decoder's samples are far from digits; its outputs are near-constant grey.
    for name in ("fid_samples", "fid_reconstructions", "fid_gmm_samples"):
        assert m[name]["value"] > 50 and m[name]["n"] == 8
    assert len(list((tmp_path / "cache").glob("npz-test-n8-*.npz"))) == 1
    assert "fid" not in result["skipped"]
