"""The mechanism of a training recipe (Chapter 8, "Reproducing the published numbers"): what decides
a run, and the one way to run it. The recipes themselves, the catalogue, are :mod:`course_lib.recipes`.

A :class:`Recipe` is everything that decides a run: the network (sizes, units, output, loss,
initialisation), the rule and its settings, the optimiser (lr, momentum, decay), the schedule, the
batch, the number of epochs and the data; a published one also carries its figure
(:class:`Published`: the accuracy, its source and the kind of source). ``recipe.run(data, seed)``
trains it, or loads it from the run cache when the same run was trained before, and returns its
History; ``recipe.trained(data, seed)`` returns the whole :class:`Run` (network, rule and History),
for a notebook that goes on to look at the trained network.

A chapter's short run is a *budget* of a recipe, ``recipe.budget(10)``: the same recipe for fewer
epochs, its schedule scaled to them (lr ÷ 10 after 60 % and 90 % of the epochs stays at 60 % and
90 %).

What a run trains on (``train_on``): a chapter's run trains on the training split and holds the
validation split out, to choose settings on (``"train"``, MNIST's 50,000 of 60,000 images). A
published recipe's final run trains on what its source trained on and is reported on the test set:
every training image with no validation split (``"all"``: :meth:`course_lib.data.Dataset.all_training`)
where the source did so, the training split where the source held a validation split out (Löwe's
Forward-Forward code trains on 50,000 images). A budget or a variant of a recipe is a chapter's run
again unless it says otherwise. The run's fingerprint records the sizes of the splits it saw.

The rule of a recipe is drawn from the run's seed (``RuleSpec(FeedbackAlignment)(seed)``), so its
own random matrices and noise (B, F, dropout masks, mirror noise, negative labels) change with
the seed, and the spread over seeds includes them.
"""
import inspect
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import torch

from . import config
from .network import MLP
from .rules.base import LearningRule
from .train import History, linear_cooldown, make_optimizer, train

# The kinds of source a published figure comes from, strongest first (the book's tables say which).
SOURCE_KINDS = ("paper table", "authors' code log", "reimplementation README", "lab notebook")

# What a run trains on (module docstring): the training split less validation, or all of it.
TRAIN_ON = ("train", "all")


@dataclass(frozen=True)
class Published:
    """A published test accuracy (%) and where it comes from."""
    accuracy: float
    source: str                 # who and where: "Dellaferrera & Kreiman 2022, Table 1"
    kind: str                   # one of SOURCE_KINDS
    std: float | None = None    # over seeds, where the source gives one
    data: str = "MNIST"

    def __post_init__(self):
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"kind is one of {SOURCE_KINDS}, got {self.kind!r}.")

    @property
    def tolerance(self) -> float:
        """How far a reproduction may land from the figure: 0.3 points, or 2 std where the source
        gives a spread over seeds, whichever is wider."""
        return max(0.3, 2 * (self.std or 0.0))

    def __str__(self):
        return f"{self.accuracy:.2f}" + (f" ± {self.std:.2f}" if self.std else "")


@dataclass(frozen=True)
class RuleSpec:
    """A rule class and its settings; called with a seed it makes a fresh rule drawn from that seed
    (rules without randomness take no seed)."""
    cls: type
    settings: dict = field(default_factory=dict)

    def __call__(self, seed: int = 0) -> LearningRule:
        seeded = "seed" in inspect.signature(self.cls).parameters
        return self.cls(**self.settings, **({"seed": seed} if seeded else {}))

    def __str__(self):
        settings = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{self.cls.__name__}({settings})"


@dataclass(frozen=True)
class StepAt:
    """lr × 0.1 after each of these fractions of the run (0.6, 0.9: epochs 60 and 90 of 100)."""
    fractions: tuple

    def __call__(self, num_epochs: int):
        return [round(f * num_epochs) for f in self.fractions] if num_epochs > 1 else None


@dataclass(frozen=True)
class Cooldown:
    """Constant lr for half of the run, then a linear fall (:func:`course_lib.train.linear_cooldown`)."""

    def __call__(self, num_epochs: int):
        return linear_cooldown(num_epochs)


