"""Reproduce the published numbers the book quotes, each with its own recipe (Chapter 8).

    python -m course_lib.reproduce --list              # the experiments, their recipes and sources
    python -m course_lib.reproduce                     # run them all (hours on a CPU; resumable)
    python -m course_lib.reproduce --chapter 5         # only the runs behind chapter 5's figures
    python -m course_lib.reproduce --estimate          # how long it would take here
    python -m course_lib.reproduce --quick             # the same pipeline in seconds (the tests)
    python -m course_lib.reproduce --jobs 2            # two runs at a time on this machine
    python -m course_lib.reproduce --compile           # each run's update through torch.compile
    python -m course_lib.reproduce --launcher slurm --partition gpu --gpus-per-node 1 --time 120
                                                       # one Slurm job per run (--no-wait, --collect)

Every run is a ``train`` call with a checkpoint, so an interrupted reproduction resumes where it
stopped and a finished run is loaded, not trained again. Each (experiment, seed) is one call of
:func:`run_one`, wherever it runs: in this process, ``--jobs N`` at a time in worker processes, or
as one Slurm job each (:mod:`course_lib.launchers`). Before starting locally, the command times a few
steps of each run and prints an estimate of the total. It writes ``reproduction.md`` and
``reproduction.csv`` (``reproduction_<data>.*`` on other data than MNIST; one row per published figure: source, the course's number as mean ± std over
seeds, the data it was measured on, the gap and the training time) into ``--out``, the runs'
checkpoints into ``--out``/runs and, on Slurm, the jobs' logs into ``--out``/slurm. The recipes
themselves live in :mod:`course_lib.recipes`.
"""
import argparse
import csv
import functools
import os
import re
import time
from pathlib import Path

from . import config, data as datasets, launchers
from .compiled import compile_problem
from .recipes import PUBLISHED, Recipe, final_accuracies, mean_std
from .tables import markdown_table
from .train import evaluate

# Where the command writes, and where chapter 8 looks for, the tables: the repository's reproduction/
# folder (or $COURSE_REPRODUCTION_DIR), wherever the command or the notebook is started from.
DEFAULT_OUT = Path(os.environ.get("COURSE_REPRODUCTION_DIR") or Path(__file__).resolve().parents[1] / "reproduction")


def estimate_seconds(recipe: Recipe, dataset, quick: bool, num_seeds: int) -> float:
    """Seconds for every run of ``recipe``: a few timed steps and one timed evaluation of the
    validation and test sets (``train`` evaluates both after every epoch), scaled to the whole run."""
    per_step = recipe.seconds_per_step(dataset, steps=3 if quick else 20)
    net = recipe.network(dataset)
    rule = recipe.make_rule(0, quick).bind(net)
    seen = recipe.training_data(dataset)
    start = time.perf_counter()
    for split in ("val", "test") if len(seen.y_val) else ("test",):
        float(evaluate(net, getattr(seen, f"X_{split}"), getattr(seen, f"y_{split}"), rule)["loss"])
    per_epoch = per_step * recipe.steps_per_epoch(dataset) + time.perf_counter() - start
    return per_epoch * (1 if quick else recipe.num_epochs) * num_seeds


@functools.lru_cache(maxsize=2)
def load_data(name: str, quick: bool, device=None):
    """The data set by name, loaded once per process (the command's own table and every run it trains
    here share it)."""
    return datasets.load(name, quick=quick, device=config.get_device(device))


def run_one(recipe: Recipe, seed: int, data, quick: bool, out, device=None, compile: bool = False,
            progress: bool = False):
    """Train, resume or load one (experiment, seed) into ``out/runs`` and return its History: what
    every launcher runs, here, in a worker process (``--jobs``) or in a Slurm job. ``data``: the
    data set's name (a Slurm job loads it, once per process) or the data set itself (worker
    processes on this machine get it through shared memory instead of loading it again). ``compile``:
    the rule's update through torch.compile (:mod:`course_lib.compiled`)."""
    dataset = data if isinstance(data, datasets.Dataset) else load_data(data, quick, device)
    history = recipe.run(dataset, seed, quick=quick, runs_dir=Path(out) / "runs", progress=progress, compile=compile)
    if history.diverged:
        print(f"{recipe.key}, seed {seed}: {history.diverged}")
    return history


AS_SOURCE = "as source"   # the protocol column's mark of a row trained on what its source trained on


