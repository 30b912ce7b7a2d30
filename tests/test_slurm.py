"""The reproduction on a real Slurm cluster: a single-node cluster on this machine
(tests/slurm_cluster.py), jobs submitted through submitit, as a user would run them. Skipped, with
the reason, where the cluster cannot start (no Debian Slurm packages, not root).

Every run is the quick reproduction of two experiments on the embedded digits, one seed: a few
seconds per job, two jobs at a time on two cores.
"""
import csv
import os
import re
import subprocess
import time

import pytest

import slurm_cluster
from course_lib import launchers, reproduce
from course_lib.recipes import PUBLISHED, RuleSpec
from course_lib.rules import Backprop

EXPERIMENTS = ["akrout_bp", "akrout_fa"]


@pytest.fixture(scope="session")
def slurm():
    """A running cluster: the one found running, or one started here and stopped (by process id) at
    the end of the test run."""
    try:
        started = slurm_cluster.start()
    except slurm_cluster.ClusterUnavailable as e:
        pytest.skip(f"no Slurm cluster here: {e}")
    before = (os.environ.get("SLURM_CONF"), launchers.Slurm.poll_seconds)
    os.environ["SLURM_CONF"] = str(slurm_cluster.CONF)
    launchers.Slurm.poll_seconds = 1.0
    yield
    if started:                                  # our own cluster: no one else's jobs run there
        subprocess.run(["scancel", "--me"], check=False)
        deadline = time.monotonic() + 30
        while active_jobs() and time.monotonic() < deadline:
            time.sleep(0.2)
    slurm_cluster.stop(started)
    launchers.Slurm.poll_seconds = before[1]
    if before[0] is None:
        os.environ.pop("SLURM_CONF")
    else:
        os.environ["SLURM_CONF"] = before[0]


def active_jobs() -> list:
    return [job for job, state in launchers.queue_states().items()
            if state in launchers.QUEUED_STATES | launchers.RUNNING_STATES]


def quick(out, *extra):
    return reproduce.main(["--quick", "--device", "cpu", "--out", str(out), "--only", *EXPERIMENTS, *extra])


def on_slurm(out, *extra):
    return quick(out, "--launcher", "slurm", "--time", "5", *extra)


def table(out) -> list:
    """The CSV table without the training time (which differs from run to run)."""
    with open(out / "reproduction_digits-embedded.csv") as f:
        return [{k: v for k, v in row.items() if k != "train min / seed"} for row in csv.DictReader(f)]


def recorded_jobs(out) -> dict:
    return launchers.Slurm(out / "slurm", "jobs_mnist_quick").jobs()


def wait_until_gone(out, timeout=60):
    """Wait (outside the command under test) until the recorded jobs have left Slurm's active states."""
    ids = set(recorded_jobs(out).values())
    wait_for(lambda: not ids & set(active_jobs()), timeout)


def test_slurm_table_equals_the_local_one(slurm, tmp_path, capsys):
    """Each (experiment, seed) is a job of one array; the command prints the ids and logs, waits with a
    progress line, and writes the same table as --jobs 2 here (one torch thread per run in both)."""
    local = quick(tmp_path / "local", "--jobs", "2")
    capsys.readouterr()
    rows = on_slurm(tmp_path / "slurm")
    printed = capsys.readouterr().out
    jobs = recorded_jobs(tmp_path / "slurm")
    assert list(jobs) == ["akrout_bp_seed0", "akrout_fa_seed0"]
    assert len({job.split("_")[0] for job in jobs.values()}) == 1              # one job array
    for name, job in jobs.items():
        assert re.search(rf"{name} +job {job} +logs {tmp_path}/slurm/slurm/{job}_0_log.out", printed)
    assert re.search(r"Slurm: 2 done / 0 running / 0 queued / 0 failed", printed)
    assert [r["experiment"] for r in rows] == [r["experiment"] for r in local] == EXPERIMENTS
    assert table(tmp_path / "slurm") == table(tmp_path / "local")
    assert sorted(p.name for p in (tmp_path / "slurm" / "runs").glob("*.pt")) == sorted(
        p.name for p in (tmp_path / "local" / "runs").glob("*.pt"))                # the same runs, checkpointed

    assert on_slurm(tmp_path / "slurm") == rows                                    # again: nothing to submit
    assert "Nothing to submit: all 2 runs are done" in capsys.readouterr().out
    assert recorded_jobs(tmp_path / "slurm") == jobs