@dataclass(frozen=True)
class Recipe:
    """One training recipe; the module docstring says what it holds and how it runs."""
    key: str
    chapter: int
    rule: RuleSpec
    hidden: tuple                       # hidden-layer widths; the input and output sizes come from the data
    lr: float
    num_epochs: int
    batch_size: int = 64
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: object = None             # num_epochs -> train's schedule (StepAt, Cooldown), or None
    activation: str = "relu"
    output: str = "identity"
    loss: str = "cross_entropy"
    init: object = "he"
    top: str = "classes"                # "classes": last layer = n_classes; "hidden": one more hidden-width layer (FF)
    data: str = "mnist"
    published: Published | None = None
    note: str = ""                      # where the recipe departs from, or fills in, its source
    train_on: str = "train"             # one of TRAIN_ON: what the runs train on ("all": as most sources do)
    runs_as: str = ""                   # the key its runs are saved under, when another recipe's runs are its own

    def __post_init__(self):
        if self.train_on not in TRAIN_ON:
            raise ValueError(f"train_on is one of {TRAIN_ON}, got {self.train_on!r}.")

    @property
    def run_key(self) -> str:
        """The name of the recipe's runs in the cache: its key, or the key of the recipe it shares its
        runs with (two published figures of one recipe: the runs are trained once)."""
        return self.runs_as or self.key

    def training_data(self, data):
        """``data`` as this recipe's runs see it: as it is (``train_on="train"``), or with the
        validation images joined to the training images and no validation split (``"all"``)."""
        return data.all_training() if self.train_on == "all" else data

    def sizes(self, data) -> list:
        n_out = data.n_classes if self.top == "classes" else self.hidden[-1]
        return [data.n_features, *self.hidden, n_out]

    def network(self, data, seed: int = 0, device=None) -> MLP:
        return MLP(self.sizes(data), activation=self.activation, output=self.output, loss=self.loss,
                   init=self.init, seed=seed, device=device if device is not None else data.X_train.device)

    def budget(self, num_epochs: int, key: str | None = None, train_on: str = "train") -> "Recipe":
        """The same recipe for ``num_epochs`` epochs (schedule scaled): a chapter's short run, on the
        training split unless ``train_on`` says otherwise, under ``key`` if given (the name of its
        runs in the cache)."""
        return replace(self, num_epochs=int(num_epochs), key=key or self.key, train_on=train_on,
                       runs_as=self.runs_as if key is None else "")

    def variant(self, key: str, **changes) -> "Recipe":
        """The recipe with some settings changed, under its own key (its own runs in the cache): a
        chapter's run, on the training split, unless ``changes`` set ``train_on``."""
        return replace(self, key=key, **{"train_on": "train", "runs_as": "", **changes})

    def make_rule(self, seed: int = 0, quick: bool = False) -> LearningRule:
        """A fresh rule drawn from ``seed``; in fast mode any mirror phase before training is cut to
        10 steps (the pipeline, not the result, is what fast mode checks)."""
        rule = self.rule(seed)
        if quick and getattr(rule, "premirror_steps", 0):
            rule.premirror_steps = min(rule.premirror_steps, 10)
        return rule

    def start(self, data, seed: int = 0, quick: bool | None = None) -> tuple:
        """(network, rule) as a run from ``seed`` starts: the network drawn from ``seed``, the rule
        from ``seed`` and bound to it (so its feedback matrices exist), before any training step."""
        quick = config.quick_mode() if quick is None else quick
        net = self.network(data, seed)
        return net, self.make_rule(seed, quick).bind(net)

    def run(self, data, seed: int = 0, **options) -> History:
        """Train the recipe on ``data`` from ``seed``, or load it; the History (:meth:`trained` says
        more, and takes the same options)."""
        return self.trained(data, seed, **options).history

    def trained(self, data, seed: int = 0, *, rule: LearningRule | None = None, quick: bool | None = None,
                runs_dir=None, save: bool = True, on_epoch=None, progress: bool = False,
                compile: bool = False) -> "Run":
        """The :class:`Run` of the recipe on ``data`` from ``seed`` (network, rule and batch order),
        trained, or loaded from its checkpoint: the network and rule as training left them, and the History.

        ``rule``: another rule trained with this recipe's network and optimiser (a learner's own
        function wrapped as a rule, say); its settings go into the checkpoint's fingerprint.
        ``quick`` (default: the course's fast mode) trains one epoch at constant lr. ``runs_dir``:
        the folder of the run's checkpoint (default: the shared run cache, nothing saved in fast
        mode); the file is ``<key>_seed<seed>-<fingerprint>.pt``. ``save=False``: no checkpoint
        (a benchmark that times the training itself). ``compile``: see :func:`course_lib.train.train`."""
        quick = config.quick_mode() if quick is None else quick
        rule = rule if rule is not None else self.make_rule(seed, quick)
        name = f"{self.run_key}_seed{seed}.pt"
        checkpoint = None if not save else Path(runs_dir) / name if runs_dir is not None else config.run_file(name)
        net = self.network(data, seed)
        history = train(net, rule, self.training_data(data), seed=seed, on_epoch=on_epoch, checkpoint=checkpoint,
                        progress=progress, compile=compile, **train_settings(self, quick))
        return Run(net, rule, history)

    def steps_per_epoch(self, data) -> int:
        return -(-len(self.training_data(data).X_train) // self.batch_size)

    def seconds_per_step(self, data, steps: int = 20, device=None) -> float:
        """Wall-clock seconds of one training step on ``device`` (default: the data's), timed over
        ``steps`` steps on the first batch after one warm-up step; no evaluation."""
        device = torch.device(device) if device is not None else data.X_train.device
        net, rule = self.network(data, 0, device), self.make_rule(0, quick=True)
        optimizer = make_optimizer(net, rule, self.lr, self.momentum, self.weight_decay)
        X, y = data.X_train[:self.batch_size].to(device), data.y_train[:self.batch_size].to(device)
        rule.step(net, X, y, optimizer)                                   # warm-up
        synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            rule.step(net, X, y, optimizer)
        synchronize(device)
        return (time.perf_counter() - start) / steps

    def describe(self) -> str:
        """One line: network, rule, optimiser, budget."""
        net = "-".join(map(str, ["n_in", *self.hidden, "n_out" if self.top == "classes" else self.hidden[-1]]))
        optimiser = f"lr {self.lr:g}" + (f", momentum {self.momentum:g}" if self.momentum else "") + (
            f", decay {self.weight_decay:g}" if self.weight_decay else "")
        return (f"{net} {self.activation}, {self.rule}, {optimiser}, batch {self.batch_size}, "
                f"{self.num_epochs} epochs" + (", on every training image" if self.train_on == "all" else ""))


class Run(NamedTuple):
    """What :meth:`Recipe.trained` gives back: ``net, rule, history = recipe.trained(data, seed)``."""
    net: MLP
    rule: LearningRule
    history: History


def synchronize(device: torch.device):
    """Wait for the device's queued work, so that a timer reads the work and not its queueing."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def final_accuracies(histories) -> list:
    """Test accuracy (%) at the end of each run."""
    return [100 * h["test_acc"][-1] for h in histories]


def mean_std(values) -> tuple:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


# ---------------------------------------------------------------- the published recipes


def train_settings(recipe: Recipe, quick: bool | None = None) -> dict:
    """The recipe's optimiser and budget as keyword arguments of :func:`course_lib.train.train`, for a
    notebook that trains its own rule (the learner's function) with the recipe: lr, num_epochs,
    batch_size, momentum, weight_decay and the schedule; in fast mode one epoch at constant lr."""
    quick = config.quick_mode() if quick is None else quick
    num_epochs = 1 if quick else recipe.num_epochs
    return dict(lr=recipe.lr, num_epochs=num_epochs, batch_size=recipe.batch_size, momentum=recipe.momentum,
                weight_decay=recipe.weight_decay,
                schedule=None if quick or not recipe.schedule else recipe.schedule(num_epochs))
