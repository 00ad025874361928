"""The Snakemake workflow: lint, formatting, config validation, dry runs, the tiny
end-to-end run of .test/config (every artefact and the HTML report), idempotence,
and resumption of a killed training job."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")
RULES = ["demo_dataset", "download", "extract", "crop", "composites", "train",
         "select_checkpoint", "train_unsupervised", "select_unsupervised", "blend",
         "fetch_weights", "evaluate", "beta_ablation", "figures"]


def smk(*args, cwd=ROOT, timeout=900, check=True):
    proc = subprocess.run([SNAKEMAKE, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(map(str, args))} failed:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def workdir_with(tmp_path: Path, config: dict) -> Path:
    (tmp_path / "config").mkdir(parents=True, exist_ok=True)
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_lint_is_clean():
    proc = smk("--lint")
    assert "Congratulations" in proc.stdout + proc.stderr


def test_snakefmt_check():
    proc = subprocess.run([str(BIN / "snakefmt"), "--check", "Snakefile", "workflow"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_paper_config_dry_run_builds_the_whole_dag():
    proc = smk("-n", "--configfile", "config/paper.yaml", "--cores", "4")
    text = proc.stdout + proc.stderr
    for rule in ["download", "extract", "crop", "composites", "train", "select_checkpoint",
                 "download_outdoor", "extract_outdoor", "train_unsupervised",
                 "select_unsupervised", "blend", "evaluate", "beta_ablation", "figures",
                 "cross_composites", "train_realism", "blend_cross", "realism",
                 "realism_figures"]:
        assert re.search(rf"^{rule}\s+\d+", text, re.M), rule
    assert re.search(r"^blend\s+7$", text, re.M)  # one job per method


def test_released_models_replace_training_and_selection(tmp_path):
    """config `models`: the authors' files are used instead of training; the train and
    select rules of that method leave the DAG, a released_* rule installs the file."""
    cfg = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    cfg["models"] = {"gp-gan": "released/blending_gan.npz",
                     "gp-gan-unsupervised": "released/unsupervised_blending_gan.npz"}
    wd = workdir_with(tmp_path, cfg)
    (wd / "released").mkdir()
    for name in ("blending_gan.npz", "unsupervised_blending_gan.npz"):
        (wd / "released" / name).write_bytes(b"")
    text = "\n".join(smk("-n", "--cores", "1", "--directory", wd, "--snakefile",
                          ROOT / "Snakefile").stdout.splitlines())
    for rule in ("released_gp_gan", "released_gp_gan_unsupervised"):
        assert re.search(rf"^{rule}\s+1$", text, re.M), rule
    for rule in ("train", "select_checkpoint", "train_unsupervised", "select_unsupervised"):
        assert not re.search(rf"^{rule}\s+\d+", text, re.M), rule


def test_bad_config_fails_before_any_job(tmp_path):
    cfg = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    cfg["blend"]["solvr"] = "cg"  # typo
    wd = workdir_with(tmp_path, cfg)
    proc = smk("-n", "--cores", "1", "--directory", wd, "--snakefile", ROOT / "Snakefile",
               check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "solvr" in text and "Additional properties" in text
    cfg["blend"].pop("solvr")
    cfg["train"]["iterations"] = "many"  # wrong type
    workdir_with(tmp_path, cfg)
    proc = smk("-n", "--cores", "1", "--directory", wd, "--snakefile", ROOT / "Snakefile",
               check=False)
    assert proc.returncode != 0 and "'many'" in proc.stdout + proc.stderr
    assert not (wd / "results").exists()


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        m = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(==|=)\s*([0-9][0-9A-Za-z.]*)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(3)
    return pins


def test_conda_env_matches_requirements():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "envs/gpgan.yaml").read_text())
    entries = [d for d in env["dependencies"] if isinstance(d, str)]
    entries += [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    conda = _pins(e.replace(" =", "=") for e in entries)
    alias = {"matplotlib-base": "matplotlib"}
    checked = 0
    for name, version in conda.items():
        name = alias.get(name, name)
        if name == "python":
            continue
        assert name in req, f"{name} is in envs/gpgan.yaml but not in requirements.txt"
        assert req[name].startswith(version), (name, version, req[name])
        checked += 1
    runtime = {n for n in req if not n.startswith("snakemake")}
    assert runtime <= {alias.get(n, n) for n in conda}, runtime - set(conda)
    assert checked >= 10


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, lpips_weights):
    """The .test configuration run end to end in a scratch working directory (the
    realism judge's AlexNet weights: the session's provisioned folder)."""
    wd = tmp_path_factory.mktemp("tiny")
    shutil.copytree(ROOT / ".test" / "config", wd / "config")
    cfg = yaml.safe_load((wd / "config" / "config.yaml").read_text())
    cfg["evaluate"]["lpips_weights"] = str(Path(lpips_weights).resolve())
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    t0 = time.time()
    proc = smk("--cores", "2", "--directory", wd, "--snakefile", ROOT / "Snakefile")
    return wd, proc, time.time() - t0


def test_tiny_end_to_end_run_produces_every_artefact(tiny_run):
    wd, _, seconds = tiny_run
    run = wd / "results" / "test"
    for rel in ["composites/test.csv", "composites/train.csv", "composites/val.csv",
                "final.pt", "train_log.csv", "model/best.pt", "model/selection.csv",
                "metrics/per_image.csv", "metrics/summary.csv", "metrics/summary.md",
                "metrics/beta_ablation.csv", "benchmarks/train.tsv",
                "unsupervised/final.pt", "unsupervised/train_log.csv",
                "model/unsupervised/best.pt", "model/unsupervised/selection.csv"]:
        assert (run / rel).is_file(), rel
    for fig in ["qualitative", "metrics", "beta", "timing", "training", "samples",
                "training_unsupervised", "samples_unsupervised", "realism", "cross_scene"]:
        assert (run / "figures" / f"{fig}.png").stat().st_size > 1000, fig
    import pandas as pd

    summary = pd.read_csv(run / "metrics" / "summary.csv")
    methods = yaml.safe_load((wd / "config/config.yaml").read_text())["blend"]["methods"]
    assert set(summary["method"]) == set(methods)
    for m in methods:
        blends = list((run / "blends" / m).glob("*.png"))
        assert len(blends) == 3, m
        assert len(list((run / "cross" / "blends" / m).glob("*.png"))) == 3, m
    realism = pd.read_csv(run / "metrics" / "realism" / "summary.csv")
    assert list(realism["method"]) == methods and realism["n"].eq(3).all()
    assert (run / "realism" / "judge.pt").is_file()
    auc = json.loads((run / "realism" / "validation.json").read_text())["auc"]
    assert set(auc) == {"image", "mask"} and 0 <= auc["image"]["other_photo"] <= 1
    for rule in ["composites", "train", "train_unsupervised", "evaluate", "figures",
                 "train_realism", "cross_composites", "realism"]:
        log = next((wd / "logs").rglob(f"{rule}.log"))
        assert log.is_file()
    assert seconds < 300


def test_second_run_does_nothing_and_report_builds(tiny_run):
    wd = tiny_run[0]
    proc = smk("--cores", "2", "--directory", wd, "--snakefile", ROOT / "Snakefile")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    smk("--directory", wd, "--snakefile", ROOT / "Snakefile", "--report",
        "results/report.html")
    html = (wd / "results" / "report.html").read_text(errors="replace")
    assert len(html) > 100_000 and "qualitative.png" in html


def readme_recovery_commands() -> list[list[str]]:
    """The commands of the README's "After a hard kill" block, without "snakemake"."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("**After a hard kill**"):].split("```bash", 1)[1]
    lines = [ln.split("#")[0].split() for ln in block.split("```", 1)[0].splitlines()]
    commands = [ln[1:] for ln in lines if ln and ln[0] == "snakemake"]
    assert commands == [["--unlock"], ["--cores", "all", "--rerun-incomplete"]], commands
    return commands


