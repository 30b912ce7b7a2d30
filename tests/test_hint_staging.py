"""A check's hint in two stages (course_lib/checks/core.py): the first failure names the mistake and
why it is wrong; the line to write comes only when the learner's next check of the same exercise
fails with the same mistake again. Another mistake, a pass or another exercise starts over."""
import pytest
import torch.nn.functional as F

from course_lib.checks import all_exercises, ch01, ch03, ch07

BACKPROP, FA = ch01.BACKPROP_TWO_LAYER, ch03.FEEDBACK_ALIGNMENT


def making(exercise, name):
    """A learner's function that makes ``exercise``'s named mistake ``name``, and that mistake."""
    mistake = next(m for m in exercise.mistakes if m.name == name)
    keys = list(exercise.cases()[0].inputs)
    return (lambda *args: mistake.compute(**dict(zip(keys, args)))), mistake


def test_the_fix_comes_when_the_same_mistake_comes_back(capsys):
    wrong, mistake = making(BACKPROP, "no_hidden_slope")
    first, second, third = (BACKPROP.check(wrong) for _ in range(3))
    assert first.mistake == second.mistake == third.mistake == "no_hidden_slope"
    assert mistake.why in first.message and mistake.fix not in first.message
    assert second.message == first.message + " " + mistake.fix
    assert third.message == second.message
    assert capsys.readouterr().out.splitlines() == [first.message, second.message, third.message]


def test_another_mistake_starts_over():
    slope, slope_mistake = making(BACKPROP, "no_hidden_slope")
    sign, sign_mistake = making(BACKPROP, "error_sign")
    BACKPROP.check(slope)
    switched = BACKPROP.check(sign)
    assert switched.mistake == "error_sign" and sign_mistake.fix not in switched.message
    back = BACKPROP.check(slope)
    assert back.mistake == "no_hidden_slope" and slope_mistake.fix not in back.message


def test_a_pass_starts_over():
    wrong, mistake = making(BACKPROP, "no_hidden_slope")
    BACKPROP.check(wrong)
    assert BACKPROP.check(ch01.backprop_two_layer)
    assert mistake.fix not in BACKPROP.check(wrong).message


def test_each_exercise_has_its_own_stage():
    """The same mistake made in another exercise is that exercise's first failure."""
    bp_wrong, _ = making(BACKPROP, "error_sign")
    fa_wrong, fa_mistake = making(FA, "error_sign")
    BACKPROP.check(bp_wrong)
    assert fa_mistake.fix not in FA.check(fa_wrong).message
    assert fa_mistake.fix in FA.check(fa_wrong).message


def test_a_silent_check_neither_gives_the_fix_nor_moves_the_stage():
    """The grader and the cells that fall back to the reference check silently: their messages are
    the first stage's, and the learner's next printed check is as if they had not run."""
    wrong, mistake = making(BACKPROP, "no_hidden_slope")
    assert mistake.fix not in BACKPROP.check(wrong, verbose=False).message
    assert mistake.fix not in BACKPROP.check(wrong).message
    assert mistake.fix not in BACKPROP.check(wrong, verbose=False).message
    assert mistake.fix in BACKPROP.check(wrong).message


def test_a_mistake_recognised_by_its_error_is_staged_too(capsys):
    exercise = ch07.EMBED_LABEL
    mistake = next(m for m in exercise.mistakes if m.raises)

    def narrow_one_hot(X, y, n_classes):
        X = X.clone()
        X[:, :n_classes] = F.one_hot(y).to(X.dtype)  # raises when the largest label is missing
        return X
    first, second = exercise.check(narrow_one_hot), exercise.check(narrow_one_hot)
    assert first.mistake == second.mistake == mistake.name
    assert mistake.why in first.message and mistake.fix not in first.message
    assert second.message.endswith(mistake.fix)


MISTAKES = [(e.name, m) for e in all_exercises() for m in e.mistakes]


@pytest.mark.parametrize("exercise, mistake", MISTAKES, ids=[f"{e}-{m.name}" for e, m in MISTAKES])
def test_every_named_mistake_has_a_why_and_a_fix_of_its_own(exercise, mistake):
    assert mistake.why and mistake.fix and mistake.fix not in mistake.why
