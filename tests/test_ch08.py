"""Chapter 8's machinery: the lr grid and its choice on validation, the depth study's retries, and
runs trained side by side in worker processes giving what one after the other gives."""
import pytest

from course_lib import recipes
from course_lib.chapters import ch08
from course_lib.data import load
from course_lib.train import History


@pytest.fixture(scope="module")
def digits():
    return load("digits", device="cpu", quick=True)


def history(val_acc, diverged="", loss_grew=False):
    h = History(diverged=diverged, loss_grew=loss_grew)
    for acc in val_acc:
        h.log(val_acc=acc)
    return h


def test_grid_brackets_the_recipe_lr_and_the_choice_reads_validation_only():
    lr = ch08.RULES["BP"].lr
    assert ch08.lr_grid("BP") == pytest.approx((lr / 3, lr, 3 * lr), rel=1e-5)
    runs = {0.1: history([0.5, 0.9]), 0.3: history([0.5, 0.95]), 0.9: history([0.5, 0.2])}
    runs[0.9].log(test_acc=0.99)                                          # the test split plays no part
    assert ch08.choose_lr(runs) == (0.3, {0.1: 90.0, 0.3: 95.0, 0.9: 20.0})


def test_runs_side_by_side_are_the_runs_one_after_the_other(digits, tmp_path, monkeypatch):
    """Two worker processes (one torch thread each) give the histories that this process gives,
    alignment measures included; the data reach them through shared memory."""
    monkeypatch.setenv("COURSE_RUNS_DIR", str(tmp_path))
    probe = (digits.X_val[:100], digits.y_val[:100])
    calls = {("BP", 0): ("BP", 0, [16], 0.1), ("FA", 1): ("FA", 1, [16], 0.1)}
    serial = ch08.run_many(calls, digits, probe, jobs=1)
    for run_file in tmp_path.glob("*.pt"):
        run_file.unlink()                                                 # train again, not load
    parallel = ch08.run_many(calls, digits, probe, jobs=2)
    for key in calls:
        assert set(parallel[key].records) == set(serial[key].records) >= {"val_acc", "cos_W1", "angle_W2"}
        for name, values in serial[key].records.items():
            if name != "seconds":
                assert parallel[key][name] == pytest.approx(values, rel=1e-4, abs=1e-5, nan_ok=True), (key, name)


def test_a_failing_run_stops_the_table_with_its_error(digits):
    """A run that raises in a worker leaves the others running and stops the table with its error."""
    small = recipes.SYNTHESIS["BP"].variant("ch08_test_small", hidden=(16,))
    with pytest.raises(RuntimeError, match="1 of 2 runs failed.*on_epoch function raised"):
        recipes.run_many({"ok": (small, 0, None), "broken": (small, 1, _raise)}, digits, jobs=2)


def _raise(net, rule, data):
    raise ValueError("a learner's on_epoch function raised")


def test_depth_study_retries_at_a_third_of_the_lr(digits, monkeypatch):
    """A run that blows up or whose validation loss grew is tried again at lr/3, up to `retries`
    times; the lr that ran is reported with its accuracy."""
    tried = []

    def fake_run_many(calls, data, probe=None, jobs=1):
        result = {}
        for key, (name, seed, hidden, lr) in calls.items():
            tried.append((name, len(hidden), lr))
            bad = name == "FA" and lr > 0.02
            result[key] = history([0.1, 0.2 if bad else 0.9], loss_grew=bad)
        return result

    monkeypatch.setattr(ch08, "run_many", fake_run_many)
    depth = ch08.depth_study(["BP", "FA"], digits, {"1": [8], "2": [8, 8]}, {"BP": 0.1, "FA": 0.1}, retries=2)
    assert depth["BP"] == {"1": (90.0, 0.1, True), "2": (90.0, 0.1, True)}
    assert depth["FA"] == {"1": (90.0, 0.011111, True), "2": (90.0, 0.011111, True)}
    assert sorted(lr for name, _, lr in tried if name == "FA") == [0.011111, 0.011111, 0.033333, 0.033333, 0.1, 0.1]


