"""Reproduce the published numbers the book quotes, each with its own recipe (Chapter 8).

    python -m course_lib.reproduce --list              # the experiments, their recipes and sources
    python -m course_lib.reproduce                     # run them all (hours on a CPU; resumable)
    python -m course_lib.reproduce --chapter 5         # only the runs behind chapter 5's figures
    python -m course_lib.reproduce --estimate          # how long it would take here
    python -m course_lib.reproduce --quick             # the same pipeline in seconds (the tests)

Every run is a ``train`` call with a checkpoint, so an interrupted reproduction resumes where it
stopped and a finished run is loaded, not trained again. Before starting, the command times a few
steps of each run and prints an estimate of the total. It writes ``reproduction.md`` and
``reproduction.csv`` (``reproduction_<data>.*`` on other data than MNIST; one row per published figure: source, the course's number as mean ± std over
seeds, the data it was measured on, the gap and the training time) into ``--out``. The recipes
themselves live in :mod:`course_lib.recipes`.
"""
import argparse
import csv
import os
import re
import time
from pathlib import Path

from . import config, data as datasets
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
    net, rule = recipe.network(dataset), recipe.make_rule(0, quick)
    start = time.perf_counter()
    for split in ("val", "test"):
        float(evaluate(net, getattr(dataset, f"X_{split}"), getattr(dataset, f"y_{split}"), rule)["loss"])
    per_epoch = per_step * recipe.steps_per_epoch(dataset) + time.perf_counter() - start
    return per_epoch * (1 if quick else recipe.num_epochs) * num_seeds


def run(recipe: Recipe, dataset, seeds, quick: bool, out: Path) -> list:
    """The recipe's histories, one per seed (trained, resumed or loaded from ``out/runs``)."""
    histories = []
    for seed in seeds:
        history = recipe.run(dataset, seed, quick=quick, runs_dir=out / "runs", progress=True)
        if history.diverged:
            print(f"{recipe.key}, seed {seed}: {history.diverged}")
        histories.append(history)
    return histories


def table_rows(results: dict, dataset) -> list:
    """One row per recipe in ``results`` ({key: [History, ...]}): what was published, what the course
    measured, the training time, and the gap (only when the course measured on the published figure's
    data set: other data has other accuracies) with whether it is within the figure's tolerance."""
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
                     "seeds": len(accs), "data": dataset.name,
                     "gap (points)": f"{gap:+.2f}" if same_data else f"— (published on {published.data})",
                     "within tolerance": ("yes" if abs(gap) <= published.tolerance else "no") if same_data else "—",
                     "train min / seed": f"{mean_std([sum(h['seconds']) / 60 for h in histories])[0]:.1f}",
                     "note": recipe.note})
    return rows


def table_path(out: Path, data_name: str) -> Path:
    """``out/reproduction.md`` for MNIST, where the published figures were measured, and
    ``out/reproduction_<data>.md`` for other data (``reproduction_fashion-mnist.md``); the CSV beside it."""
    suffix = "" if data_name == "MNIST" else "_" + re.sub(r"[^a-z0-9]+", "-", data_name.lower()).strip("-")
    return out / f"reproduction{suffix}.md"


def write_tables(rows: list, out: Path, quick: bool) -> Path:
    """Write the Markdown table and its CSV for the data the rows were measured on; returns the .md path."""
    out.mkdir(parents=True, exist_ok=True)
    path = table_path(out, rows[0]["data"])
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    title = "quick pipeline check, not the published recipes" if quick else f"full recipes, on {rows[0]['data']}"
    done = {row["experiment"] for row in rows}
    missing = [key for key in PUBLISHED if key not in done]
    footer = f"\nNot in this table (not run with this output folder): {', '.join(missing)}.\n" if missing else ""
    tolerance = ("A row is within tolerance when it lands within 0.3 points of the published figure, or within "
                 "2 standard deviations where the source gives one, whichever is wider. Every run trains on the "
                 "training set less its validation split (50,000 of MNIST's 60,000 images; the validation images "
                 "chose the settings), where the sources train on all of it.\n")
    shown = [{"experiment": row["experiment"], "published (%)": row["published (%)"], "kind of source": row["kind of source"],
              "course (%)": row["course (%)"], "seeds": row["seeds"], "gap (points)": row["gap (points)"],
              "within tolerance": row["within tolerance"], "train min / seed": row["train min / seed"]} for row in rows]
    notes = "\n".join(f"- **{row['experiment']}** (chapter {row['chapter']}): {row['source']}." +
                      (f" {row['note'][0].upper()}{row['note'][1:]}." if row["note"] else "") for row in rows)
    path.write_text(f"Reproduction ({title}).\n\n{markdown_table(shown)}\n\n"
                    f"{tolerance}\nSources and notes:\n\n{notes}\n{footer}")
    return path


def select(chapter=None, only=None) -> list:
    chosen = [r for r in PUBLISHED.values() if (chapter is None or r.chapter == chapter) and (not only or r.key in only)]
    if not chosen:
        raise SystemExit(f"No experiment matches (chapter {chapter}, only {only}); `--list` shows them.")
    return chosen


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the same pipeline on a small subset, 1 epoch, 1 seed")
    parser.add_argument("--chapter", type=int, default=None, help="only the experiments of this chapter")
    parser.add_argument("--only", nargs="*", default=None, help="only these experiment keys")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per experiment in full mode (default 3)")
    parser.add_argument("--data", default="mnist", help="data set (default mnist)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--estimate", action="store_true", help="print the time estimate and exit")
    args = parser.parse_args(argv)
    experiments = select(args.chapter, args.only)
    if args.list:
        for r in experiments:
            print(f"{r.key:22s} ch. {r.chapter}  {r.describe()}  published {r.published} % "
                  f"({r.published.source}; {r.published.kind})")
        return []
    seeds = (0,) if args.quick else tuple(range(args.seeds))
    device = config.get_device(args.device)
    dataset = datasets.load(args.data, quick=args.quick, device=device)
    out = Path(args.out)
    estimates = {r.key: estimate_seconds(r, dataset, args.quick, len(seeds)) for r in experiments}
    print(f"Reproducing {len(experiments)} experiments on {dataset.name} ({device.type}), "
          f"{len(seeds)} seed(s) each; estimated time if nothing is cached yet:")
    for key, seconds in estimates.items():
        print(f"  {key:22s} {seconds / 60:8.1f} min")
    print(f"  {'total':22s} {sum(estimates.values()) / 60:8.1f} min (finished runs are loaded, not trained again)")
    if args.estimate:
        return []
    results = {r.key: run(r, dataset, seeds, args.quick, out) for r in experiments}
    rows = table_rows(results, dataset)
    path = write_tables(rows, out, args.quick)
    print(f"Wrote {path} and {path.with_suffix('.csv')}.")
    return rows


if __name__ == "__main__":
    main()
