"""Run one function over many named argument tuples: here, in N local processes, or as Slurm jobs.

The reproduction (:mod:`course_lib.reproduce`) trains each (experiment, seed) with one function;
these launchers decide only where that function runs, and each answers with an :class:`Outcome` per
name (done with the function's return value, or failed with the error and, for a job, its log):

* :func:`run_here`: one after the other in this process (an exception stops the run, as usual);
* :func:`run_in_processes`: ``jobs`` at a time in worker processes (``concurrent.futures``, forked
  from a server that has imported the course: :func:`worker_context`), each
  with :func:`threads_per_job` torch threads so that the jobs share the cores without
  oversubscribing them; a failed call leaves the others running;
* :class:`Slurm`: one Slurm job per call, submitted as a job array through ``submitit``. The job ids
  are kept in a small JSON file beside the jobs' logs, so a later process finds the jobs again:
  what is queued or running comes from ``squeue``, what finished from the result file that submitit
  writes at the end of each job (its return value, or the exception), and a job that left the queue
  without one was killed (time limit, node failure, ``scancel``). Resubmitting skips the calls that
  are done, queued or running.
"""
import concurrent.futures
import contextlib
import io
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from . import config

STATUSES = ("done", "running", "queued", "failed", "missing")
# Slurm's job states (squeue %T) that mean waiting and running; any other state has ended.
QUEUED_STATES = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD",
                 "SUSPENDED", "STOPPED", "RESIZING"}
RUNNING_STATES = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}
# The lines that say why a job failed, most telling first: a Python exception, Slurm's notice of a
# cancelled job ("*** JOB 12 ON node CANCELLED AT ... DUE TO TIME LIMIT ***"), any other error line.
ERROR_LINES = (re.compile(r"^[\w.]*(Error|Exception|Interrupt|Exit)\b"), re.compile(r"\*\*\*.*(CANCELLED|DUE TO)"),
               re.compile(r"error|killed", re.IGNORECASE))


@dataclass
class Outcome:
    """Where one call stands: ``status`` is one of :data:`STATUSES`; ``result`` is the function's
    return value once done; ``job`` and ``log`` name a Slurm job and its error log; ``error`` is the
    last error line of a failed call."""
    status: str
    result: object = None
    job: str = ""
    log: str = ""
    error: str = ""


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """Torch threads for each of ``jobs`` simultaneous jobs: the cores shared out, at least one each."""
    return max(1, (cores or available_cores()) // jobs)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def with_threads(threads: int, fn, *args):
    """``fn(*args)`` with torch limited to ``threads`` threads (what a worker or a Slurm job runs)."""
    torch.set_num_threads(threads)
    return fn(*args)


def last_error_line(text: str) -> str:
    """The last line of a log that says why the job failed (:data:`ERROR_LINES`), else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for pattern in ERROR_LINES:
        matching = [line for line in lines if pattern.search(line)]
        if matching:
            return matching[-1]
    return lines[-1] if lines else ""


def run_here(fn, calls: dict) -> dict:
    """``{name: Outcome}``, calling ``fn(*args)`` for each ``calls[name]`` in turn, in this process."""
    return {name: Outcome("done", fn(*args)) for name, args in calls.items()}


def worker_context():
    """Where worker processes come from: a fork server that has imported the course once, so a
    worker starts in milliseconds instead of seconds and inherits no torch threads from the process
    that launched it; fresh interpreters ("spawn") where there is no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["course_lib.recipes"])
    return context


def run_in_processes(fn, calls: dict, jobs: int, progress: bool = True) -> dict:
    """``{name: Outcome}``, ``jobs`` calls at a time in worker processes (:func:`worker_context`) with
    :func:`threads_per_job` torch threads each; a call that raises is reported as failed with its
    traceback, and the others go on. ``progress``: a line per finished call (off on a book page)."""
    threads = threads_per_job(jobs)
    say = print if progress else (lambda *_: None)
    say(f"Running {len(calls)} jobs, {jobs} at a time, {threads} torch thread(s) each.")
    outcomes = {}
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=worker_context()) as pool:
        futures = {pool.submit(with_threads, threads, fn, *args): name for name, args in calls.items()}
        for future in concurrent.futures.as_completed(futures):
            name, error = futures[future], future.exception()
            if error is None:
                outcomes[name] = Outcome("done", future.result())
            else:
                text = "".join(traceback.format_exception(error))
                print(f"{name} failed:\n{text}", file=sys.stderr)
                outcomes[name] = Outcome("failed", error=last_error_line(text))
            say(f"[{len(outcomes)}/{len(calls)}] {name}: {outcomes[name].status}")
    return {name: outcomes[name] for name in calls}


