"""Checks for Chapter 7's exercises: the pieces of Forward-Forward.

Each check runs the learner's function on a few cases (a square one so shape mix-ups still run and
can be named, batch 1, odd sizes, float64) against :mod:`course_lib.chapters.ch07`'s reference.
``negative_labels`` is random, so its check is statistical: with a fixed generator passed in it
must be reproducible, never return the true label, and spread its labels evenly over the others.
"""
import torch
import torch.nn.functional as nnf

from ..rules import forward_forward as ff
from .core import Case, Factor, Mistake, Wrong, call_learner, compare, returned_none
from .exercise import Exercise


# ---------------------------------------------------------------- the reference answers

def embed_label(X, y, n_classes):
    """Reference for exercise 7.1: X (N, pixels) with y (N,) one-hot in the first n_classes pixels."""
    return ff.embed_label(X, y, n_classes)


def negative_labels(y, n_classes, generator):
    """Reference for exercise 7.2: a wrong label per sample, uniform over the others."""
    return ff.negative_labels(y, n_classes, generator)


def goodness(h):
    """Reference for exercise 7.3: mean of squares over the units, (N, n) -> (N,)."""
    return ff.goodness(h)


def ff_layer_loss(g_pos, g_neg, threshold):
    """Reference for exercise 7.4: ½ [mean softplus(θ − G⁺) + mean softplus(G⁻ − θ)]."""
    return ff.layer_loss(g_pos, g_neg, threshold)


def normalise_input(h, eps):
    """Reference for exercise 7.5: each row divided by its root mean square plus ε."""
    return ff.normalise(h, eps)


def goodness_per_label(X, W1, b1, W2, b2, n_classes):
    """Reference for exercise 7.6: (N, n_classes) goodness of both layers, summed, for each label
    embedded in turn (every layer's input normalised first)."""
    table = []
    for label in range(n_classes):
        x = ff.embed_label(X, label, n_classes)
        h1 = torch.relu(ff.normalise(x) @ W1.T + b1)      # (N, n_1)
        h2 = torch.relu(ff.normalise(h1) @ W2.T + b2)     # (N, n_2)
        table.append(ff.goodness(h1) + ff.goodness(h2))
    return torch.stack(table, dim=1)


def _relu_like(g, batch, n, dtype, silent_row=False):
    """Non-negative activities with exact zeros, as ReLU units give; optionally one silent row."""
    h = torch.relu(torch.randn(batch, n, generator=g, dtype=dtype))
    if silent_row:
        h[0] = 0
    return h


# ---------------------------------------------------------------- 7.1 embed a label

def embed_cases():
    g = torch.Generator().manual_seed(71)
    cases = []
    for batch, n_pixels, n_classes, dtype, last in [(6, 20, 10, torch.float32, True), (1, 30, 10, torch.float32, True),
                                                    (9, 12, 3, torch.float32, True), (5, 784, 10, torch.float64, True),
                                                    (7, 25, 10, torch.float32, False)]:
        X = torch.rand(batch, n_pixels, generator=g, dtype=dtype)
        y = torch.randint(n_classes - (0 if last else 3), (batch,), generator=g)
        if last:
            y[0] = n_classes - 1  # the last label occurs
        absent = "" if last else f", labels below {int(y.max()) + 1} only"
        cases.append(Case(dict(X=X, y=y, n_classes=n_classes),
                          f"batch {batch}, {n_pixels} pixels, {n_classes} classes{absent} ({str(dtype)[6:]})", batch))
    return cases


def _embed_added(X, y, n_classes):
    out = X.clone()
    out[:, :n_classes] += nnf.one_hot(y, n_classes).to(X.dtype)
    return out


def _embed_one_pixel(X, y, n_classes):
    out = X.clone()
    out[torch.arange(len(X)), y] = 1
    return out


def _embed_last(X, y, n_classes):
    out = X.clone()
    out[:, -n_classes:] = nnf.one_hot(y, n_classes).to(X.dtype)
    return out


def _embed_value(X, y, n_classes):
    out = X.clone()
    out[:, :n_classes] = 0
    out[:, 0] = y.to(X.dtype)
    return out


def _embed_replaced(X, y, n_classes):
    return torch.cat([nnf.one_hot(y, n_classes).to(X.dtype), X], dim=1)


def _embed_narrow(X, y, n_classes):
    """F.one_hot(y) without num_classes (as wide as the largest label present, + 1) in front of the
    image's other pixels."""
    return torch.cat([nnf.one_hot(y).to(X.dtype), X[:, n_classes:]], dim=1)