def trained_on(recipe: Recipe, dataset) -> str:
    """The table's protocol column: how many images the row's runs trained on, marked as its source's
    (every published recipe trains on what its source trained on: :mod:`course_lib.recipe`)."""
    return f"{len(recipe.training_data(dataset).X_train):,} {AS_SOURCE}"


def table_rows(results: dict, dataset) -> list:
    """One row per recipe in ``results`` ({key: [History, ...]}): what was published, what the course
    measured and on what (the protocol), the training time, and the gap (only when the course measured
    on the published figure's data set: other data has other accuracies) with whether it is within the
    figure's tolerance."""
    rows = []
    for key, histories in results.items():
        recipe, accs = PUBLISHED[key], final_accuracies(histories)
        published = recipe.published
        mean, std = mean_std(accs)
        gap = mean - published.accuracy
        same_data = dataset.name == published.data
        rows.append({"experiment": key, "chapter": recipe.chapter, "published (%)": str(published),
                     "source": published.source, "kind of source": published.kind,
                     "course (%)": f"{mean:.2f} ± {std:.2f}" if len(accs) > 1 else f"{mean:.2f}",
                     "seeds": len(accs), "data": dataset.name, "trained on": trained_on(recipe, dataset),
                     "gap (points)": f"{gap:+.2f}" if same_data else f"— (published on {published.data})",
                     "within tolerance": ("yes" if abs(gap) <= published.tolerance else "no") if same_data else "—",
                     "train min / seed": f"{mean_std([training_minutes(h) for h in histories])[0]:.1f}",
                     "note": recipe.note})
    return rows


