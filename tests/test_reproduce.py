"""The reproduction command (Chapter 8) in its quick mode: the same pipeline as the full runs, in
seconds: estimate, train with checkpoints, write the tables; a second call loads instead of training."""
import csv
import re

import pytest
import torch

from course_lib import launchers, reproduce
from course_lib.data import Dataset
from course_lib.recipes import PUBLISHED, RuleSpec
from course_lib.rules import Backprop


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduction")
    rows = reproduce.main(["--quick", "--out", str(out), "--device", "cpu"])
    return out, rows


def test_quick_run_writes_one_row_per_published_figure(quick_run, capsys):
    out, rows = quick_run
    assert [r["experiment"] for r in rows] == list(PUBLISHED)
    with open(out / "reproduction_digits-embedded.csv") as f:        # not MNIST: named after its data
        table = list(csv.DictReader(f))
    assert [r["experiment"] for r in table] == [r["experiment"] for r in rows]
    for row in table:
        assert float(row["published (%)"].split(" ± ")[0]) > 97 and 0 <= float(row["course (%)"]) <= 100
        assert row["source"] and row["data"] and row["kind of source"]
        assert row["gap (points)"] == "— (published on MNIST)"         # the quick run's data is not MNIST
        assert row["within tolerance"] == "—" and float(row["train min / seed"]) >= 0
    markdown = (out / "reproduction_digits-embedded.md").read_text()
    assert not (out / "reproduction.md").exists()                        # that name is MNIST's
    assert "quick pipeline check" in markdown and markdown.count("\n| ") == len(rows) + 1


def test_a_second_call_loads_the_finished_runs(quick_run, capsys):
    out, rows = quick_run
    again = reproduce.main(["--quick", "--out", str(out), "--device", "cpu", "--chapter", "5"])
    printed = capsys.readouterr().out
    chapter_5 = [key for key, recipe in PUBLISHED.items() if recipe.chapter == 5]
    assert "estimated time" in printed and printed.count("Loaded") == len(again) == len(chapter_5)
    with open(out / "reproduction_digits-embedded.csv") as f:        # merged: the other chapters' rows stay
        assert [r["experiment"] for r in csv.DictReader(f)] == list(PUBLISHED)
    assert "Not in this table" not in (out / "reproduction_digits-embedded.md").read_text()
    assert {r["experiment"]: r["course (%)"] for r in again} == {r["experiment"]: r["course (%)"] for r in rows
                                                                 if r["chapter"] == 5}


def tiny(name: str) -> Dataset:
    """A data set of 5 training, 2 validation and 2 test images under ``name``: what the table reads of one."""
    X, y = torch.zeros(9, 4), torch.zeros(9, dtype=torch.long)
    return Dataset(name, X[:5], y[:5], X[5:7], y[5:7], X[7:], y[7:], n_classes=10, image_shape=(1, 2, 2))


def finished(accuracy: float, minutes: float = 1.0):
    """A stand-in for a finished run's History: what the table reads of it."""
    return {"test_acc": [0.1, accuracy / 100], "seconds": [0.0, 60 * minutes]}


def test_gap_and_tolerance_only_on_the_published_data():
    """The gap is course minus published on MNIST, and not computed on other data; a row is within
    tolerance within 0.3 points, or 2 published standard deviations where the source gives one."""
    results = {"akrout_bp": [finished(97.0), finished(98.0)], "pepita": [finished(97.84, 3.0)],
               "pepita_bp": [finished(98.40)]}
    rows = reproduce.table_rows(results, tiny("MNIST"))
    assert [(r["experiment"], r["course (%)"], r["gap (points)"], r["within tolerance"]) for r in rows] == [
        ("akrout_bp", "97.50 ± 0.71", "-1.00", "no"), ("pepita", "97.84", "-0.17", "yes"),
        ("pepita_bp", "98.40", "-0.23", "yes")]
    assert rows[1]["published (%)"] == "98.01 ± 0.09" and rows[1]["train min / seed"] == "3.0"
    assert {r["trained on"] for r in rows} == {"7 as source"}             # 5 training + 2 validation images
    assert PUBLISHED["pepita"].published.tolerance == 0.3 and PUBLISHED["akrout_bp"].published.kind == "authors' code log"
    other = reproduce.table_rows(results, tiny("Fashion-MNIST"))
    assert {r["gap (points)"] for r in other} == {"— (published on MNIST)"}
    assert {r["within tolerance"] for r in other} == {"—"}


def test_a_rerun_replaces_its_own_row_and_keeps_the_others(tmp_path):
    """`reproduce --only KEY` merges by key into the table already in the folder; a table of another
    protocol (here a quick check under a full table's name) is replaced, not mixed in."""
    mnist = tiny("MNIST")
    first = reproduce.table_rows({"akrout_bp": [finished(98.0)], "pepita": [finished(97.9)]}, mnist)
    reproduce.write_tables(first, tmp_path, quick=False)
    rerun = reproduce.table_rows({"pepita": [finished(98.1)], "ff": [finished(98.3)]}, mnist)
    path = reproduce.write_tables(rerun, tmp_path, quick=False)
    with open(path.with_suffix(".csv")) as f:
        table = {r["experiment"]: r["course (%)"] for r in csv.DictReader(f)}
    assert table == {"akrout_bp": "98.00", "pepita": "98.10", "ff": "98.30"}
    assert list(table) == [key for key in PUBLISHED if key in table]
    assert path.read_text().count("\n| ") == 3 + 1
    reproduce.write_tables(rerun, tmp_path, quick=True)
    with open(path.with_suffix(".csv")) as f:
        assert [r["experiment"] for r in csv.DictReader(f)] == ["pepita", "ff"]