def _embed_at(X, y, n_classes, shift=0, rows=True):
    """The 1 written at pixel y + shift of each row, or (``rows=False``) at pixels y of every row."""
    out = X.clone()
    out[:, :n_classes] = 0
    if rows:
        out[torch.arange(len(X)), y + shift] = 1
    else:
        out[:, y] = 1
    return out


EMBED_LINES = "Write X = X.clone(), X[:, :n_classes] = 0, then X[torch.arange(len(X)), y] = 1."
ONE_HOT_WIDTH = ("F.one_hot(y) without num_classes is only as wide as the largest label present, plus one; "
                 "here that label is missing, so the one-hot rows are too narrow.",
                 "Write F.one_hot(y, num_classes=n_classes).")
OFF_BY_ONE = ("the 1 is one pixel off: label y goes into pixel y, counting from 0 (label 0 in the first pixel).",
              "Write X[torch.arange(len(X)), y] = 1, with y itself as the column.")


EMBED_MISTAKES = [
    Mistake("kept_old_pixels", lambda **c: _embed_one_pixel(**c),
            "only pixel y was set to 1: the other label pixels keep the image's values, so the label pixels "
            "are not one-hot. Set all n_classes label pixels to 0 first.",
            EMBED_LINES),
    Mistake("added_one_hot", lambda **c: _embed_added(**c),
            "the one-hot label was added to the image's first pixels instead of replacing them: "
            "the label pixels must be exactly the one-hot vector (0 everywhere, 1 at y).",
            EMBED_LINES),
    Mistake("last_pixels", lambda **c: _embed_last(**c),
            "the label went into the last n_classes pixels; it belongs in the first n_classes.",
            "Write X[:, :n_classes] = 0 (the first pixels), then X[torch.arange(len(X)), y] = 1."),
    Mistake("label_as_value", lambda **c: _embed_value(**c),
            "the label was written as a number into one pixel; it is written one-hot: pixel y is 1, the "
            "other label pixels 0.",
            EMBED_LINES),
    Mistake("prepended", lambda **c: _embed_replaced(**c),
            "the one-hot label was put in front of the image, which makes the rows longer; overwrite "
            "the first n_classes pixels instead, so the shape stays (N, pixels).",
            EMBED_LINES),
    Mistake("one_hot_width", lambda **c: _embed_narrow(**c), *ONE_HOT_WIDTH,
            raises=r"one_hot\(\s*\w+(\.\w+\(\))*\s*\)"),
    Mistake("label_off_by_one", lambda **c: _embed_at(**c, shift=1), *OFF_BY_ONE),
    Mistake("label_off_by_one", lambda **c: _embed_at(**c, shift=-1), *OFF_BY_ONE),
    Mistake("all_rows", lambda **c: _embed_at(**c, rows=False),
            "X[:, y] = 1 sets the pixels of every label in y in every row; each row needs its own pixel, "
            "picked by indexing rows and columns together.",
            "Write X[torch.arange(N), y] = 1."),
    Mistake("label_only", lambda X, y, n_classes: nnf.one_hot(y, n_classes).to(X.dtype),
            "you returned the one-hot label alone; return the whole image with the label written into it, "
            "shape (N, pixels).",
            EMBED_LINES),
]


EMBED_LABEL = Exercise(
    "embed_label", embed_label, embed_cases, EMBED_MISTAKES,
    shape_hint="X has shape (N, pixels), y (N,): write the label into X[:, :n_classes].",
    about="""Exercise 7.1 "Embed a label": compares with the reference on four cases.""")
check_embed_label = EMBED_LABEL.check


# ---------------------------------------------------------------- 7.2 negative labels

NEG_SAMPLES = 20_000


def _chi_square(y, neg, n_classes) -> float:
    """Pearson's χ² of the (true, negative) pair counts against uniform over the wrong labels."""
    counts = torch.zeros(n_classes, n_classes, dtype=torch.float64)
    counts.index_put_((y, neg), torch.ones(len(y), dtype=torch.float64), accumulate=True)
    expected = torch.bincount(y, minlength=n_classes).double()[:, None] / (n_classes - 1)
    off = ~torch.eye(n_classes, dtype=torch.bool)
    return float(((counts - expected) ** 2 / expected.expand_as(counts))[off].sum())


def _chi_square_limit(n_classes) -> float:
    """Far beyond chance (≈ 7 standard deviations above the mean of χ² with this many degrees of
    freedom): a correct function essentially never exceeds it, a visibly uneven one always does."""
    dof = n_classes * (n_classes - 2)
    return dof + 7 * (2 * dof) ** 0.5