def training_minutes(history) -> float:
    """A run's training time: its median epoch's seconds times its number of epochs, so that an epoch
    stretched by a paused process or a stalled machine does not count in (the first record, before
    any training, has 0 seconds)."""
    epochs = sorted(history["seconds"][1:])
    return epochs[len(epochs) // 2] * len(epochs) / 60 if epochs else 0.0


def table_path(out: Path, data_name: str) -> Path:
    """``out/reproduction.md`` for MNIST, where the published figures were measured, and
    ``out/reproduction_<data>.md`` for other data (``reproduction_fashion-mnist.md``); the CSV beside it."""
    suffix = "" if data_name == "MNIST" else "_" + re.sub(r"[^a-z0-9]+", "-", data_name.lower()).strip("-")
    return out / f"reproduction{suffix}.md"


def read_table(csv_path) -> list:
    """The rows of a table's CSV, as dicts."""
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def merged_rows(rows: list, path: Path, title: str, earlier: dict) -> list:
    """``rows`` merged by experiment into the table already at ``path`` (its CSV), when that table was
    written under the same title (the same protocol and data): a rerun replaces its own row, a new
    experiment is added, the other rows stay, each filled in with ``earlier`` where it lacks a column
    (a row written before the column existed). In the order of ``PUBLISHED``."""
    csv_path = path.with_suffix(".csv")
    if not (csv_path.exists() and path.exists() and path.read_text().startswith(f"Reproduction ({title}).")):
        return rows
    by_key = {row["experiment"]: {**earlier, **row} for row in read_table(csv_path) if row.get("experiment") in PUBLISHED}
    by_key.update({row["experiment"]: row for row in rows})
    return [{column: by_key[key][column] for column in rows[0]} for key in PUBLISHED if key in by_key]


def summary(rows: list) -> dict | None:
    """What the table's rows add up to (None when no row has a gap, on other data than the figures'):
    the number of rows, the mean signed gap (points) and its spread over rows (standard deviation,
    smallest, largest), the rows within tolerance and the rows trained on what their sources trained on."""
    gaps = [float(row["gap (points)"]) for row in rows if row["gap (points)"][:1] in "+-"]
    if not gaps:
        return None
    mean, std = mean_std(gaps)
    return {"rows": len(gaps), "mean gap": mean, "gap std": std, "smallest gap": min(gaps), "largest gap": max(gaps),
            "within tolerance": sum(row["within tolerance"] == "yes" for row in rows),
            "as source": sum(row.get("trained on", "").endswith(AS_SOURCE) for row in rows)}


MEAN_GAP_TARGET = 0.10   # points: the mean signed gap of a reproduction without a systematic lean


def summary_line(rows: list) -> str:
    """The table's summary in one line (:func:`summary`), and what it says of the gaps' sign; the
    README and chapter 8 quote it."""
    s = summary(rows)
    if s is None:
        return "No gaps: these rows were measured on other data than the published figures."
    lean = (f"the gaps centre on zero (their mean is within {MEAN_GAP_TARGET:.2f} points of it)"
            if abs(s["mean gap"]) <= MEAN_GAP_TARGET else
            f"the gaps lean {'below' if s['mean gap'] < 0 else 'above'} the published figures (their mean is "
            f"more than {MEAN_GAP_TARGET:.2f} points from zero)")
    return (f"Over the {s['rows']} rows: mean signed gap {s['mean gap']:+.2f} points (standard deviation over rows "
            f"{s['gap std']:.2f}, from {s['smallest gap']:+.2f} to {s['largest gap']:+.2f}); {s['within tolerance']} "
            f"of {s['rows']} within tolerance; {s['as source']} of {s['rows']} trained on the images their sources "
            f"trained on; {lean}.")


def write_tables(rows: list, out: Path, quick: bool, epochs: int | None = None, earlier: dict | None = None) -> Path:
    """Write the Markdown table and its CSV for the data the rows were measured on, merged into the
    table already in ``out`` (:func:`merged_rows`; ``earlier`` fills the columns older rows lack);
    returns the .md path."""
    out.mkdir(parents=True, exist_ok=True)
    path = table_path(out, rows[0]["data"])
    title = ("quick pipeline check, not the published recipes" if quick else
             f"a budget of {epochs} epoch(s) of each recipe, not the published recipes, on {rows[0]['data']}"
             if epochs else f"full recipes, on {rows[0]['data']}")
    rows = merged_rows(rows, path, title, earlier or {})
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    done = {row["experiment"] for row in rows}
    missing = [key for key in PUBLISHED if key not in done]
    footer = f"\nNot in this table (not finished with this output folder): {', '.join(missing)}.\n" if missing else ""
    tolerance = ("The gap is the course's mean minus the published figure. A row is within tolerance when it lands "
                 "within 0.3 points of the published figure, or within 2 standard deviations where the source gives "
                 "one, whichever is wider. \"Trained on\" is each row's protocol: the settings were chosen on the "
                 "validation split (the chapters' runs hold it out), and a final run then trains on the images its "
                 "source trained on (\"as source\": every training image for all sources but Löwe's Forward-Forward "
                 "code, which holds 10,000 out); a row without the mark was trained before that protocol, on the "
                 "training images less the validation split. "
                 "Every figure is the test accuracy after the last epoch; the minutes are a run's median epoch "
                 "times its epochs, on the machine that trained it.\n")
    columns = ("experiment", "published (%)", "kind of source", "course (%)", "seeds", "trained on", "gap (points)",
               "within tolerance", "train min / seed")
    shown = [{column: row[column] for column in columns} for row in rows]
    notes = "\n".join(f"- **{row['experiment']}** (chapter {row['chapter']}): {row['source']}." +
                      (f" {row['note'][0].upper()}{row['note'][1:]}." if row["note"] else "") for row in rows)
    path.write_text(f"Reproduction ({title}).\n\n{markdown_table(shown)}\n\n{summary_line(rows)}\n\n"
                    f"{tolerance}\nSources and notes:\n\n{notes}\n{footer}")
    return path


def select(chapter=None, only=None) -> list:
    chosen = [r for r in PUBLISHED.values() if (chapter is None or r.chapter == chapter) and (not only or r.key in only)]
    if not chosen:
        raise SystemExit(f"No experiment matches (chapter {chapter}, only {only}); `--list` shows them.")
    return chosen


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the same pipeline on a small subset, 1 epoch, 1 seed")
    parser.add_argument("--epochs", type=int, default=None,
                        help="a budget: every recipe for this many epochs, schedule scaled (not the published recipes)")
    parser.add_argument("--chapter", type=int, default=None, help="only the experiments of this chapter")
    parser.add_argument("--only", nargs="*", default=None, help="only these experiment keys")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per experiment in full mode (default 3)")
    parser.add_argument("--data", default="mnist", help="data set (default mnist)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available, in each job)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--estimate", action="store_true", help="print the time estimate and exit")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="compile each run's update with torch.compile (not with --quick; off by default: "
                             "on a CPU it saves a few percent per step after a warm-up of 20 to 60 s)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time on this machine, each with cores // jobs torch threads (default 1)")
    slurm = parser.add_argument_group("Slurm (--launcher slurm: one job per run, through submitit)")
    slurm.add_argument("--launcher", choices=("local", "slurm"), default="local",
                       help="where the runs train: this machine (default) or Slurm jobs")
    slurm.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's default)")
    slurm.add_argument("--time", type=int, default=120, help="time limit of each job in minutes (default 120)")
    slurm.add_argument("--cpus-per-task", type=int, default=1, help="cores, and torch threads, per job (default 1)")
    slurm.add_argument("--gpus-per-node", type=int, default=0, help="GPUs per job (default 0)")
    slurm.add_argument("--slurm-arg", nargs="*", default=[], metavar="KEY=VALUE",
                       help="more sbatch options, e.g. account=mylab qos=short")
    slurm.add_argument("--no-wait", action="store_true", help="submit the jobs and exit")
    slurm.add_argument("--collect", action="store_true",
                       help="submit nothing: gather the finished jobs, say what is missing or failed, write the table")
    args = parser.parse_args(argv)
    if args.quick and args.epochs:
        parser.error("--quick already trains one epoch; --epochs is for budgets of the full recipes")
    if args.launcher != "slurm" and (args.no_wait or args.collect):
        parser.error("--no-wait and --collect are for --launcher slurm")
    if args.jobs < 1:
        parser.error("--jobs is at least 1")
    if args.launcher == "slurm" and args.jobs != 1:
        parser.error("--jobs is for the local launcher; on Slurm every run is its own job")
    return args


