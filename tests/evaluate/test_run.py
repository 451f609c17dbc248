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
    # said loudly, with the N actually used, and the data named as what was read
    assert result["warnings"][0] == (
        "n = 1000 was asked for but the npz test split has only 40 images: every metric uses n = 40"
    )
    assert result["data"]["description"] == "npz"
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
    # codes compared with the prior two ways: posterior means and draws of Q_Z
    m = result["metrics"]
    for name in ("mmd2_codes_prior", "ot_codes_prior"):
        means, sampled = m[name], m[name + "_sampled"]
        assert "mu" in means["codes"] and "Q_Z" in sampled["codes"]
        assert sampled["n"] == means["n"] and sampled["value"] != means["value"]
    # independent recomputation of the sampled W_2 from the same draws
    from waekit.evaluate.run import _stream_seed, _torch_generator
    from waekit.generate import encode_batched

    run = load_run(run_dir, "cpu")
    real = run.dataset().images[np.sort(np.random.default_rng([0, 1]).choice(40, 20, False))]
    gen = torch.Generator().manual_seed(_stream_seed(0, "posterior"))
    z = encode_batched(run.model, real, 50, sample=True, generator=gen)  # draws for all 20
    prior = run.model.sample_prior(10, _torch_generator(0, "ot")).double()
    assert m["ot_codes_prior_sampled"]["value"] == pytest.approx(M.exact_ot_distance(z[:10], prior))


@pytest.mark.skipif(not inception_available()[0], reason="FID network unavailable")
def test_evaluate_run_fid(tmp_path):
    run_dir = make_run(tmp_path, "wae", "wae-mmd")
    result = evaluate_run(
        run_dir,
        n=10,
        device="cpu",
        fid=True,
        ot_n=8,
        cache_dir=tmp_path / "cache",
        kid_subsets=5,
        bootstrap=4,
    )
    m = result["metrics"]
    protocol = result["fid_protocol"]
    assert protocol["n"] == 10 and protocol["split"] == "test"
    assert "tf-2015-12-05" in protocol["network"]
    assert "singular" in protocol["note"]
    # An untrained decoder's samples are far from digits; its outputs are near-constant grey.
    for what in ("samples", "reconstructions", "gmm_samples"):
        fid = m[f"fid_{what}"]
        assert fid["value"] > 50 and fid["n"] == 10
        assert (
            fid["interval"][0] <= fid["interval"][1] and "4 resamples" in fid["interval_protocol"]
        )
        kid = m[f"kid_{what}"]
        assert kid["value"] > 0 and kid["sd"] > 0 and (kid["subsets"], kid["subset_size"]) == (5, 5)
        fid_inf = m[f"fid_inf_{what}"]
        assert fid_inf["fit_n"][-1] == 10 and fid_inf["fit_fid"][-1] == pytest.approx(fid["value"])
        # far from digits: the generated points lie outside the test manifold
        for key in ("precision", "recall", "density", "coverage"):
            assert 0.0 <= m[f"{key}_{what}"]["value"] <= 1.0 or key == "density"
    assert m["fid_inf_gmm_samples"]["gmm"]["covariance"] == "full"
    assert len(list((tmp_path / "cache").glob("npz-test-n10-*-features.npz"))) == 1
    assert "fid" not in result["skipped"]
    # the summary the CLI prints: one row per metric with its direction
    from waekit.evaluate.run import summary_table

    table = summary_table(result)
    assert "kid_samples" in table and "± " in table and "lower" in table

    # fid_sets: Inception on the prior samples only; the same draws, so the same numbers
    only = evaluate_run(
        run_dir,
        n=10,
        device="cpu",
        ot_n=8,
        cache_dir=tmp_path / "cache",
        kid_subsets=5,
        bootstrap=4,
        fid_sets=["samples"],
        write=False,
    )
    feature_keys = ("fid", "fid_inf", "kid", "precision", "recall", "density", "coverage")
    got = {k for k in only["metrics"] if k.startswith(feature_keys)}
    assert got == {f"{key}_samples" for key in feature_keys}
    for k in got:
        assert only["metrics"][k]["value"] == m[k]["value"], k
    assert only["metrics"]["ot_samples_test"] == m["ot_samples_test"]
    assert only["fid_protocol"]["sets"] == ["samples"]
    assert protocol["sets"] == ["samples", "reconstructions", "gmm_samples"]


def test_cli_evaluate_refuses_an_unknown_fid_set_in_one_line(tmp_path, capsys):
    from waekit.cli import main

    run_dir = make_run(tmp_path, "wae", "wae-mmd")
    code = main(["evaluate", str(run_dir), "--fid-sets", "samples,recon", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 or code == 1
    assert len(err.splitlines()) == 1
    assert "fid_sets = ['samples', 'recon']" in err and "--fid-sets samples" in err
    assert not (run_dir / "metrics.json").exists()


def test_cli_evaluate_prints_a_short_table_and_the_file(tmp_path, capsys):
    from waekit.cli import main

    run_dir = make_run(tmp_path, "wae", "wae-mmd")
    code = main(["evaluate", str(run_dir), "-n", "500", "--no-fid", "--device", "cpu"])
    out = capsys.readouterr()
    assert code == 0
    lines = out.out.splitlines()
    # a header line, the table (metric, value, better, n), the skipped ones, the file written
    assert lines[1].split() == ["metric", "value", "better", "n"]
    rows = {
        line.split()[0]: line.split() for line in lines[3:] if line.startswith(("recon", "ot_"))
    }
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert rows["recon_mse"][1:] == [f"{saved['metrics']['recon_mse']['value']:.4g}", "lower", "40"]
    assert rows["ot_codes_prior"][2] == "lower"
    assert lines[-1] == f"wrote {run_dir / 'metrics.json'} (every number with its protocol)"
    assert len(lines) < 30 and not any(line.startswith("{") for line in lines)
    # asking for more images than the split holds is said on stderr, with the n used
    err = " ".join(out.err.split())
    assert "warning: n = 500 was asked for but the npz test split has only 40 images" in err
    assert saved["n"] == 40 and saved["n_requested"] == 500


def test_evaluate_refuses_a_run_that_another_process_writes(tmp_path, capsys):
    """A run being trained (or evaluated) is not measured: its weights are about to change,
    and two writers of metrics.json would silently mix. One line names the holder."""
    import os

    from waekit.cli import main
    from waekit.errors import ConfigError
    from waekit.run import RunLock

    run_dir = make_run(tmp_path, "wae", "wae-mmd")
    with RunLock(run_dir, "waekit train"):
        with pytest.raises(ConfigError) as info:
            evaluate_run(run_dir, n=10, device="cpu", fid=False)
        assert str(info.value) == (
            f"{run_dir} is being written by waekit train (pid {os.getpid()}); "
            f"wait for it to end, stop it with `kill {os.getpid()}`"
        )
        code = main(["evaluate", str(run_dir), "--no-fid", "--device", "cpu"])
        err = capsys.readouterr().err
        assert code == 1 and len(err.strip().splitlines()) == 1
        assert "is being written by waekit train" in err
        assert not (run_dir / "metrics.json").exists()
        # measuring without writing reads the files only, and is allowed
        assert evaluate_run(run_dir, n=10, device="cpu", fid=False, write=False)["n"] == 10
    # the evaluation holds the lock as "waekit evaluate", then lets go of it
    evaluate_run(run_dir, n=10, device="cpu", fid=False)
    assert (run_dir / ".lock").read_text() == f"{os.getpid()} waekit evaluate\n"
    with RunLock(run_dir):
        pass