SHIFT_LINE = ("Write shift = torch.randint(1, n_classes, y.shape, generator=generator) and return "
              "(y + shift) % n_classes.")
ONE_SHIFT = ("every sample's label was moved by the same shift (on a test case with {label}): one shift was drawn "
             "for the whole batch, so the batch's wrong labels all follow one pattern. Draw one shift per sample, "
             "a tensor of shape (N,).")
GENERATOR_LINE = "Pass the generator to every draw: torch.randint(..., generator=generator)."


def _call_negatives(fn, y, n_classes, seed, label):
    g = torch.Generator().manual_seed(seed)
    case = Case(dict(y=y, n_classes=n_classes, generator=g), label, len(y))
    out = call_learner("negative_labels", fn, case)
    if out is None:
        raise returned_none("the tensor of labels")
    if not isinstance(out, torch.Tensor):
        raise Wrong(f"return a tensor of labels, got {type(out).__name__}.", "type")
    if out.shape != y.shape:
        raise Wrong(f"the labels have shape {tuple(out.shape)} but {tuple(y.shape)} was expected (one per "
                    f"sample, on a test case with {label}).", "shape")
    if out.is_floating_point() or out.is_complex() or out.dtype == torch.bool:
        raise Wrong(f"the labels have dtype {out.dtype}: return integer class indices (torch.long), "
                    f"e.g. from torch.randint.", "dtype")
    return out


def _follows_global_generator(fn, y, n_classes, label) -> bool:
    """Whether ``fn``'s labels change with torch's global generator (the generator passed in kept
    fixed); the global generator is put back afterwards."""
    saved = torch.get_rng_state()
    try:
        outputs = []
        for global_seed in (11, 12):
            torch.manual_seed(global_seed)
            outputs.append(_call_negatives(fn, y, n_classes, 0, label))
    finally:
        torch.set_rng_state(saved)
    return not torch.equal(*outputs)


def _true_label_returned(y, neg, n_classes, same, label) -> Wrong:
    """The diagnosis of negative labels that include the true one: shuffled labels (the same labels,
    permuted), labels drawn from all n_classes (the true one included), or some other cause."""
    text = (f"{100 * same:.1f} % of the 'negative' labels equal the true label (on a test case with {label}); a "
            f"negative label must never be the true one.")
    if torch.equal(torch.sort(neg.to(y.dtype)).values, torch.sort(y).values):
        return Wrong(f"{text} Your labels are the true ones shuffled (y[torch.randperm(N)]): shuffling gives about "
                     f"1 sample in n_classes its own label back. Shift each label by 1 to n_classes - 1 instead.",
                     "shuffled", SHIFT_LINE)
    if abs(same - 1 / n_classes) < 0.03:
        return Wrong(f"{text} About 1 in n_classes: your draws include the true label (a label from all "
                     f"n_classes, or a shift of 0). A shift from 1 to n_classes - 1 never returns it.",
                     "true_label_drawn", SHIFT_LINE)
    return Wrong(f"{text} Shift each label by 1 to n_classes - 1, wrapping around.", "true_label", SHIFT_LINE)


