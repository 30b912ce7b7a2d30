"""The recipe registry (course_lib.recipes): one place for every training recipe, its budgets and the
published figure it reproduces."""
import pytest
import torch

from course_lib import data
from course_lib.recipes import (PUBLISHED, SOURCE_KINDS, SYNTHESIS, Published, Recipe, RuleSpec, StepAt)
from course_lib.rules import Backprop
from course_lib.rules.feedback_alignment import FeedbackAlignment
from course_lib.rules.weight_mirroring import MirroredPEPITA
from course_lib.train import train


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", quick=True, device="cpu")


def test_every_published_recipe_names_its_figure_source_and_kind():
    for key, recipe in PUBLISHED.items():
        assert recipe.key == key and recipe.published is not None
        assert recipe.published.kind in SOURCE_KINDS and recipe.published.source
        assert 97 < recipe.published.accuracy < 100 and recipe.num_epochs >= 100
    kinds = {r.published.kind for r in PUBLISHED.values()}
    assert {"paper table", "authors' code log", "reimplementation README"} <= kinds
    with pytest.raises(ValueError, match="kind is one of"):
        Published(98.0, "somewhere", "slides")


def test_tolerance_is_the_wider_of_a_third_of_a_point_and_two_std():
    assert Published(98.0, "x", "paper table").tolerance == 0.3
    assert Published(98.0, "x", "paper table", std=0.2).tolerance == pytest.approx(0.4)
    assert str(Published(98.01, "x", "paper table", std=0.09)) == "98.01 ± 0.09"


def test_a_budget_scales_the_schedule_with_the_epochs():
    recipe = PUBLISHED["pepita"]
    assert recipe.schedule(recipe.num_epochs) == [60, 90]
    short = recipe.budget(10)
    assert short.num_epochs == 10 and short.schedule(short.num_epochs) == [6, 9]
    assert short.lr == recipe.lr and short.key == recipe.key            # the same recipe, fewer epochs
    assert StepAt((0.6, 0.9))(1) is None                                 # one epoch: nothing to step down


def test_the_rule_is_drawn_from_the_run_seed():
    spec = RuleSpec(FeedbackAlignment)
    net = Recipe("small", 3, spec, (16,), lr=0.1, num_epochs=1).network(data.load("digits", quick=True, device="cpu"))
    B0, B0_again, B1 = (spec(seed).bind(net).B[0] for seed in (0, 0, 1))
    assert torch.equal(B0, B0_again) and not torch.equal(B0, B1)
    assert RuleSpec(Backprop, dict(keep=0.9))(3).seed == 3                # backprop's seed draws its dropout masks
    assert str(RuleSpec(FeedbackAlignment, dict(scale=0.5))) == "FeedbackAlignment(scale=0.5)"