class Slurm:
    """The calls as Slurm jobs, through submitit: logs, submitit's files and the record of the jobs
    (``<record>.json``, name -> job id) in ``folder``, which every node must see. ``parameters`` are
    submitit's (``timeout_min``, ``cpus_per_task``, ``gpus_per_node``, ``slurm_partition``,
    ``slurm_additional_parameters``...); each job runs ``cpus_per_task`` torch threads."""

    poll_seconds = 5.0

    def __init__(self, folder, record: str, **parameters):
        self.folder = Path(folder).resolve()
        self.record = self.folder / f"{record}.json"
        self.parameters = parameters

    def jobs(self) -> dict:
        """The recorded ``{name: job id}``, the latest job of each name."""
        return json.loads(self.record.read_text()) if self.record.exists() else {}

    def submit(self, fn, calls: dict) -> dict:
        """Submit ``fn(*args)`` for each of ``calls`` as one job array; record and return ``{name: job id}``."""
        import submitit
        executor = submitit.AutoExecutor(folder=self.folder, cluster="slurm")
        executor.update_parameters(**self.parameters)
        threads = self.parameters.get("cpus_per_task", 1)
        columns = list(zip(*calls.values()))
        jobs = executor.map_array(partial(with_threads, threads, fn), *columns)
        ids = {name: job.job_id for name, job in zip(calls, jobs)}
        self.folder.mkdir(parents=True, exist_ok=True)
        self.record.write_text(json.dumps({**self.jobs(), **ids}, indent=1))
        return ids

    def outcomes(self, names) -> dict:
        """``{name: Outcome}`` for these names, from the queue and the jobs' files."""
        recorded, queue = self.jobs(), queue_states()
        return {name: self.outcome(recorded[name], queue.get(recorded[name], "")) if name in recorded
                else Outcome("missing") for name in names}

    def job(self, job_id: str):
        """submitit's handle on a job of this folder: its files (``.paths``) and its result."""
        import submitit
        return submitit.SlurmJob(folder=self.folder, job_id=job_id)

    def outcome(self, job_id: str, state: str) -> Outcome:
        job = self.job(job_id)
        log = str(job.paths.stderr)
        if state in QUEUED_STATES:
            return Outcome("queued", job=job_id, log=log)
        if state in RUNNING_STATES and not job.paths.result_pickle.exists():
            return Outcome("running", job=job_id, log=log)
        if job.paths.result_pickle.exists() and job.exception() is None:
            return Outcome("done", job.result(), job=job_id, log=log)
        text = job.paths.stderr.read_text(errors="replace") if job.paths.stderr.exists() else ""
        error = last_error_line(text) or f"the job left the queue ({state or 'no longer listed'}) without a result"
        return Outcome("failed", job=job_id, log=log, error=error)

    def wait(self, names) -> dict:
        """Poll until none of ``names`` is queued or running, printing a progress line at each change;
        return their outcomes."""
        last = None
        while True:
            outcomes = self.outcomes(names)
            counts = {status: sum(o.status == status for o in outcomes.values()) for status in STATUSES[:4]}
            line = " / ".join(f"{counts[s]} {s}" for s in STATUSES[:4])
            if line != last:
                print(f"[{time.strftime('%H:%M:%S')}] Slurm: {line}", flush=True)
                last = line
            if not counts["running"] and not counts["queued"]:
                return outcomes
            time.sleep(self.poll_seconds)


def queue_states() -> dict:
    """``{job id: state}`` of this user's jobs that Slurm still lists (array tasks one by one, as
    ``12_3``), ended ones included while the controller keeps them (``MinJobAge``, 5 minutes by
    default)."""
    result = subprocess.run(["squeue", "--me", "--noheader", "--array", "--states=all", "--format=%i|%T"],
                            capture_output=True, text=True, check=True)
    return dict(line.strip().split("|", 1) for line in result.stdout.splitlines() if "|" in line)


# ---------------------------------------------------------------- many recipes, side by side (the chapters)

def run_recipe(recipe, data, seed: int, on_epoch=None):
    """``recipe.run(data, seed, on_epoch=on_epoch)``: what :func:`run_many` runs for each call."""
    return recipe.run(data, seed, on_epoch=on_epoch)


def run_recipe_quietly(recipe, data, seed: int, on_epoch=None):
    """:func:`run_recipe` without the training loop's printed notes (a run that blew up or whose loss
    grew still says so in ``history.diverged`` and ``history.loss_grew``): for a search that tries
    rates too large on purpose and reports such runs in its own table."""
    with contextlib.redirect_stdout(io.StringIO()):
        return run_recipe(recipe, data, seed, on_epoch)


def run_many(calls: dict, data, jobs: int = 1, quiet: bool = False) -> dict:
    """{key: History} for ``calls`` = {key: (recipe, seed, on_epoch)}, each trained or loaded on
    ``data``: one after the other here when ``jobs`` is 1, else ``jobs`` at a time in worker processes
    (:func:`run_in_processes`, the cores shared out among them: on the course's
    small networks one run per core trains more per second than one run on every core). The data
    reach the workers through shared memory; ``on_epoch`` must then pickle (a module-level function,
    or :class:`~course_lib.alignment.alignment_tracker`). A run that raises stops with its error.
    ``quiet``: the runs print no notes (:func:`run_recipe_quietly`)."""
    args = {key: (recipe, data, seed, on_epoch) for key, (recipe, seed, on_epoch) in calls.items()}
    fn = run_recipe_quietly if quiet else run_recipe
    if jobs == 1 or len(calls) <= 1:
        return {key: outcome.result for key, outcome in run_here(fn, args).items()}
    outcomes = run_in_processes(fn, args, jobs, progress=False)
    failed = {key: o.error for key, o in outcomes.items() if o.status != "done"}
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(calls)} runs failed: " +
                           "; ".join(f"{key}: {error}" for key, error in failed.items()))
    return {key: outcome.result for key, outcome in outcomes.items()}


def parallel_jobs() -> int:
    """How many runs a chapter trains side by side: one per core in full mode, one in fast mode
    (where starting worker processes would take longer than the tiny runs)."""
    return config.by_mode(full=available_cores(), quick=1)
