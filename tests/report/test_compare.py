"""`waekit compare`: runs grouped by config, mean ± sd and n per metric, costs labelled."""

import json
import shlex
import statistics

import pytest
from report_pages import parse
from seed_metrics import SEED_METRICS, set_seed, write_metrics
from waekit_testruns import make_run

from waekit.cli import main
from waekit.errors import DataError
from waekit.report import compare_runs
from waekit.report.compare import differing_keys, expand_run_dirs, group_runs, summarize
from waekit.report.html import METRIC_LABELS, format_value

pytestmark = pytest.mark.usefixtures("use_npz_loader")


def _table(md_text, first_header):
    """The Markdown table whose header starts with first_header: {row label: cells}."""
    lines = md_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header[1:], cells[1:], strict=True))
    return header, rows


def _expected(values):
    """The cell for a group's values, computed with the statistics module."""
    if len(values) == 1:
        return format_value(values[0])
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    return f"{format_value(mean)} ± {format_value(sd)} (n = {len(values)})"


def test_summarize_is_mean_and_sample_sd():
    s = summarize([10.0, 12.0, 17.0])
    assert s.mean == pytest.approx(13.0) and s.n == 3
    assert s.sd == pytest.approx(13.0**0.5)  # ((-3)^2 + (-1)^2 + 4^2) / 2 = 13
    assert summarize([2.5]).sd is None and summarize([2.5]).text() == "2.5"
    with pytest.raises(ValueError):
        summarize([])


def test_group_runs_by_config_without_seed():
    base = {"model": {"name": "wae-mmd", "lam": 10.0}, "train": {"seed": 0, "steps": 5}}

    def cfg(**changes):
        out = json.loads(json.dumps(base))
        for key, value in changes.items():
            section, name = key.split("__")
            out[section][name] = value
        return out

    configs = [
        cfg(),
        cfg(train__seed=1),
        cfg(model__lam=5.0),
        cfg(train__seed=2),
        cfg(model__lam=5.0, train__seed=7),
        cfg(train__device="cpu"),  # where it ran does not change what was trained
    ]
    assert group_runs(configs) == [[0, 1, 3, 5], [2, 4]]
    assert differing_keys([configs[0], configs[2]]) == ["model.lam"]
    assert differing_keys([configs[0], cfg(train__steps=9, model__name="vae")]) == [
        "model.name",
        "train.steps",
    ]


def test_compare_groups_seeds_with_mean_sd_and_n(seed_runs, tmp_path):
    dirs = sorted((seed_runs / "wae-l2").glob("seed-*")) + sorted(
        (seed_runs / "wae-bce").glob("seed-*")
    )
    md, page = compare_runs(dirs, tmp_path / "cmp", device="cpu")
    text = md.read_text()
    header, rows = _table(text, "metric")
    assert header == ["metric", "better", "wae-l2 (n = 3)", "wae-bce (n = 2)"]
    l2, bce = SEED_METRICS["wae-l2"], SEED_METRICS["wae-bce"]
    fid = rows["FID, prior samples"]
    assert fid["wae-l2 (n = 3)"] == _expected([m["fid_samples"] for m in l2])
    assert fid["wae-l2 (n = 3)"] == "13 ± 3.606 (n = 3)"
    assert fid["wae-bce (n = 2)"] == _expected([m["fid_samples"] for m in bce])
    # KID is aggregated too, under its label; one run lacks it: n = 2.
    kid = rows[METRIC_LABELS["kid_samples"]]
    assert kid["wae-l2 (n = 3)"] == _expected([0.01, 0.03]) == "0.02 ± 0.01414 (n = 2)"
    assert kid["wae-bce (n = 2)"] == _expected([0.5, 0.7])
    # The two costs are never one column: each row names its cost, the other group is n/a.
    l2_row = rows["Reconstruction cost per image [0.05 × squared L2]"]
    bce_row = rows["Reconstruction cost per image [Bernoulli cross-entropy]"]
    assert l2_row == {
        "better": "lower",
        "wae-l2 (n = 3)": _expected([3.0, 4.0, 8.0]),
        "wae-bce (n = 2)": "n/a",
    }
    assert bce_row == {
        "better": "lower",
        "wae-l2 (n = 3)": "n/a",
        "wae-bce (n = 2)": _expected([100.0, 110.0]),
    }
    assert fid["better"] == "lower" and kid["better"] == "lower"
    # What differs between the groups, with the values.
    _, differ = _table(text, "config key")
    assert differ["model.recon"] == {"wae-l2": "l2", "wae-bce": "bernoulli"}
    assert differ["model.recon_scale"] == {"wae-l2": "0.05", "wae-bce": "1.0"}
    assert "train.seed" not in differ
    assert "The groups differ in model.recon, model.recon_scale." in text
    # Each run's own values, and the runs with their seeds.
    _, per_run = _table(text, "metric | better | wae-l2/seed-0")
    assert per_run["FID, prior samples"]["wae-bce/seed-1"] == "30"
    _, runs = _table(text, "run")
    assert [r["train.seed"] for r in runs.values()] == ["0", "1", "2", "0", "1"]
    # The HTML page shows the same cells.
    cells = parse(page).cells
    assert "13 ± 3.606 (n = 3)" in cells
    assert "Reconstruction cost per image [Bernoulli cross-entropy]" in cells


