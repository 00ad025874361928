"""SLURM integration test: a real single-node SLURM cluster, the Snakemake SLURM
executor plugin and the cluster profile, end to end.

The module-scoped fixture installs and starts SLURM with ``tests/slurm/setup_slurm.sh``
(root + apt; about 10-60 s, most of it apt) and stops every daemon it started with
``tests/slurm/teardown_slurm.sh``. Without root, apt or working daemons the tests are
SKIPPED WITH THE REASON; set ``GPGAN_SLURM_REQUIRED=1`` (e.g. in CI) to make that a
failure instead.

Which workflow is submitted is set by the constants below (or the matching
``GPGAN_SLURM_*`` environment variables). The default is the throwaway mini workflow
``tests/slurm/mini``; to submit the real pipeline, point them at it, e.g.::

    GPGAN_SLURM_SNAKEFILE=Snakefile
    GPGAN_SLURM_CONFIGFILE=              # empty: none (the Snakefile's configfile:)
    GPGAN_SLURM_COPY=.test/config        # copied into the fresh temporary workdir
    GPGAN_SLURM_WORKDIR=                 # empty / unset: a fresh temporary folder
    GPGAN_SLURM_OUTPUTS=""               # optional extra outputs to check
    GPGAN_SLURM_ARGS="--forceall"        # extra snakemake arguments (a reused workdir
                                         # needs --forceall, or nothing is submitted)

The retry/resume test always uses the mini workflow: it needs a training stand-in
whose duration can be dialled up (``--config train_steps=...``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SLURM_DIR = ROOT / "tests" / "slurm"
MINI = SLURM_DIR / "mini"
PROFILE = ROOT / "profiles" / "slurm-test"
PROFILE_PROD = ROOT / "profiles" / "slurm"


def _path_env(name: str, default: Path | None) -> Path | None:
    value = os.environ.get(name)
    if value is None:
        return default
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else ROOT / path


# --- the workflow submitted by test_workflow_runs_through_slurm ---------------------
WORKFLOW_SNAKEFILE = _path_env("GPGAN_SLURM_SNAKEFILE", MINI / "Snakefile")
WORKFLOW_CONFIGFILE = _path_env(
    "GPGAN_SLURM_CONFIGFILE", MINI / "config" / "config.yaml"
)
# None: run in a fresh temporary folder (outputs, .snakemake/ and sbatch logs go there)
WORKFLOW_WORKDIR = _path_env("GPGAN_SLURM_WORKDIR", None)
# outputs (relative to the workdir) that must exist afterwards, on top of the generic
# check that a dry run finds nothing left to do
WORKFLOW_OUTPUTS = tuple(
    os.environ.get(
        "GPGAN_SLURM_OUTPUTS",
        (
            "results/data.txt results/model.txt results/report.txt"
            if WORKFLOW_SNAKEFILE == MINI / "Snakefile"
            else ""
        ),
    ).split()
)
# files/folders (relative to the repo) copied into the temporary workdir, e.g.
# ".test/config" -> <workdir>/config (the real Snakefile reads config/config.yaml)
WORKFLOW_COPY = tuple(os.environ.get("GPGAN_SLURM_COPY", "").split())
# extra Snakemake arguments, e.g. "--forceall" for a reused workdir whose outputs
# are already there (otherwise nothing is submitted), or "--sdm conda"
WORKFLOW_ARGS = tuple(shlex.split(os.environ.get("GPGAN_SLURM_ARGS", "")))
IS_MINI = WORKFLOW_SNAKEFILE == MINI / "Snakefile"

SETUP_TIMEOUT_S = 420  # apt-get update + install included
RUN_TIMEOUT_S = 300
RETRY_TIMEOUT_S = 420
PID_FILE = Path(os.environ.get("GPGAN_SLURM_STATE", "/run/gpgan-slurm")) / "pids"
SUBMITTED_RE = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: ([^)]+)\)")
SETUP_REASONS = {
    10: "not root",
    11: "SLURM packages cannot be installed",
    12: "a foreign SLURM installation is present",
    13: "SLURM daemons failed to start",
}


def _skip_or_fail(reason: str):
    if os.environ.get("GPGAN_SLURM_REQUIRED") == "1":
        pytest.fail(f"GPGAN_SLURM_REQUIRED=1 but: {reason}")
    pytest.skip(reason)


def _our_daemons_alive() -> bool:
    """True when a cluster started earlier by setup_slurm.sh is still running."""
    try:
        entries = [
            line.split() for line in PID_FILE.read_text().splitlines() if line.strip()
        ]
    except OSError:
        return False
    for name, pid in entries:
        try:
            if not Path(f"/proc/{pid}/comm").read_text().strip().startswith(name):
                return False
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        if state in {"Z", "X"}:  # zombie: gone, just not reaped
            return False
    return bool(entries)


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node SLURM; stopped afterwards if this fixture started it."""
    if sys.platform != "linux":
        _skip_or_fail("the SLURM test cluster needs Linux")
    if os.geteuid() != 0:
        _skip_or_fail(
            "SLURM test needs root (tests/slurm/setup_slurm.sh installs packages, "
            "writes /etc/slurm and starts munged/slurmctld/slurmd)"
        )
    if not (shutil.which("apt-get") or shutil.which("sbatch")):
        _skip_or_fail("SLURM is not installed and apt-get is not available")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _skip_or_fail("snakemake-executor-plugin-slurm is not installed in this Python")

    already_running = _our_daemons_alive()
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            ["bash", str(SLURM_DIR / "setup_slurm.sh")],
            capture_output=True,
            text=True,
            timeout=SETUP_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        subprocess.run(["bash", str(SLURM_DIR / "teardown_slurm.sh")], check=False)
        _skip_or_fail(
            f"tests/slurm/setup_slurm.sh took longer than {SETUP_TIMEOUT_S} s"
        )
    setup_s = time.monotonic() - t0
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        what = SETUP_REASONS.get(proc.returncode, f"exit {proc.returncode}")
        _skip_or_fail(f"tests/slurm/setup_slurm.sh failed ({what}): {last}")
    print(f"SLURM cluster ready after {setup_s:.1f} s")
    try:
        yield {"setup_s": setup_s}
    finally:
        if not already_running:
            subprocess.run(["bash", str(SLURM_DIR / "teardown_slurm.sh")], check=False)