def negative_labels_statistics(exercise, fn) -> str:
    """The check of "Negative labels": reproducible, in range, never the true label, uniform."""
    g = torch.Generator().manual_seed(72)
    for n_classes in (10, 3):
        y = torch.randint(n_classes, (NEG_SAMPLES,), generator=g)
        label = f"{NEG_SAMPLES} samples, {n_classes} classes"
        neg = _call_negatives(fn, y, n_classes, 0, label)
        if int(neg.min()) < 0 or int(neg.max()) >= n_classes:
            raise Wrong(f"some labels lie outside 0..{n_classes - 1} (from {int(neg.min())} to "
                        f"{int(neg.max())}, on a test case with {label}): a shifted label must wrap around.",
                        "out_of_range", "Return (y + shift) % n_classes.")
        same = float((neg == y).double().mean())
        if same > 0:
            raise _true_label_returned(y, neg, n_classes, same, label)
        again = _call_negatives(fn, y, n_classes, 0, label)
        if not torch.equal(again.to(neg.dtype), neg):
            raise Wrong("two calls with generators seeded the same gave different labels: every random number "
                        "must come from the generator passed in.", "ignores_generator", GENERATOR_LINE)
        if torch.equal(_call_negatives(fn, y, n_classes, 1, label).to(neg.dtype), neg):
            if _follows_global_generator(fn, y, n_classes, label):
                raise Wrong("your labels follow torch's global random generator, not the generator passed in "
                            "(the check puts the global one back after each call, so the same labels came "
                            "twice): every random number must come from the generator passed in.",
                            "ignores_generator", GENERATOR_LINE)
            raise Wrong("generators with different seeds gave the same labels: the labels must be random, "
                        "drawn from the generator passed in.", "not_random")
        chi2 = _chi_square(y, neg, n_classes)
        if chi2 > _chi_square_limit(n_classes):
            if len(torch.unique((neg.to(y.dtype) - y) % n_classes)) == 1:
                raise Wrong(ONE_SHIFT.format(label=label), "one_shift_for_batch", SHIFT_LINE)
            counts = torch.bincount(neg[y == 0], minlength=n_classes)[1:].tolist()
            if 0 in counts:
                raise Wrong(f"for true label 0 the labels 1..{n_classes - 1} came {counts} times (on a test case "
                            f"with {label}): some wrong labels are never drawn. torch.randint's upper bound is "
                            f"excluded, so its high end must be n_classes to reach the shift n_classes - 1.",
                            "randint_upper_bound", SHIFT_LINE)
            raise Wrong(f"the wrong labels are not spread evenly over the other classes (χ² = {chi2:.0f}, far "
                        f"beyond chance, on a test case with {label}; for true label 0 the labels 1..{n_classes - 1} "
                        f"came {counts} times): every wrong label must be equally likely.", "not_uniform")
    y1 = torch.tensor([4])
    one = _call_negatives(fn, y1, 10, 3, "batch 1")
    if int(one[0]) == 4 or not 0 <= int(one[0]) < 10:
        raise Wrong(f"on a batch of one sample with label 4 it returned {int(one[0])}.", "batch_of_one")
    return "reproducible with the generator, never the true label, uniform over the others (χ² test)."


def negative_labels_example():
    """One small call of the exercise's function (its check draws 20,000 labels of its own)."""
    return [Case(dict(y=torch.tensor([0, 3, 9]), n_classes=10, generator=torch.Generator().manual_seed(0)),
                 "3 samples, 10 classes", 3)]


NEGATIVE_LABELS = Exercise(
    "negative_labels", negative_labels, negative_labels_example, body=negative_labels_statistics,
    about="""Exercise 7.2 "Negative labels": with a fixed generator passed in, the labels must be
    reproducible, in range, never the true label, and uniform over the other labels (a χ² test on
    20,000 samples); batch 1 and 3 classes included.""")
check_negative_labels = NEGATIVE_LABELS.check


# ---------------------------------------------------------------- 7.3 goodness

def goodness_cases():
    g = torch.Generator().manual_seed(73)
    cases = []
    for batch, n, dtype in [(6, 6, torch.float32), (1, 7, torch.float32), (9, 500, torch.float32),
                            (4, 11, torch.float64)]:
        cases.append(Case(dict(h=_relu_like(g, batch, n, dtype)), f"batch {batch}, {n} units ({str(dtype)[6:]})",
                          batch))
    return cases


GOODNESS_LINE = "Write (h ** 2).mean(dim=1)."
GOODNESS_MISTAKES = [
    Mistake("divided_by_batch_size", lambda h: h.pow(2).sum(dim=1) / len(h),
            "you divided the sum of squares by len(h), the batch size N; a mean over the units divides by the "
            "number of units, h.shape[1].",
            GOODNESS_LINE),
    Mistake("summed_units", lambda h: h.pow(2).sum(dim=1),
            "you summed the squares over the units; this course's goodness is their mean, so one "
            "threshold suits layers of any width.",
            GOODNESS_LINE),
    Mistake("wrong_axis", lambda h: h.pow(2).mean(dim=0),
            "the mean was taken over the batch (dimension 0); goodness is one number per sample, the "
            "mean over the units (dimension 1).",
            GOODNESS_LINE),
    Mistake("not_squared", lambda h: h.mean(dim=1),
            "the activities are not squared: goodness is the mean of h², not of h.",
            GOODNESS_LINE),
    Mistake("root_taken", lambda h: h.pow(2).mean(dim=1).sqrt(),
            "you took the square root (a length, not a goodness): goodness is the mean of h² itself.",
            GOODNESS_LINE + " No .sqrt()."),
    Mistake("batch_mean", lambda h: h.pow(2).mean(),
            "one number for the whole batch: goodness is one number per sample, shape (N,).",
            GOODNESS_LINE),
    Mistake("norm", lambda h: h.norm(dim=1),
            "h.norm(dim=1) is the length √(Σ h²), not a goodness: goodness is the mean of the squares.",
            GOODNESS_LINE),
]