def test_a_run_at_chance_is_tried_again_down_to_a_27th_of_the_lr(digits, monkeypatch):
    """A run that ends at chance without blowing up or growing its loss (DFA or PEPITA with four
    hidden layers, say) counts as failed: it is tried at lr/3, lr/9 and lr/27; where none trains,
    the cell says so (trained False) and holds the best of the tries."""
    tried = []

    def fake_run_many(calls, data, probe=None, jobs=1):
        result = {}
        for key, (name, seed, hidden, lr) in calls.items():
            tried.append((name, lr))
            trains = name == "DFA" and lr < 0.005            # only at lr/27
            result[key] = history([0.1, 0.9 if trains else 0.11 + lr / 100])
        return result

    monkeypatch.setattr(ch08, "run_many", fake_run_many)
    depth = ch08.depth_study(["DFA", "PEPITA"], digits, {"4": [8] * 4}, {"DFA": 0.1, "PEPITA": 0.1})
    assert [lr for name, lr in tried if name == "DFA"] == [0.1, 0.033333, 0.011111, 0.003704]
    assert depth["DFA"]["4"] == (90.0, 0.003704, True)
    assert len([lr for name, lr in tried if name == "PEPITA"]) == 4
    assert depth["PEPITA"]["4"].lr == 0.1 and not depth["PEPITA"]["4"].trained     # the best at-chance try


def test_problems_name_what_went_wrong_and_the_grid_marks_its_cells():
    assert ch08.problems(history([0.1, 0.95]), 10) == []
    assert ch08.problems(history([0.1, 0.113]), 10) == ["at chance"]
    assert ch08.problems(history([0.1, 0.6], diverged="Training stopped"), 10) == ["blew up"]
    assert ch08.problems(history([0.1, 0.1], loss_grew=True), 10) == ["loss grew", "at chance"]
    grid = {"FA": (0.1, {0.1: 95.0, 0.3: 11.3}, {0.1: [], 0.3: ["blew up", "at chance"]})}
    assert ch08.grid_rows(grid) == [{"rule": "FA", "lr 1": "**0.1: 95.00**", "lr 2": "0.3: 11.30 (blew up, at chance)"}]


def test_runs_of_the_tables_print_no_training_notes(digits, tmp_path, monkeypatch, capsys):
    """The lr grid tries rates too large on purpose: its runs keep their flags but print nothing."""
    monkeypatch.setenv("COURSE_RUNS_DIR", str(tmp_path))
    runs = ch08.run_many({"big": ("BP", 0, [16], 1e4)}, digits)
    assert runs["big"].diverged or runs["big"].loss_grew
    assert "probably too large" not in capsys.readouterr().out


def test_compare_chooses_on_the_first_seed_and_reports_only_the_seeds_asked_for(digits, monkeypatch):
    """With seeds [10, 11] the lr grid runs at seed 10, the chosen lr again at seed 11, and seed 0
    (the default) never runs: a reader who changes the seeds changes every run of the table."""
    ran = []

    def fake_run_many(calls, data, probe=None, jobs=1):
        ran.extend((name, seed, lr) for name, seed, _, lr in calls.values())
        result = {}
        for key, (name, seed, _, lr) in calls.items():
            result[key] = h = History()
            for acc in (0.5, 0.9 if lr == ch08.RULES[name].lr else 0.8):
                h.log(val_acc=acc, test_acc=acc, seconds=1.0)
        return result

    monkeypatch.setattr(ch08, "run_many", fake_run_many)
    rows, histories, grid = ch08.compare(["BP"], digits, [10, 11], probe=None)
    lr = ch08.RULES["BP"].lr
    assert sorted(ran) == sorted([("BP", 10, g) for g in ch08.lr_grid("BP")] + [("BP", 11, lr)])
    assert grid["BP"][0] == lr and len(histories["BP"]) == 2