def test_a_published_recipe_trains_on_every_training_image_and_a_chapter_run_does_not(digits, tmp_path):
    """The final-run protocol (Chapter 8): a published recipe trains on the training and validation
    images together and records no validation accuracy; its budget or variant, a chapter's run,
    holds the validation split out; the checkpoint's fingerprint tells the two apart."""
    final = PUBLISHED["pepita_bp"]
    assert {r.key for r in PUBLISHED.values() if r.train_on != "all"} == {"ff"}     # Löwe's code holds 10,000 out
    assert final.budget(3).train_on == final.variant("mine").train_on == "train"
    seen = final.training_data(digits)
    assert len(seen.X_train) == len(digits.X_train) + len(digits.X_val) and len(seen.X_val) == 0
    assert final.steps_per_epoch(digits) == -(-len(seen.X_train) // final.batch_size)
    history = final.run(digits, 0, quick=True, runs_dir=tmp_path)
    assert "val_acc" not in history and len(history["test_acc"]) == 2
    chapter = final.variant(final.key, train_on="train").run(digits, 0, quick=True, runs_dir=tmp_path)
    assert "val_acc" in chapter and chapter.checkpoint != history.checkpoint
    with pytest.raises(ValueError, match="train_on"):
        final.variant("x", train_on="everything")


def test_networks_follow_the_data_and_forward_forward_keeps_its_own_top(digits):
    assert PUBLISHED["pepita"].sizes(digits) == [digits.n_features, 1024, digits.n_classes]
    assert PUBLISHED["ff"].sizes(digits) == [digits.n_features, 1000, 1000, 1000]
    assert SYNTHESIS["FF"].sizes(digits) == [digits.n_features, 256, 256]
    assert all(r.sizes(digits)[1:-1] == [256] for name, r in SYNTHESIS.items() if name != "FF")


def test_run_trains_once_then_loads_from_the_cache(digits, tmp_path, capsys):
    recipe = Recipe("tiny", 8, RuleSpec(FeedbackAlignment), (16,), lr=0.05, num_epochs=3, momentum=0.9,
                    schedule=StepAt((0.6,)))
    first = recipe.run(digits, seed=2, quick=False, runs_dir=tmp_path)
    assert first.num_epochs == 4 and first["test_acc"][-1] > 0.3
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["tiny_seed2"]
    again = recipe.run(digits, seed=2, quick=False, runs_dir=tmp_path)
    assert "Loaded" in capsys.readouterr().out and again["test_acc"] == first["test_acc"]
    other_seed = recipe.run(digits, seed=3, quick=False, runs_dir=tmp_path)
    assert other_seed["test_acc"] != first["test_acc"] and len(list(tmp_path.iterdir())) == 2
    assert recipe.run(digits, seed=2, quick=True, runs_dir=tmp_path).num_epochs == 2   # fast mode: one epoch


def test_trained_gives_the_run_a_notebook_needs_as_reproduce_trains_it(digits, tmp_path):
    """recipe.trained(): the network and rule as training left them (loaded ones too) and the History
    that recipe.run() returns; recipe.start(): the same network and rule before the first step."""
    recipe = Recipe("tiny_fa", 8, RuleSpec(FeedbackAlignment), (16,), lr=0.05, num_epochs=2)
    net0, rule0 = recipe.start(digits, seed=4, quick=False)
    net, rule, history = recipe.trained(digits, seed=4, quick=False, runs_dir=tmp_path)
    assert history["test_acc"] == recipe.run(digits, seed=4, quick=False, runs_dir=tmp_path)["test_acc"]
    assert torch.equal(rule.B[0], rule0.B[0]) and not torch.equal(net.W[0], net0.W[0])   # FA's B stays fixed
    loaded = recipe.trained(digits, seed=4, quick=False, runs_dir=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.net.W, net.W)) and torch.equal(loaded.rule.B[0], rule.B[0])


def test_the_ablation_mirrors_before_training_only(digits):
    """The follow-up's recipe: F is mirrored in a phase before training and then stays put (mirroring
    while training turns F on towards (W₂W₁)ᵀ and grows the first layer's feedback)."""
    recipe = PUBLISHED["ablation_mirror"]
    rule = recipe.make_rule(0, quick=True)
    assert isinstance(rule, MirroredPEPITA) and not rule.mirror_in_training and rule.premirror_steps == 10
    small = recipe.variant("small", hidden=(32,))
    net = small.network(digits)
    rule.bind(net)
    F_before = rule.F.clone()
    assert rule.learned() == {} and len(rule.param_groups(net, 0.1)) == 1
    train(net, rule, digits, lr=0.05, momentum=0.9, num_epochs=1, progress=False)
    assert torch.equal(rule.F, F_before)
    moving = MirroredPEPITA(premirror_steps=10)
    net2 = small.network(digits)
    moving.bind(net2)
    F0 = moving.F.clone()
    train(net2, moving, digits, lr=0.05, momentum=0.9, num_epochs=1, progress=False)
    assert not torch.equal(moving.F, F0) and set(moving.learned()) == {"B1", "B2"}


def test_two_published_figures_of_one_recipe_share_their_runs(tmp_path):
    """The ablation's plain row is the PEPITA paper's recipe: the same settings, one set of runs,
    and the reproduction trains it once for both rows."""
    plain, pepita = PUBLISHED["ablation_plain"], PUBLISHED["pepita"]
    assert plain.run_key == pepita.run_key == "pepita" and plain.published != pepita.published
    assert plain.variant(plain.key, runs_as=pepita.key, published=pepita.published, note=pepita.note,
                         chapter=pepita.chapter, train_on="all") == pepita.variant(plain.key, runs_as=pepita.key,
                                                                                   train_on="all")
    assert plain.budget(3).run_key == "pepita" and plain.budget(3, key="short").run_key == "short"
    assert plain.variant("mine").run_key == "mine"