def main(argv=None) -> list:
    args = parse(argv)
    experiments = select(args.chapter, args.only)
    if args.list:
        for r in experiments:
            print(f"{r.key:22s} ch. {r.chapter}  {r.describe()}  published {r.published} % "
                  f"({r.published.source}; {r.published.kind})")
        return []
    seeds = (0,) if args.quick else tuple(range(args.seeds))
    dataset = load_data(args.data, args.quick, args.device)   # also downloads it, once, for the jobs
    out = Path(args.out).resolve()
    compile = use_compiler(args, dataset)
    calls = {run_name(r.run_key, seed): (budget(r, args.epochs), seed, args.data, args.quick, out, args.device, compile)
             for r in experiments for seed in seeds}                 # one call per run, however many rows share it
    if args.launcher == "local" or args.estimate:       # the estimate times this machine, not a cluster's
        print_estimates(experiments, dataset, args, len(seeds))
    if args.estimate:
        return []
    outcomes = run_locally(calls, args.jobs, dataset) if args.launcher == "local" else run_on_slurm(calls, args, out)
    if outcomes is None:
        return []
    report(outcomes)
    results = finished_histories(outcomes, experiments, seeds)
    if not results:
        print("No run has finished yet: no table written.")
        return []
    rows = table_rows(results, dataset)
    path = write_tables(rows, out, args.quick, args.epochs,
                        earlier={"trained on": f"{len(dataset.X_train):,}"})
    print(f"Wrote {path} and {path.with_suffix('.csv')}.")
    return rows


def use_compiler(args, dataset) -> bool:
    """Whether the runs compile their update (``--compile``; not with ``--quick``). Off by default: on
    a 2-core CPU the compiled step is a few percent faster and its warm-up takes 20 to 60 s, so
    PEPITA's 100-epoch runs do not earn it back (``benchmarks/README.md``). Said out loud when the
    machine cannot compile."""
    if not args.compile or args.quick:
        return False
    problem = compile_problem(dataset.X_train.device)
    if problem:
        print(f"Note: the runs train with the eager step, not the compiled one: {problem}.")
    return problem is None


def run_name(key: str, seed: int) -> str:
    """The name of a run (and of its job), as the run cache names its checkpoint."""
    return f"{key}_seed{seed}"


def finished_histories(outcomes: dict, experiments, seeds) -> dict:
    """``{key: [History, ...]}`` of the finished runs, experiments without one left out."""
    results = {r.key: [outcomes[run_name(r.run_key, seed)].result for seed in seeds
                       if outcomes[run_name(r.run_key, seed)].status == "done"] for r in experiments}
    return {key: histories for key, histories in results.items() if histories}


def budget(recipe: Recipe, epochs: int | None) -> Recipe:
    """The recipe, or a budget of it under its own name (``akrout_bp_2ep``) so that the short run and
    the full one keep separate checkpoints; a budget trains on the data its recipe trains on."""
    return recipe.budget(epochs, key=f"{recipe.key}_{epochs}ep", train_on=recipe.train_on) if epochs else recipe