GOODNESS = Exercise(
    "goodness", goodness, goodness_cases, GOODNESS_MISTAKES,
    about="""Exercise 7.3 "Goodness": compares with the mean of squares over the units on four cases.""")
check_goodness = GOODNESS.check


# ---------------------------------------------------------------- 7.4 the layer loss

def loss_cases():
    g = torch.Generator().manual_seed(74)
    cases = []
    for batch, threshold, scale, dtype in [(8, 2.0, 4.0, torch.float32), (1, 1.5, 3.0, torch.float32),
                                           (12, 2.0, 300.0, torch.float32), (5, 0.7, 2.0, torch.float64)]:
        g_pos = torch.rand(batch, generator=g, dtype=dtype) * scale
        g_neg = torch.rand(batch, generator=g, dtype=dtype) * scale
        more = ", goodness up to 300" if scale > 100 else ""
        cases.append(Case(dict(g_pos=g_pos, g_neg=g_neg, threshold=threshold),
                          f"batch {batch}, threshold {threshold}{more} ({str(dtype)[6:]})", batch))
    return cases


def _sp(x):
    return nnf.softplus(x)


LOSS_LINE = ("Write torch.cat([F.softplus(threshold - g_pos), F.softplus(g_neg - threshold)]).mean(), "
             "with torch.nn.functional as F.")
LOSS_MISTAKES = [
    Mistake("signs_swapped", lambda g_pos, g_neg, threshold:
            0.5 * (_sp(g_pos - threshold).mean() + _sp(threshold - g_neg).mean()),
            "the two terms are the wrong way round: positives must be pushed *above* the threshold, "
            "softplus(θ − G⁺), and negatives below it, softplus(G⁻ − θ).",
            LOSS_LINE),
    Mistake("log_sigmoid_sign", lambda g_pos, g_neg, threshold:
            0.5 * (nnf.logsigmoid(g_pos - threshold).mean() + nnf.logsigmoid(threshold - g_neg).mean()),
            "the loss has the opposite sign: log σ(·) is the log-probability, which training raises; "
            "the loss is its negative, −log σ(G⁺ − θ) = softplus(θ − G⁺) (and likewise for negatives).",
            LOSS_LINE),
    Mistake("no_threshold", lambda g_pos, g_neg, threshold:
            0.5 * (_sp(-g_pos).mean() + _sp(g_neg).mean()),
            "the threshold is missing: each goodness is compared with θ, softplus(θ − G⁺) and "
            "softplus(G⁻ − θ).",
            LOSS_LINE),
    Mistake("sigmoid_not_softplus", lambda g_pos, g_neg, threshold:
            0.5 * (torch.sigmoid(threshold - g_pos).mean() + torch.sigmoid(g_neg - threshold).mean()),
            "you used the sigmoid σ itself; the loss is the negative log of it, −log σ(G⁺ − θ) = "
            "softplus(θ − G⁺).",
            LOSS_LINE),
    Mistake("positives_only", lambda g_pos, g_neg, threshold: _sp(threshold - g_pos).mean(),
            "only the positive term is there: the negatives' softplus(G⁻ − θ) belongs in the loss too, "
            "averaged over all samples.",
            LOSS_LINE),
    Mistake("two_means_added", lambda g_pos, g_neg, threshold:
            _sp(threshold - g_pos).mean() + _sp(g_neg - threshold).mean(),
            "the loss is twice too large: it is the mean over all 2N samples, ½ (mean over positives + "
            "mean over negatives), not the sum of the two means.",
            LOSS_LINE),
    Mistake("summed_samples", lambda g_pos, g_neg, threshold:
            _sp(threshold - g_pos).sum() + _sp(g_neg - threshold).sum(),
            "you summed over the samples: the loss is the mean over all 2N samples.",
            LOSS_LINE),
    Mistake("overflow", lambda g_pos, g_neg, threshold:
            0.5 * (torch.log(1 + torch.exp(threshold - g_pos)).mean() + torch.log(1 + torch.exp(g_neg - threshold)).mean()),
            "log(1 + exp(x)) overflows to inf when x is large (exp(89) is already inf in float32), as on "
            "this test case with large goodness: softplus is the same function computed safely.",
            "Use torch.nn.functional.softplus(x) instead of torch.log(1 + torch.exp(x))."),
    Mistake("negative_term_sign", lambda g_pos, g_neg, threshold:
            0.5 * (_sp(threshold - g_pos).mean() + _sp(threshold - g_neg).mean()),
            "the negatives' term has the wrong sign: negatives must be pushed *below* the threshold, "
            "softplus(G⁻ − θ) (the positives' term is right).",
            "Write F.softplus(g_neg - threshold)."),
    Mistake("positive_term_sign", lambda g_pos, g_neg, threshold:
            0.5 * (_sp(g_pos - threshold).mean() + _sp(g_neg - threshold).mean()),
            "the positives' term has the wrong sign: positives must be pushed *above* the threshold, "
            "softplus(θ − G⁺) (the negatives' term is right).",
            "Write F.softplus(threshold - g_pos)."),
    Mistake("per_sample_loss", lambda g_pos, g_neg, threshold:
            0.5 * (_sp(threshold - g_pos) + _sp(g_neg - threshold)),
            "you returned one loss per sample; the layer's loss is one number, the mean over all 2N samples.",
            LOSS_LINE),
    Mistake("goodness_averaged_first", lambda g_pos, g_neg, threshold:
            0.5 * (_sp(threshold - g_pos.mean()) + _sp(g_neg.mean() - threshold)),
            "you averaged the goodness before the softplus; the softplus applies to each sample's goodness, "
            "and the mean comes after it.",
            LOSS_LINE),
    Mistake("pos_minus_neg", lambda g_pos, g_neg, threshold: _sp(g_neg - g_pos).mean(),
            "you compared the positives with the negatives directly; Forward-Forward compares each sample's "
            "goodness with the threshold θ: softplus(θ − G⁺) and softplus(G⁻ − θ).",
            LOSS_LINE),
]


