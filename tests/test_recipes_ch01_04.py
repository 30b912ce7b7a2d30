"""The runs of chapters 1-4 in the recipe registry (course_lib.recipes, section "chapters 1-4"), and
train_settings, which hands a recipe's optimiser and budget to a notebook's own train call."""
import pytest

from course_lib import data
from course_lib.recipes import (CH01_BACKPROP, CH02_SAME_STEP, CH03_DEEP, CH03_FA, CH04, CHAPTERS_1_4, PUBLISHED,
                                SYNTHESIS, train_settings)
from course_lib.rules.kolen_pollack import KolenPollack
from course_lib.train import train


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", quick=True, device="cpu")


def test_keys_are_unique_and_apart_from_the_other_registries():
    assert all(key == recipe.key for key, recipe in CHAPTERS_1_4.items())
    assert len(CHAPTERS_1_4) == 3 + len(CH03_DEEP) + len(CH04)
    assert not set(CHAPTERS_1_4) & ({r.key for r in PUBLISHED.values()} | {r.key for r in SYNTHESIS.values()})
    assert all(recipe.chapter in (1, 2, 3, 4) for recipe in CHAPTERS_1_4.values())


def test_chapters_1_and_2_keep_the_learners_network():
    """The learner writes backprop and perturbation for sigmoid units, sigmoid outputs and the MSE: only
    the optimiser and the budget are the recipe's to choose."""
    for recipe in (CH01_BACKPROP, CH02_SAME_STEP):
        assert (recipe.hidden, recipe.activation, recipe.output, recipe.loss, recipe.init) == \
            ((500,), "sigmoid", "sigmoid", "mse", 0.1)
    assert CH02_SAME_STEP.batch_size == CH01_BACKPROP.batch_size and CH02_SAME_STEP.lr < CH01_BACKPROP.lr


def test_chapter_3_is_the_published_fa_recipe_on_a_short_budget():
    """The same recipe but for the budget, the chapter's plain FA (no dropout, biases) and the
    chapter's protocol (the validation split held out)."""
    published = PUBLISHED["pepita_fa"]
    assert CH03_FA.num_epochs < published.num_epochs and CH03_FA.train_on == "train" and published.train_on == "all"
    assert CH03_FA.rule.settings == {} and published.rule.settings == {"keep": 0.9, "biases": False}
    assert CH03_FA.variant(published.key, chapter=published.chapter, num_epochs=published.num_epochs,
                           note=published.note, rule=published.rule, train_on="all") == published
    assert train_settings(CH03_FA, quick=False)["schedule"] == [6, 9]


def test_chapter_4_rules_share_one_recipe():
    assert set(CH04) == {"BP", "FA", "KP"}
    others = {(r.hidden, r.lr, r.num_epochs, r.batch_size, r.momentum, r.schedule) for r in CH04.values()}
    assert len(others) == 1
    assert isinstance(CH04["KP"].make_rule(0), KolenPollack) and CH04["KP"].make_rule(0).decay == 1e-3


def test_train_settings_in_fast_and_full_mode():
    full = train_settings(CH04["BP"], quick=False)
    assert full == dict(lr=CH04["BP"].lr, num_epochs=CH04["BP"].num_epochs, batch_size=64, momentum=0.9,
                        weight_decay=0.0, schedule=[6, 9])
    quick = train_settings(CH04["BP"], quick=True)
    assert quick["num_epochs"] == 1 and quick["schedule"] is None
    assert train_settings(CH01_BACKPROP, quick=False)["schedule"] is None     # plain SGD, constant lr


def test_train_with_the_settings_is_the_recipes_own_run(digits, tmp_path):
    """A notebook that builds the network and rule and trains with train_settings gets exactly the
    run the recipe itself trains."""
    recipe = CH04["FA"].variant("tiny_fa", hidden=(16,), num_epochs=3)
    ran = recipe.run(digits, seed=2, quick=False, runs_dir=tmp_path)
    net, rule = recipe.network(digits, seed=2), recipe.make_rule(2)
    own = train(net, rule, digits, **train_settings(recipe, quick=False), seed=2, progress=False)
    assert own["test_acc"] == ran["test_acc"] and own.num_epochs == 4