def test_compare_expands_a_folder_of_runs_and_writes_beside_them(seed_runs):
    assert expand_run_dirs([seed_runs / "wae-l2"]) == [
        seed_runs / "wae-l2" / f"seed-{i}" for i in range(3)
    ]
    md, page = compare_runs([seed_runs / "wae-l2"], device="cpu")
    assert md == seed_runs / "wae-l2" / "compare" / "comparison.md"
    assert page.parent == md.parent and (md.parent / "samples-3.png").is_file()
    header, rows = _table(md.read_text(), "metric")
    assert header == ["metric", "better", "wae-l2 (n = 3)"]
    assert rows["FID, prior samples"]["wae-l2 (n = 3)"] == "13 ± 3.606 (n = 3)"
    # The compare/ folder is not a run: comparing the folder again still finds 3 runs.
    assert len(expand_run_dirs([seed_runs / "wae-l2"])) == 3


def test_seed_natural_order(tmp_path):
    for seed in (10, 2, 1):
        run = make_run(tmp_path, f"seed-{seed}", "wae-mmd")
        set_seed(run, seed)
    assert [p.name for p in expand_run_dirs([tmp_path])] == ["seed-1", "seed-2", "seed-10"]


def test_compare_cli_default_out_and_bad_paths(seed_runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["compare", str(seed_runs / "wae-bce"), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    where = seed_runs / "wae-bce" / "compare"
    assert out.split() == [
        "wrote",
        str(where / "comparison.md"),
        "wrote",
        str(where / "comparison.html"),
    ]
    assert not (tmp_path / "compare").exists()  # nothing in the working directory
    code = main(["compare", str(tmp_path / "nowhere")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "nowhere' does not exist" in err and "waekit train" in err


@pytest.mark.parametrize(
    "content, why",
    [
        ("{not json", "not valid JSON (Expecting property name enclosed in double quotes"),
        (None, "not valid JSON (Unterminated string"),  # truncated mid-file
        ("[1, 2]", "not a waekit metrics file (a JSON list instead of an object)"),
        ('{"metrics": {"fid_samples": {"value": "12"}}}', "'fid_samples' has a value that"),
        (b"\xff\xfe\x00garbage", "is not valid JSON ("),  # binary junk
    ],
)
@pytest.mark.parametrize("command", ["compare", "report"])
def test_damaged_metrics_json_is_one_clear_line(seed_runs, tmp_path, capsys, content, why, command):
    run = make_run(tmp_path, "run dir", "wae-mmd")  # a space: the hint must quote it
    write_metrics(run, SEED_METRICS["wae-l2"][0])
    path = run / "metrics.json"
    if content is None:
        full = path.read_text()
        content = full[: full.index('"recon_cost"') + 5]
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    before = sorted(p.name for p in run.iterdir())
    code = main([command, str(run), "--device", "cpu"])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 1 and len(lines) == 1, captured.err
    assert lines[0].startswith(f"error: {path} is ") and why in lines[0]
    hint = lines[0].split("`")[1]
    assert shlex.split(hint) == ["waekit", "evaluate", str(run)]
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written


def test_runs_of_one_config_trained_by_another_library_are_their_own_group(seed_runs, tmp_path):
    import shutil

    ours = sorted((seed_runs / "wae-l2").glob("seed-*"))[:2]
    peers = []
    for d in ours:  # the same config and metrics, trained (say) by pythae
        peer = tmp_path / "pythae-wae-l2" / d.name
        shutil.copytree(d, peer, ignore=shutil.ignore_patterns("compare"))
        (peer / "peer.json").write_text('{"library": "pythae", "version": "0.1.2"}\n')
        peers.append(peer)
    md, _ = compare_runs(ours + peers, tmp_path / "cmp", device="cpu")
    text = md.read_text()
    header, rows = _table(text, "metric")
    assert header == ["metric", "better", "wae-l2 (n = 2)", "pythae-wae-l2 (n = 2)"]
    fid = rows["FID, prior samples"]
    assert fid["wae-l2 (n = 2)"] == fid["pythae-wae-l2 (n = 2)"] == _expected([10.0, 12.0])
    _, differ = _table(text, "config key")
    assert differ == {"trained_by": {"wae-l2": "waekit", "pythae-wae-l2": "pythae 0.1.2"}}
    # a damaged peer.json is one line that names the file
    (peers[0] / "peer.json").write_text("{not json")
    with pytest.raises(DataError, match=r"peer\.json cannot be read .* restore it"):
        compare_runs(ours + peers, tmp_path / "cmp2", device="cpu")