FF_LAYER_LOSS = Exercise(
    "ff_layer_loss", ff_layer_loss, loss_cases, LOSS_MISTAKES,
    about="""Exercise 7.4 "The layer loss": compares with ½ [mean softplus(θ − G⁺) + mean softplus(G⁻ − θ)]
    on four cases, one with goodness large enough to overflow a naive log(1 + exp).""")
check_ff_layer_loss = FF_LAYER_LOSS.check


# ---------------------------------------------------------------- 7.5 normalisation

def normalise_cases():
    g = torch.Generator().manual_seed(75)
    cases = []
    for batch, n, dtype in [(5, 5, torch.float32), (1, 9, torch.float32), (7, 40, torch.float32),
                            (4, 6, torch.float64)]:
        h = _relu_like(g, batch, n, dtype, silent_row=batch > 1) * (1 + 3 * torch.rand(batch, 1, generator=g, dtype=dtype))
        small = batch == 7  # a row with a small root mean square tells where ε goes
        if small:
            h[1] = h[1] / h[1].pow(2).mean().sqrt() * 1e-3
        label = (f"batch {batch}, {n} units{', one silent row (all zeros)' if batch > 1 else ''}"
                 f"{', one row with root mean square 0.001' if small else ''} ({str(dtype)[6:]})")
        cases.append(Case(dict(h=h, eps=1e-8), label, batch))
    return cases


def _rms(h, dim=1):
    return h.pow(2).mean(dim=dim, keepdim=True).sqrt()


NORMALISE_LINES = "Write rms = h.pow(2).mean(dim=1, keepdim=True).sqrt() and return h / (rms + eps)."
NORMALISE_MISTAKES = [
    Mistake("wrong_axis", lambda h, eps: h / (_rms(h, 0) + eps),
            "the root mean square was taken over the batch (dimension 0): each sample's vector is "
            "normalised on its own, over its units (dimension 1).",
            NORMALISE_LINES),
    Mistake("no_keepdim", lambda h, eps: h / (h.pow(2).mean(dim=1).sqrt() + eps),
            "the norms have shape (N,) and were divided along the wrong axis: with the dimension kept, "
            "shape (N, 1), each row is divided by its own norm.",
            "Keep the dimension: rms = h.pow(2).mean(dim=1, keepdim=True).sqrt(), shape (N, 1)."),
    Mistake("unit_length", lambda h, eps: h / (h.norm(dim=1, keepdim=True) + eps),
            "you divided by the length ‖h‖, giving vectors of length 1; this course divides by the root "
            "mean square ‖h‖/√n, so every unit has activity of order 1 whatever the width.",
            NORMALISE_LINES),
    Mistake("no_root", lambda h, eps: h / (h.pow(2).mean(dim=1, keepdim=True) + eps),
            "you divided by the mean of squares; the root mean square is its square root.",
            NORMALISE_LINES),
    Mistake("mean_abs", lambda h, eps: h / (h.abs().mean(dim=1, keepdim=True) + eps),
            "you divided by the mean absolute activity; the norm here is the root mean square √(mean h²).",
            NORMALISE_LINES),
    Mistake("eps_inside_root", lambda h, eps: h / (h.pow(2).mean(dim=1, keepdim=True) + eps).sqrt(),
            "ε went inside the square root, √(mean h² + ε); it belongs outside the root, added to the root mean "
            "square: h / (√(mean h²) + ε). The two differ for rows with a small root mean square, as here.",
            NORMALISE_LINES),
    Mistake("std", lambda h, eps: h / (h.std(dim=1, keepdim=True) + eps),
            "you divided by the standard deviation, which subtracts the mean first; the root mean square "
            "does not: h / (√(mean h²) + ε).",
            NORMALISE_LINES),
    Mistake("returned_norm", lambda h, eps: _rms(h) + eps,
            "you returned the root mean square itself; the result is h divided by it, shape (N, n).",
            NORMALISE_LINES),
]