def test_no_wait_then_collect(slurm, tmp_path, capsys):
    assert on_slurm(tmp_path, "--no-wait") == []
    printed = capsys.readouterr().out
    assert "Submitted 2 Slurm job(s)" in printed and "--collect" in printed
    assert not (tmp_path / "reproduction_digits-embedded.csv").exists()
    assert on_slurm(tmp_path, "--collect") == []                                 # the jobs take seconds
    printed = capsys.readouterr().out
    assert re.search(r"(Queued|Running), not in the table: akrout_bp_seed0", printed) and "Submitted" not in printed
    wait_until_gone(tmp_path)
    rows = on_slurm(tmp_path, "--collect")
    printed = capsys.readouterr().out
    assert [r["experiment"] for r in rows] == EXPERIMENTS and "Submitted" not in printed
    assert "not in the table" not in printed


def test_a_failing_experiment_is_reported_and_alone_resubmitted(slurm, tmp_path, capsys, monkeypatch):
    """An experiment whose rule cannot be made raises in its job: the command reports it with the
    job's log and error line and writes the table of the others; once fixed, a re-run submits only it."""
    broken = PUBLISHED["akrout_fa"].variant("broken", rule=RuleSpec(Backprop, {"no_such_setting": 1}))
    monkeypatch.setitem(PUBLISHED, "broken", broken)
    rows = reproduce.main(["--quick", "--device", "cpu", "--out", str(tmp_path), "--only", "akrout_bp", "broken",
                           "--launcher", "slurm"])
    printed = capsys.readouterr().out
    assert [r["experiment"] for r in rows] == ["akrout_bp"]
    failed = re.search(r"FAILED broken_seed0 \(Slurm job (\S+), log (\S+)\): (.*)", printed)
    assert failed, printed
    job, log, error = failed.groups()
    assert error.startswith("TypeError") and error in open(log).read()
    assert "Not in this table (not finished with this output folder): akrout_fa" in (
        tmp_path / "reproduction_digits-embedded.md").read_text()
    first = recorded_jobs(tmp_path)

    monkeypatch.setitem(PUBLISHED, "broken", PUBLISHED["akrout_fa"].variant("broken"))      # fixed
    rows = reproduce.main(["--quick", "--device", "cpu", "--out", str(tmp_path), "--only", "akrout_bp", "broken",
                           "--launcher", "slurm"])
    printed = capsys.readouterr().out
    assert "Submitted 1 Slurm job(s); 1 run(s) done, queued or running are not submitted again" in printed
    again = recorded_jobs(tmp_path)
    assert again["akrout_bp_seed0"] == first["akrout_bp_seed0"] and again["broken_seed0"] != job
    assert [r["experiment"] for r in rows] == ["akrout_bp", "broken"] and "FAILED" not in printed


def test_a_cancelled_job_is_reported_and_resumes_from_its_checkpoint(slurm, tmp_path, capsys):
    """A job killed while it trains (scancel: as a node failure or the time limit would) leaves the
    queue without a result; --collect reports it with its log, and the resubmitted job resumes from the
    last epoch's checkpoint instead of starting again."""
    args = ["--data", "digits", "--epochs", "400", "--device", "cpu", "--out", str(tmp_path), "--only", "akrout_bp",
            "--seeds", "1", "--launcher", "slurm", "--no-wait"]
    reproduce.main(args)
    job = recorded_jobs_of(tmp_path, "digits", "400ep")["akrout_bp_seed0"]
    checkpoint = wait_for(lambda: next((tmp_path / "runs").glob("akrout_bp_400ep_seed0-*.pt"), None))
    subprocess.run(["scancel", job], check=True)
    wait_for(lambda: job not in active_jobs())
    capsys.readouterr()
    assert reproduce.main([*args[:-1], "--collect"]) == []
    failed = re.search(rf"FAILED akrout_bp_seed0 \(Slurm job {job}, log (\S+)\): (.*)", capsys.readouterr().out)
    assert failed and "CANCELLED" in failed.group(2) and os.path.exists(failed.group(1))

    reproduce.main(args)                                                           # resubmit, don't wait
    resumed = recorded_jobs_of(tmp_path, "digits", "400ep")["akrout_bp_seed0"]
    log = launchers.Slurm(tmp_path / "slurm", "x").job(resumed).paths.stdout
    line = wait_for(lambda: log.exists() and re.search(r"Loaded .* after epoch (\d+); resuming to epoch 400",
                                                       log.read_text()))
    assert int(line.group(1)) >= 1 and checkpoint.name in line.group(0)
    subprocess.run(["scancel", resumed], check=True)


def recorded_jobs_of(out, data, mode) -> dict:
    return launchers.Slurm(out / "slurm", f"jobs_{data}_{mode}").jobs()


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout} s in vain")