def _snakemake(
    workdir: Path,
    *args: str,
    snakefile: Path,
    configfile: Path | None,
    profile: Path | None = PROFILE,
    timeout: int = RUN_TIMEOUT_S,
    log_dir: Path | None = None,
):
    """Run Snakemake (this Python's) in ``workdir``; returns (returncode, output)."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        "--nocolor",
    ]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    cmd += list(args)
    # the captured output goes to pytest's tmp folder, never into a repo workdir
    log = Path(tempfile.mkstemp(prefix="snakemake-", suffix=".out", dir=log_dir)[1])
    try:
        with log.open("w") as fh:
            proc = subprocess.run(
                cmd, cwd=workdir, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout
            )
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    return rc, log.read_text()


def _submitted(output: str) -> dict[str, Path]:
    """SLURM job id -> sbatch log, from the 'submitted with SLURM jobid' lines."""
    return {jobid: Path(path) for jobid, path in SUBMITTED_RE.findall(output)}


def _slurm_states(jobids) -> dict[str, str]:
    out = subprocess.run(
        [
            "squeue",
            "--states=all",
            "--noheader",
            "--format=%i|%T",
            "--jobs",
            ",".join(jobids),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout
    return dict(line.split("|", 1) for line in out.split() if "|" in line)


def _workdir(tmp_path: Path) -> Path:
    if WORKFLOW_WORKDIR is not None:
        return WORKFLOW_WORKDIR
    workdir = tmp_path / "work"
    workdir.mkdir()
    for rel in WORKFLOW_COPY:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, workdir / src.name)
        else:
            shutil.copy2(src, workdir / src.name)
    return workdir


# --- tests that need no SLURM -------------------------------------------------------


@pytest.mark.parametrize(
    "profile", [PROFILE_PROD, PROFILE], ids=["slurm", "slurm-test"]
)
def test_profile_is_a_slurm_profile(profile):
    cfg = yaml.safe_load((profile / "profile.yaml").read_text())
    assert cfg["executor"] == "slurm"
    assert cfg["retries"] >= 1 and cfg["jobs"] >= 1 and cfg["latency-wait"] >= 1
    assert {"mem_mb", "runtime", "cpus_per_task"} <= set(cfg["default-resources"])
    train = cfg["set-resources"]["train"]
    assert train.get("gpu") == 1 or str(train.get("gres", "")).startswith("gpu")
    # the training time limit grows with the attempt number: left to the rule
    # (config train.runtime_min x attempt), or an `attempt` expression here
    assert "runtime" not in train or "attempt" in str(train["runtime"])
    # --cpus-per-task follows each rule's threads; "all cores" training gets a number
    assert cfg["default-resources"]["cpus_per_task"] == "threads"
    assert isinstance(cfg["set-threads"]["train"], int)
    assert cfg["slurm-status-command"] in {"sacct", "squeue"}
    if profile == PROFILE:
        # the test cluster has no accounting: sacct would hang
        assert cfg["slurm-status-command"] == "squeue"


# --- tests against the real SLURM -----------------------------------------------------


@pytest.mark.slurm
def test_sbatch_and_gpu_job(slurm_cluster, tmp_path):
    """The cluster itself: a plain job and a --gres=gpu:1 job both complete."""
    ids = []
    for extra in ([], ["--gres=gpu:1"]):
        out = subprocess.run(
            [
                "sbatch",
                "--parsable",
                *extra,
                "-o",
                str(tmp_path / "%j.out"),
                "--wrap",
                "echo host=$(hostname) gpus=${CUDA_VISIBLE_DEVICES:-none}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        ids.append(out.strip().split(";")[0])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = _slurm_states(ids)
        if all(states.get(i) == "COMPLETED" for i in ids):
            break
        time.sleep(1)
    assert all(states.get(i) == "COMPLETED" for i in ids), states
    assert "gpus=none" in (tmp_path / f"{ids[0]}.out").read_text()
    assert "gpus=0" in (tmp_path / f"{ids[1]}.out").read_text()


@pytest.mark.slurm
def test_workflow_runs_through_slurm(slurm_cluster, tmp_path):
    workdir = _workdir(tmp_path)
    t0 = time.monotonic()
    rc, out = _snakemake(
        workdir,
        *WORKFLOW_ARGS,
        snakefile=WORKFLOW_SNAKEFILE,
        configfile=WORKFLOW_CONFIGFILE,
        log_dir=tmp_path,
    )
    elapsed = time.monotonic() - t0
    assert rc == 0, f"snakemake --profile {PROFILE} failed ({rc}):\n{out[-6000:]}"
    print(f"workflow through SLURM in {elapsed:.1f} s")

    # jobs really went through SLURM: job ids in the log, sbatch logs, SLURM knows them
    jobs = _submitted(out)
    assert jobs, f"no 'submitted with SLURM jobid' in the Snakemake log:\n{out[-4000:]}"
    for jobid, sbatch_log in jobs.items():
        assert sbatch_log.is_file(), f"sbatch log of job {jobid} missing: {sbatch_log}"
    # finished jobs stay in squeue --states=all for MinJobAge=300 s
    states = _slurm_states(jobs)
    assert states, "SLURM does not know any of the submitted jobs"
    assert set(states.values()) == {"COMPLETED"}, states

    # every output exists: nothing left to do, plus the listed outputs
    for rel in WORKFLOW_OUTPUTS:
        assert (workdir / rel).is_file(), f"missing output {rel}"
    rc, dry = _snakemake(
        workdir,
        "--dry-run",
        snakefile=WORKFLOW_SNAKEFILE,
        configfile=WORKFLOW_CONFIGFILE,
        profile=None,
        timeout=120,
        log_dir=tmp_path,
    )
    assert rc == 0 and "Nothing to be done" in dry, dry[-3000:]

    if IS_MINI:
        # prepare + train went through SLURM, the localrule report did not
        assert len(jobs) == 2, jobs
        assert {p.parent.name for p in jobs.values()} == {"rule_prepare", "rule_train"}
        model = (workdir / "results/model.txt").read_text()
        train_job = re.search(r"train_slurm_job_id=(\S+)", model).group(1)
        assert train_job in jobs, (train_job, jobs)
        # resources gpu=1 -> sbatch --gpus=1 -> SLURM exported the (fake) GPU
        assert re.search(r"train_gpus=0\b", model), model
        assert "localrule report:" in out
        report = (workdir / "results/report.txt").read_text()
        assert "report_slurm_job_id=none" in report


@pytest.mark.slurm
@pytest.mark.slow
def test_training_killed_at_time_limit_is_retried_and_resumes(slurm_cluster, tmp_path):
    """SLURM kills `train` at its 1-minute limit (attempt 1), Snakemake resubmits it
    with runtime = attempt = 2 minutes, and it continues from its progress file."""
    steps, step_s = 30, 4  # 120 s of work: more than attempt 1 can do in 60-90 s
    t0 = time.monotonic()
    rc, out = _snakemake(
        tmp_path,
        "--config",
        f"train_steps={steps}",
        f"train_step_seconds={step_s}",
        snakefile=MINI / "Snakefile",
        configfile=None,
        timeout=RETRY_TIMEOUT_S,
        log_dir=tmp_path,
    )
    # (--config must come last: it takes all following KEY=VALUE words)
    elapsed = time.monotonic() - t0
    assert rc == 0, f"snakemake failed ({rc}):\n{out[-6000:]}"
    print(f"retry+resume run in {elapsed:.1f} s")

    train_jobs = [
        j for j, log in _submitted(out).items() if log.parent.name == "rule_train"
    ]
    assert len(train_jobs) == 2, f"expected 2 submissions of train:\n{out[-4000:]}"
    assert f"SLURM-job '{train_jobs[0]}' failed, SLURM status is: 'TIMEOUT'" in out
    assert _slurm_states(train_jobs) == {
        train_jobs[0]: "TIMEOUT",
        train_jobs[1]: "COMPLETED",
    }

    starts = (tmp_path / "state/train_progress.json.starts").read_text().splitlines()
    parsed = [dict(kv.split("=", 1) for kv in line.split()) for line in starts]
    assert [p["slurm_job_id"] for p in parsed] == train_jobs
    assert [p["runtime"] for p in parsed] == ["1", "2"]  # runtime grows with attempt
    assert parsed[0]["start_step"] == "0"
    assert 0 < int(parsed[1]["start_step"]) < steps, parsed  # resumed, not restarted
    assert f"steps={steps}" in (tmp_path / "results/model.txt").read_text()