NO_EPS = ("a silent row (all units at 0) became NaN (0/0): ε belongs in the denominator, added to the norm, "
          "so that such a row stays 0.", "Return h / (rms + eps).")


def silent_rows_first(exercise, fn) -> str:
    """The check of "Normalise a layer's input": a NaN only on silent rows is the missing ε; then
    the comparison, case by case."""
    cases = exercise.cases()
    for case in cases:
        got = call_learner(exercise.name, fn, case)
        if isinstance(got, torch.Tensor) and got.shape == case.inputs["h"].shape and got.is_floating_point():
            silent = ~case.inputs["h"].any(dim=1)
            if silent.any() and got[silent].isnan().any() and not got[~silent].isnan().any():
                raise Wrong(NO_EPS[0], "no_eps", NO_EPS[1])
        exercise.compare(fn, [case])
    return f"correct on all {len(cases)} test cases."


NORMALISE_INPUT = Exercise(
    "normalise_input", normalise_input, normalise_cases, NORMALISE_MISTAKES, body=silent_rows_first,
    about="""Exercise 7.5 "Normalise a layer's input": compares with h / (√(mean h²) + ε), row by row, on
    four cases with a silent row and one with a row of small root mean square (F.normalize times √n
    also passes; ε inside the root does not). A NaN that only a silent row explains is named
    first: the missing ε.""")
check_normalise_input = NORMALISE_INPUT.check


# ---------------------------------------------------------------- 7.6 prediction by goodness

def predict_cases():
    g = torch.Generator().manual_seed(76)
    cases = []
    for batch, n_in, n1, n2, n_classes, dtype in [(5, 16, 8, 8, 4, torch.float32), (1, 20, 7, 5, 10, torch.float32),
                                                  (6, 30, 9, 11, 10, torch.float32), (3, 12, 6, 4, 3, torch.float64)]:
        X = torch.rand(batch, n_in, generator=g, dtype=dtype)
        W1 = torch.randn(n1, n_in, generator=g, dtype=dtype) * (2 / n_in) ** 0.5
        W2 = torch.randn(n2, n1, generator=g, dtype=dtype) * (2 / n1) ** 0.5
        b1, b2 = 0.1 * torch.randn(n1, generator=g, dtype=dtype), 0.1 * torch.randn(n2, generator=g, dtype=dtype)
        cases.append(Case(dict(X=X, W1=W1, b1=b1, W2=W2, b2=b2, n_classes=n_classes),
                          f"batch {batch}, {n_in} pixels, layers of {n1} and {n2} units, {n_classes} classes "
                          f"({str(dtype)[6:]})", batch))
    return cases


def _table(X, W1, b1, W2, b2, n_classes, norm1=True, norm2=True, layers=(1, 2), embed=True, measure=None,
           clear=True, norm=None, relu=torch.relu, measure_normalised=False):
    """The goodness table with one ingredient changed: builds the wrong answers (``clear=False``:
    only the label's pixel set; ``measure_normalised``: layer 1's goodness taken after normalising)."""
    norm = norm or normalise_input
    measure = measure or goodness
    cols = []
    for label in range(n_classes):
        x = embed_label(X, torch.full((len(X),), label), n_classes) if embed else X
        if embed and not clear:
            x = X.clone()
            x[:, label] = 1
        h1 = relu((norm(x, 1e-8) if norm1 else x) @ W1.T + b1)
        h1_in = norm(h1, 1e-8) if norm2 else h1
        h2 = relu(h1_in @ W2.T + b2)
        cols.append(sum(measure(h) for layer, h in ((1, h1_in if measure_normalised else h1), (2, h2))
                        if layer in layers))
    return torch.stack(cols, dim=1)