def test_truncated_blend_is_noticed_by_a_rerun(tiny_run):
    """Issue 13, case 8: a blended PNG truncated after the run (a bad copy, a full
    disk) was not noticed: directory outputs hide their files from Snakemake. Each
    blend is an output of its own now, so the rerun evaluates again and fails naming
    the file; deleting it (as the message says) makes the rerun redo that blend."""
    wd = tiny_run[0]
    png = wd / "results/test/blends/gp/0001.png"
    data = png.read_bytes()
    png.write_bytes(data[: len(data) // 2])
    proc = smk("--cores", "2", "--directory", wd, "--snakefile", ROOT / "Snakefile",
               check=False)
    assert proc.returncode != 0, proc.stdout[-2000:]
    log = (wd / "logs/test/evaluate.log").read_text()
    assert f"{png.relative_to(wd)}: truncated image file" in log, log[-2000:]
    png.unlink()
    proc = smk("--cores", "2", "--directory", wd, "--snakefile", ROOT / "Snakefile")
    assert re.search(r"^blend\s+1$", proc.stdout + proc.stderr, re.M)
    from gpgan.io import read_image

    assert read_image(png).shape == read_image(png.parent / "0000.png").shape


def test_impossible_config_stops_before_any_job(tmp_path):
    """Issue 13, case 8: a split fraction of 0 (the run died with Snakemake's
    "filesystem latency" message), fractions not summing to 1 (passed the dry run)
    and a run name escaping results/ are stopped while the workflow is parsed."""
    base = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    cases = [
        (("composites", "fractions", "val"), 0, "less than or equal to the minimum of 0"),
        (("composites", "fractions", "test"), 0, "less than or equal to the minimum of 0"),
        (("composites", "fractions", "train"), 0.6, "fractions must sum to 1, got 1.1"),
        (("run",), "..", "'..' does not match"),
        (("run",), "../elsewhere", "does not match"),
        (("run",), "a/b", "does not match"),
        (("blend", "color_weight"), 1e-9, "less than the minimum of 0.001"),
    ]
    for i, (keys, value, needle) in enumerate(cases):
        cfg = yaml.safe_load(yaml.safe_dump(base))
        *parents, last = keys
        node = cfg
        for k in parents:
            node = node[k]
        node[last] = value
        wd = workdir_with(tmp_path / f"case{i}" / "wd", cfg)
        proc = smk("-n", "--cores", "1", "--directory", wd, "--snakefile",
                   ROOT / "Snakefile", check=False)
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0 and needle in text, (keys, value, text[-1500:])
        assert "Job stats" not in text and not (wd / "results").exists()
        assert not (wd.parent / "elsewhere").exists()


@pytest.mark.slow
def test_killed_training_resumes_from_its_checkpoint(tmp_path):
    """Kill Snakemake during training; the README's recovery (unlock, rerun with
    --rerun-incomplete) resumes from the last checkpoint in results/<run>/state
    (never a declared output, so never deleted)."""
    cfg = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    cfg["train"].update(iterations=400, checkpoint_every=5, log_every=5)
    cfg["blend"]["methods"] = ["copy-paste", "gp-gan"]
    wd = workdir_with(tmp_path, cfg)
    args = [SNAKEMAKE, "--cores", "2", "--directory", str(wd), "--snakefile",
            str(ROOT / "Snakefile"), "results/test/final.pt"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    state = wd / "results/test/state/checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(state.glob("iter_*.pt"))) < 2:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # no clean-up: as a node failure or OOM kill
    proc.wait()
    saved = sorted(state.glob("iter_*.pt"))
    assert len(saved) >= 2, "training did not checkpoint in time"
    assert not (wd / "results/test/done").exists()
    cfg["train"]["iterations"] = int(saved[-1].stem.split("_")[1]) + 10
    workdir_with(tmp_path, cfg)
    where = ["--directory", wd, "--snakefile", ROOT / "Snakefile"]
    # the README's recovery, exactly; a plain rerun first meets the lock
    proc = smk("--cores", "2", *where, "results/test/final.pt", check=False)
    assert proc.returncode != 0 and "cannot be locked" in proc.stdout + proc.stderr
    unlock, rerun = readme_recovery_commands()
    smk(*unlock, *where)
    out = smk(*rerun, *where, "results/test/final.pt")
    log = (wd / "logs/test/train.log").read_text()
    assert "resuming from" in log, log[-2000:]
    assert (wd / "results/test/done").is_file()
    assert out.returncode == 0