def print_estimates(experiments, dataset, args, num_seeds: int):
    """Each experiment's estimated time; one that cannot even be timed says why (its runs will fail and
    be reported, the others go on)."""
    print(f"Reproducing {len(experiments)} experiments on {dataset.name} ({dataset.X_train.device.type}), "
          f"{num_seeds} seed(s) each; estimated time one run at a time, if nothing is cached yet:")
    total, timed = 0.0, set()
    for r in experiments:
        if r.run_key in timed:                                       # another row's runs: trained once
            print(f"  {r.key:22s} the runs of {r.run_key}")
            continue
        timed.add(r.run_key)
        try:
            seconds = estimate_seconds(budget(r, args.epochs), dataset, args.quick, num_seeds)
        except Exception as error:  # noqa: BLE001 (a broken recipe: reported again when it runs)
            print(f"  {r.key:22s} cannot be timed ({type(error).__name__}: {error})")
            continue
        total += seconds
        print(f"  {r.key:22s} {seconds / 60:8.1f} min")
    print(f"  {'total':22s} {total / 60:8.1f} min (finished runs are loaded, not trained again)")


def run_locally(calls: dict, jobs: int, dataset) -> dict:
    """Every run on this machine, on the loaded ``dataset``: in this process (with progress bars),
    or ``jobs`` at a time in worker processes."""
    calls = {name: (recipe, seed, dataset, *rest) for name, (recipe, seed, _, *rest) in calls.items()}
    if jobs == 1:
        return launchers.run_here(run_one, {name: (*args, True) for name, args in calls.items()})
    return launchers.run_in_processes(run_one, calls, jobs)


def run_on_slurm(calls: dict, args, out: Path):
    """Submit the runs that are neither done, queued nor running (none with ``--collect``) as Slurm jobs,
    then wait for them all and return their outcomes; None with ``--no-wait``."""
    mode = "quick" if args.quick else f"{args.epochs}ep" if args.epochs else "full"
    extra = dict(item.split("=", 1) for item in args.slurm_arg)
    slurm = launchers.Slurm(out / "slurm", f"jobs_{args.data}_{mode}", name="reproduce", timeout_min=args.time,
                            cpus_per_task=args.cpus_per_task,
                            **({"gpus_per_node": args.gpus_per_node} if args.gpus_per_node else {}),
                            **({"slurm_partition": args.partition} if args.partition else {}),
                            **({"slurm_additional_parameters": extra} if extra else {}))
    outcomes = slurm.outcomes(calls)
    if args.collect:
        return outcomes
    todo = {name: call for name, call in calls.items() if outcomes[name].status in ("failed", "missing")}
    skipped = len(calls) - len(todo)
    if todo:
        ids = slurm.submit(run_one, todo)
        print(f"Submitted {len(ids)} Slurm job(s)" + (f"; {skipped} run(s) done, queued or running are not "
                                                      f"submitted again" if skipped else "") + ":")
        for name, job_id in ids.items():
            paths = slurm.job(job_id).paths
            print(f"  {name:28s} job {job_id:8s} logs {paths.stdout} and {paths.stderr.name}")
    else:
        print(f"Nothing to submit: all {len(calls)} runs are done, queued or running.")
    if args.no_wait:
        print(f"Not waiting. Gather them later with the same command and --collect (logs in {slurm.folder}).")
        return None
    try:
        return slurm.wait(calls)
    except KeyboardInterrupt:
        print("\nStopped waiting; the jobs go on. Gather them later with the same command and --collect.")
        return None


def report(outcomes: dict):
    """Say which runs failed (with the job's log and its last error line) and which are not done."""
    for name, o in outcomes.items():
        if o.status == "failed":
            print(f"FAILED {name}" + (f" (Slurm job {o.job}, log {o.log})" if o.job else "") + f": {o.error}")
    waiting = {status: [name for name, o in outcomes.items() if o.status == status]
               for status in ("running", "queued", "missing")}
    for status, names in waiting.items():
        if names:
            print(f"{status.capitalize()}, not in the table: {', '.join(names)}")


if __name__ == "__main__":
    # Run the module's own main, not __main__'s copy: the jobs then unpickle course_lib.reproduce.run_one.
    from course_lib.reproduce import main as module_main
    module_main()