LAYER_LINES = ("Write h1 = torch.relu(normalise_input(x, 1e-8) @ W1.T + b1) and "
               "h2 = torch.relu(normalise_input(h1, 1e-8) @ W2.T + b2), with exercise 7.5's normalisation.")
TABLE_COLUMN = "Append h1.pow(2).mean(dim=1) + h2.pow(2).mean(dim=1) for each label c."
LABEL_LINES = "For each label c: x = X.clone(), x[:, :n_classes] = 0, x[:, c] = 1."
PREDICT_MISTAKES = [
    Mistake("input_not_normalised", lambda **c: _table(**c, norm1=False),
            "the first layer's input (the image with its label) is not normalised: every layer, the "
            "first included, sees its input divided by its root mean square.",
            LAYER_LINES),
    Mistake("hidden_not_normalised", lambda **c: _table(**c, norm2=False),
            "the second layer receives the first layer's activity without normalising it, so the "
            "first layer's goodness is passed up: normalise h1 before the second layer.",
            LAYER_LINES),
    Mistake("last_layer_only", lambda **c: _table(**c, layers=(2,)),
            "only the second layer's goodness is counted; this exercise adds the goodness of both layers.",
            TABLE_COLUMN),
    Mistake("first_layer_only", lambda **c: _table(**c, layers=(1,)),
            "only the first layer's goodness is counted; the second layer's counts as well.",
            TABLE_COLUMN),
    Mistake("label_not_embedded", lambda **c: _table(**c, embed=False),
            "every label gives the same goodness: each candidate label must be embedded in the image "
            "(first n_classes pixels) before the forward pass.",
            LABEL_LINES),
    Mistake("summed_squares", lambda **c: _table(**c, measure=lambda h: h.pow(2).sum(dim=1)),
            "goodness is the mean of the squared activities over the units, not their sum.",
            TABLE_COLUMN),
    Mistake("argmax_returned", lambda **c: _table(**c).argmax(dim=1),
            "you returned the prediction; the exercise asks for the whole table (N, n_classes) of goodness per "
            "label, whose argmax is the prediction.",
            "Return torch.stack(columns, dim=1), one column per label."),
    Mistake("label_pixels_not_cleared", lambda **c: _table(**c, clear=False),
            "only the label's pixel was set to 1; the other label pixels keep the image's values. All "
            "n_classes label pixels go to 0 first (as embed_label does).",
            LABEL_LINES),
    Mistake("unit_length_normalisation", lambda **c: _table(**c, norm=lambda h, eps: h / (h.norm(dim=1, keepdim=True)
                                                                                          + eps)),
            "you normalised to length 1; this course divides each layer's input by its root mean square, "
            "h / (√(mean h²) + ε), as in exercise 7.5.",
            "Divide by the root mean square: h / (h.pow(2).mean(dim=1, keepdim=True).sqrt() + 1e-8)."),
    Mistake("no_relu", lambda **c: _table(**c, relu=lambda a: a),
            "the layers' ReLU is missing: h1 = relu(x̂ W1ᵀ + b1), h2 = relu(ĥ1 W2ᵀ + b2).",
            LAYER_LINES),
    Mistake("goodness_of_normalised", lambda **c: _table(**c, measure_normalised=True),
            "layer 1's goodness was measured after normalising h1 (which makes it about 1 for every label): "
            "each layer's goodness is measured on its activity itself, before normalising it for the next layer.",
            TABLE_COLUMN + " Use h1, not the normalised h1."),
]
PREDICT_FACTORS = [Factor("layers_averaged", lambda case: 0.5,
                          "the table is half the right one: add the goodness of the two layers, do not average it.")]


GOODNESS_PER_LABEL = Exercise(
    "goodness_per_label", goodness_per_label, predict_cases, PREDICT_MISTAKES, PREDICT_FACTORS,
    tolerance=1e-4,
    shape_hint="Shapes: X (N, pixels), W1 (n_1, pixels), W2 (n_2, n_1); the result is (N, n_classes).",
    about="""Exercise 7.6 "Predict by goodness": compares the (N, n_classes) goodness table of a two-layer
    network with the reference on four cases.""")
check_goodness_per_label = GOODNESS_PER_LABEL.check