def test_rows_written_before_the_protocol_column_say_what_they_trained_on(tmp_path):
    """A committed table from before the "trained on" column keeps its rows, filled in with the
    protocol they were trained with; a new row says its own."""
    mnist = tiny("MNIST")
    old = reproduce.table_rows({"akrout_bp": [finished(98.0)], "pepita": [finished(97.9)]}, mnist)
    csv_path = reproduce.write_tables(old, tmp_path, quick=False).with_suffix(".csv")
    columns = [column for column in old[0] if column != "trained on"]            # the CSV as it was written then
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(old)
    new = reproduce.table_rows({"pepita": [finished(98.1)]}, mnist)
    path = reproduce.write_tables(new, tmp_path, quick=False, earlier={"trained on": "5"})
    table = {r["experiment"]: r["trained on"] for r in reproduce.read_table(path.with_suffix(".csv"))}
    assert table == {"akrout_bp": "5", "pepita": "7 as source"}
    assert "| 5 |" in path.read_text()


def test_the_summary_line_gives_the_mean_signed_gap_and_its_spread(tmp_path):
    rows = reproduce.table_rows({"akrout_bp": [finished(98.4)], "pepita": [finished(98.11)],
                                 "pepita_bp": [finished(98.33)]}, tiny("MNIST"))     # gaps -0.10, +0.10, -0.30
    s = reproduce.summary(rows)
    assert (s["rows"], s["within tolerance"], s["as source"]) == (3, 3, 3)
    assert s["mean gap"] == pytest.approx(-0.1) and s["gap std"] == pytest.approx(0.2)
    assert (s["smallest gap"], s["largest gap"]) == (pytest.approx(-0.3), pytest.approx(0.1))
    line = reproduce.summary_line(rows)
    assert line.startswith("Over the 3 rows: mean signed gap -0.10 points (standard deviation over rows 0.20, "
                           "from -0.30 to +0.10); 3 of 3 within tolerance")
    assert line.endswith("the gaps centre on zero (their mean is within 0.10 points of it).")
    leaning = reproduce.table_rows({"akrout_bp": [finished(98.2)]}, tiny("MNIST"))
    assert reproduce.summary_line(leaning).endswith("the gaps lean below the published figures (their mean is more "
                                                    "than 0.10 points from zero).")
    path = reproduce.write_tables(rows, tmp_path, quick=False)
    assert line in path.read_text()
    assert reproduce.summary(reproduce.table_rows({"pepita": [finished(90.0)]}, tiny("Fashion-MNIST"))) is None


def test_each_data_set_has_its_own_table(tmp_path):
    assert reproduce.table_path(tmp_path, "MNIST") == tmp_path / "reproduction.md"
    assert reproduce.table_path(tmp_path, "Fashion-MNIST") == tmp_path / "reproduction_fashion-mnist.md"
    assert reproduce.table_path(tmp_path, "digits (embedded)") == tmp_path / "reproduction_digits-embedded.md"


def test_list_and_selection(capsys):
    assert reproduce.main(["--list", "--only", "pepita"]) == []
    assert "published 98.01" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="No experiment"):
        reproduce.main(["--list", "--chapter", "42"])


def test_each_of_n_jobs_gets_its_share_of_the_cores():
    assert [launchers.threads_per_job(n, cores=2) for n in (1, 2, 3)] == [2, 1, 1]
    assert launchers.threads_per_job(4, cores=16) == 4
    outcomes = launchers.run_in_processes(torch.get_num_threads, {"a": (), "b": ()}, 2)
    assert {name: o.result for name, o in outcomes.items()} == {"a": launchers.threads_per_job(2)} | {
        "b": launchers.threads_per_job(2)}


def test_jobs_2_writes_the_same_table(quick_run, tmp_path, capsys):
    """Two runs at a time in worker processes, one torch thread each: the same numbers as one at a time."""
    out, rows = quick_run
    two = reproduce.main(["--quick", "--out", str(tmp_path), "--device", "cpu", "--jobs", "2", "--chapter", "4"])
    assert "Running 2 jobs, 2 at a time" in capsys.readouterr().out
    assert [(r["experiment"], r["course (%)"]) for r in two] == [(r["experiment"], r["course (%)"]) for r in rows
                                                                 if r["chapter"] == 4]


def test_a_failing_run_leaves_the_others_running(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(PUBLISHED, "broken", PUBLISHED["akrout_fa"].variant("broken", rule=RuleSpec(Backprop, {"x": 1})))
    rows = reproduce.main(["--quick", "--out", str(tmp_path), "--device", "cpu", "--jobs", "2",
                           "--only", "akrout_bp", "broken"])
    assert [r["experiment"] for r in rows] == ["akrout_bp"]
    assert re.search(r"FAILED broken_seed0: TypeError", capsys.readouterr().out)


def test_the_readme_quotes_the_committed_tables_summary_line():
    """The README's figures of the reproduction are the committed table's own summary line."""
    committed = reproduce.DEFAULT_OUT / "reproduction.csv"
    line = reproduce.summary_line(reproduce.read_table(committed))
    readme = (reproduce.DEFAULT_OUT.parent / "README.md").read_text()
    assert f"> {line}\n" in readme, f"Quote the table's summary line in the README: {line}"
