"""The contract every learning rule fits, and the credit-assignment mechanism most of them share.

A rule (:class:`LearningRule`) is **bound** to a network once: :meth:`~LearningRule.bind` creates
the matrices the rule owns (feedback B, PEPITA's projection F, ...) on the network's device, seeded
(``train`` and ``make_optimizer`` bind; so does ``rule = FeedbackAlignment(seed=0).bind(net)``;
nothing in the step path binds again). It then

* computes **updates** by name, ``{"W1": ΔW₁, "b1": Δb₁, ..., "B2": ΔB₂}``, as batch means that point
  uphill like a gradient (``W ← W - lr·ΔW``), so learning rates compare across rules;
* declares the tensors of its own that **learn** (:meth:`~LearningRule.learned`) and their optimiser
  settings (:meth:`~LearningRule.learned_options`), and, where they differ from one group, the
  network's (:meth:`~LearningRule.network_groups`): :meth:`~LearningRule.param_groups` joins them,
  so every tensor that learns is stepped by one torch optimiser, each group with its own lr, weight
  decay or momentum (the pattern of nanoGPT's ``configure_optimizers``);
* **predicts** (:meth:`~LearningRule.scores`: argmax of the output by default);
* names its **feedback counterparts** (:meth:`~LearningRule.feedback_pairs`): the matrix backprop
  would use where the rule uses B, D or F, so :mod:`course_lib.alignment` measures any rule;
* states its **settings** (:meth:`~LearningRule.config`), which checkpoints record;
* keeps its **state** (:meth:`~LearningRule.state_dict`): its own matrices and the states of the
  random generators it draws from while training (:meth:`~LearningRule.generators`), so a run
  resumed from a checkpoint, or rolled back after a divergence, continues exactly.

Adding a rule is one module: subclass :class:`LearningRule` (or :class:`ErrorRule`), override what
differs. README, "Adding a learning rule", walks through it.

The credit-assignment mechanism shared by backprop, feedback alignment, Kolen-Pollack and node
perturbation (Chapter 1, "Backprop by hand"):

    e_L = dL/dh_L ⊙ f'(a_L)                         output error            (batch, n_L)
    e_l = (e_{l+1} Bᵀ_{l+1}) ⊙ f'(a_l)               error sent down by B    (batch, n_l)
    ΔW_l = e_lᵀ h_{l-1} / batch,  Δb_l = mean(e_l)   local outer product     (n_l, n_{l-1})

Backprop uses B_{l+1} = W_{l+1}ᵀ (weight transport); the other rules choose another B.
"""
import importlib
import inspect
import pkgutil
import weakref
from typing import NamedTuple

import torch
from torch.optim import optimizer as torch_optimizer

from ..network import MLP, ForwardPass


def output_error(net: MLP, fwd: ForwardPass, T: torch.Tensor) -> torch.Tensor:
    """e_L = dL/da_L per sample: the loss's derivative through the output nonlinearity."""
    a_L, h_L = fwd.a[-1], fwd.h[-1]
    return net.output_activation.error_through(net.loss.grad(h_L, T), a_L, h_L)      # (batch, n_L)


def propagate_errors(net: MLP, fwd: ForwardPass, e_L: torch.Tensor, feedback: list) -> list:
    """Errors of every layer, top error given. ``feedback[l]`` (shape (n_l, n_{l+1}), 0-based l)
    carries the error from layer l+1 down to layer l, in the place of W_{l+1}ᵀ."""
    errors = [e_L]
    for l in range(net.num_layers - 2, -1, -1):
        e_above = errors[0]                              # (batch, n_{l+1})
        errors.insert(0, fwd.error_through(net, l, e_above @ feedback[l].T))        # (batch, n_l)
    return errors


class Outer(NamedTuple):
    """An update ΔW = scale · leftᵀ right (n_l, n_{l-1}) kept as its two factors, left (batch, n_l) and
    right (batch, n_{l-1}), and its scale (1/batch for a batch mean), so that the training step adds the
    product straight into the optimiser's momentum buffer, scale included (:func:`sgd_step`:
    neither ΔW nor a scaled copy of ``left`` is written out and read back). Rules give one only while
    they step (``outer_product`` with ``factored=True``); elsewhere they give tensors."""
    left: torch.Tensor
    right: torch.Tensor
    scale: float = 1.0

    @property
    def T(self) -> "Outer":
        return Outer(self.right, self.left, self.scale)

    def tensor(self) -> torch.Tensor:
        left = self.left if self.scale == 1 else self.left * self.scale    # scaled on the small side
        return left.T @ self.right


def outer_product(left: torch.Tensor, right: torch.Tensor, factored: bool = False, scale: float = 1.0):
    """scale · leftᵀ right, (n_l, n_{l-1}) from (batch, n_l) and (batch, n_{l-1}): the tensor, or its
    factors (:class:`Outer`) for the training step."""
    update = Outer(left, right, scale)
    return update if factored else update.tensor()


def batch_mean_update(e: torch.Tensor, h_below: torch.Tensor, factored: bool = False, bias: bool = True) -> tuple:
    """(ΔW, Δb) of one layer from per-sample errors e (batch, n_l) and the activity below h_below
    (batch, n_{l-1}): ΔW = eᵀ h_below / batch (n_l, n_{l-1}; ``factored``: as its factors, the 1/batch
    riding in the product) and Δb = mean over the batch of e (n_l,; None with ``bias=False``)."""
    return outer_product(e, h_below, factored, scale=1 / len(e)), (e.mean(dim=0) if bias else None)


def outer_product_updates(fwd: ForwardPass, errors: list, factored: bool = False, biases: bool = True) -> dict:
    """{"W1": ΔW₁, "b1": Δb₁, ...} with ΔW_l = e_lᵀ h_{l-1} / batch and Δb_l = mean over the batch of e_l
    (``factored``: each ΔW_l as its factors, for the training step; ``biases=False``: no Δb_l)."""
    updates = {}
    for l, (e_l, h_below) in enumerate(zip(errors, fwd.h[:-1]), start=1):
        updates[f"W{l}"], updates[f"b{l}"] = batch_mean_update(e_l, h_below, factored, biases)
    return without_none(updates)


def without_none(updates: dict) -> dict:
    """``updates`` less the tensors that get none (a bias that does not learn)."""
    return {name: u for name, u in updates.items() if u is not None}


class SGD(torch.optim.SGD):
    """torch's SGD (``make_optimizer`` makes one) that also takes a rule's updates directly,
    {tensor: update} with an update a tensor or an :class:`Outer`, as :meth:`LearningRule.step` hands
    them over (:meth:`take`): the step that setting every ``.grad`` and stepping would take
    (:func:`sgd_step`), without the ``.grad`` tensors. Its ``step()`` is torch's."""

    def step(self, closure=None, updates: dict | None = None):
        if updates is None:
            return super().step(closure)
        sgd_step(self, updates)

    def take(self, updates: dict):
        """``step(updates=updates)`` without torch's wrapper around ``step`` (a profiler label and the
        step hooks: 4–5 % of a 784-1024-10 backprop step on one CPU thread, ``benchmarks/README.md``,
        step_speed). With step hooks registered it goes through ``step``, so that they run;
        learning-rate schedulers are told a step was taken, as torch's wrapper tells them."""
        if self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks or any(
                getattr(torch_optimizer, name, None) for name in GLOBAL_STEP_HOOKS):
            return self.step(updates=updates)
        sgd_step(self, updates)
        self._opt_called = True             # the flag torch's LR schedulers read (lr_scheduler.py)


GLOBAL_STEP_HOOKS = ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")   # of torch_optimizer


def takes_updates(optimizer) -> bool:
    """True for course_lib's :class:`SGD` as plain SGD (with or without momentum and weight decay,
    no Nesterov, no dampening), whose step :func:`sgd_step` computes from the updates themselves."""
    return isinstance(optimizer, SGD) and all(
        not g["nesterov"] and not g["dampening"] and not g["maximize"] for g in optimizer.param_groups)


def add_into(t: torch.Tensor, update, alpha: float = 1.0, beta: float = 1.0):
    """t ← beta·t + alpha·ΔW in place, ΔW a tensor or an :class:`Outer` (added by its product, its
    scale in the product's alpha: ΔW is never written out)."""
    if isinstance(update, Outer):
        t.addmm_(update.left.T, update.right, beta=beta, alpha=alpha * update.scale)
    else:
        (t if beta == 1 else t.mul_(beta)).add_(update, alpha=alpha)


@torch.no_grad()
def sgd_step(optimizer, updates: dict):
    """torch's SGD step, computed here, for the tensors of ``updates`` ({tensor: update}, an update a
    tensor or an :class:`Outer`): v ← m v + ΔW + λ W, W ← W - lr v (v = ΔW + λ W at the first step, as
    torch starts it; without momentum W ← W(1 - lr λ) - lr ΔW directly, the decay in the same
    operation). The same step as ``optimizer.step()`` up to rounding, with one pass over W fewer."""
    for group in optimizer.param_groups:
        lr, m, decay = group["lr"], group["momentum"], group["weight_decay"]
        for W in group["params"]:
            update = updates.get(W)
            if update is None:
                continue
            if not m:
                add_into(W, update, alpha=-lr, beta=1 - lr * decay)
                continue
            state = optimizer.state[W]
            v = state.get("momentum_buffer")
            if v is None:
                v = state["momentum_buffer"] = update.tensor() if isinstance(update, Outer) else update.clone()
            else:
                add_into(v, update, beta=m)
            if decay:
                v.add_(W, alpha=decay)
            W.add_(v, alpha=-lr)


def transposed_forward_weights(net: MLP) -> dict:
    """{"W2": W₂ᵀ, ...}: the matrices backprop sends the error through, keyed by the forward weight."""
    return {f"W{l}": W.T for l, W in enumerate(net.W[1:], start=2)}


def laid_out_like(update, t: torch.Tensor):
    """``update`` with the memory layout of ``t`` (copied only when it differs, e.g. a transposed
    view): torch's fused SGD kernel reads an update as flat memory in its tensor's layout."""
    if update is None or update.stride() == t.stride():
        return update
    return torch.empty_like(t).copy_(update)


GENERATOR = "generator"   # prefix of the generator states in a rule's state_dict


def setting_value(value):
    """A rule setting as checkpoints record it: numbers and strings as they are, anything else by name."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [setting_value(v) for v in value]
    return getattr(value, "__qualname__", type(value).__name__)


# What each random stream of a rule draws, and the offset from the run's seed its generator starts
# at. The offsets are part of every recorded run: changing one changes the numbers each seed gives
# (and so every checkpoint's fingerprint and every committed result).
SEED_OFFSETS = {
    "feedback": 0,        # FA, KP and weight mirroring's initial B
    "projection": 0,      # PEPITA's F, and MirroredPEPITA's initial B_l
    "dropout": 0,         # PEPITA's dropout masks
    "perturbation": 0,    # weight and node perturbation's noise
    "negatives": 0,       # Forward-Forward's negative labels
    "mirror_noise": 1,    # weight mirroring's noise, apart from the feedback's draw
}


def seeded_generator(seed: int, stream: str, device=None) -> torch.Generator:
    """The generator of a rule's random ``stream`` (a key of :data:`SEED_OFFSETS`) for a run with
    ``seed``, on ``device`` (the CPU by default): the one place rules derive their generators."""
    return torch.Generator(device=device).manual_seed(seed + SEED_OFFSETS[stream])


def check_keep(keep: float):
    if not 0 < keep <= 1:
        raise ValueError(f"keep, the fraction of hidden units dropout keeps, must be in (0, 1], got {keep}.")


def dropout_masks(net: MLP, batch: int, keep: float, generator: torch.Generator):
    """One inverted-dropout mask (batch, n_l) per hidden layer, kept units scaled by 1/keep, drawn
    from ``generator``; None when ``keep`` is 1 (no dropout)."""
    if keep == 1:
        return None
    W = net.W[0]                                      # (u < keep) as 1.0 or 0.0, then / keep, in place
    return [torch.rand(batch, n, generator=generator, device=W.device).lt_(keep).to(W.dtype).div_(keep)
            for n in net.sizes[1:-1]]


class LearningRule:
    """Base class of every rule; the module docstring states the contract.

    Subclasses override :meth:`updates`, and where they differ :meth:`prepare` / :meth:`owned` /
    :meth:`learned` (matrices the rule keeps), :meth:`learned_options`, :meth:`network_groups`,
    :meth:`scores`, :meth:`feedback_pairs`, :meth:`check_compatible`. Settings are the ``__init__``
    arguments, kept as attributes of the same name (``config`` and ``repr`` read them).
    """
    name = "rule"
    unrecorded = ()  # __init__ arguments that do not change what the rule computes (a learner's fn)
    stepping = False  # True while step() asks for the updates: they may then come as factors (Outer)

    # ---- binding and the tensors a rule owns
    def bind(self, net: MLP) -> "LearningRule":
        """Bind the rule to ``net``: :meth:`prepare` creates what the rule owns for it, once per
        network (binding again to the same network returns at once). Returns the rule, so
        ``rule = FeedbackAlignment(seed=0).bind(net)`` reads well."""
        bound = getattr(self, "_bound_to", None)
        if bound is None or bound() is not net:
            self.prepare(net)
            self._bound_to = weakref.ref(net)
        return self

    def prepare(self, net: MLP):
        """Create the matrices and generators the rule owns for ``net`` (on its device) and check
        that the rule can train it; keep what exists when it fits. Called by :meth:`bind`."""

    def unbound_error(self) -> RuntimeError:
        """What an unbound rule says when a step needs what binding creates."""
        return RuntimeError(f"This {self.name} rule is not bound to a network yet, so its own matrices do not "
                            f"exist: call rule.bind(net) first (train() and make_optimizer() do it for you).")

    def owned(self) -> dict:
        """{name: tensor} of every matrix the rule keeps (fixed or learned): what checkpoints save."""
        return {}

    def learned(self) -> dict:
        """{name: tensor} of the rule's own tensors that the optimiser steps (e.g. KP's "B2")."""
        return {}

    def learned_options(self, lr: float, weight_decay: float) -> dict:
        """The optimiser settings of the learned tensors' group: by default the network's lr and decay."""
        return {"lr": lr, "weight_decay": weight_decay}

    def network_groups(self, net: MLP, lr: float, weight_decay: float) -> list:
        """The optimiser groups of the network's parameters: by default one, at lr and weight_decay."""
        return [{"params": list(net.parameters()), "lr": lr, "weight_decay": weight_decay}]

    def param_groups(self, net: MLP, lr: float, weight_decay: float = 0.0) -> list:
        """Optimiser parameter groups: the network's (:meth:`network_groups`), then one group of the
        rule's learned tensors (:meth:`learned`) with :meth:`learned_options`, where it has any."""
        learned = list(self.learned().values())
        extra = [{"params": learned, **self.learned_options(lr, weight_decay)}] if learned else []
        return self.network_groups(net, lr, weight_decay) + extra

    # ---- learning
    def updates(self, net: MLP, X: torch.Tensor, y: torch.Tensor):
        """Return (updates, loss): {name: batch-mean update} for the network's parameters (and the
        rule's learned tensors), and the batch loss as a 0-dim tensor."""
        raise NotImplementedError

    def step(self, net: MLP, X, y, optimizer) -> torch.Tensor:
        """One learning step on a batch of the bound rule: course_lib's plain SGD (``make_optimizer``'s)
        takes the updates directly, an outer product as its factors (:class:`SGD`); any other
        optimiser gets every update as its tensor's ``.grad`` and steps. Returns the batch loss (a 0-dim
        tensor, not synced)."""
        # course_lib's own updates may come as factors (Outer), which the step fuses; a subclass defined
        # elsewhere that overrides updates (a learner's, a test's) gets tensors, as it expects
        self.stepping = type(self).updates.__module__.startswith(__package__)
        try:
            updates, loss = self.updates(net, X, y)
        finally:
            self.stepping = False
        tensors = {**net.named_parameters(), **self.learned()}
        self.check_updates(updates, tensors)
        if takes_updates(optimizer):
            optimizer.take({t: updates[name] for name, t in tensors.items() if name in updates})
        else:
            for name, t in tensors.items():
                update = updates.get(name)
                t.grad = laid_out_like(update.tensor() if isinstance(update, Outer) else update, t)
            optimizer.step()
        return loss

    def check_updates(self, updates: dict, tensors: dict):
        """Every update names a tensor that learns ({name: tensor}) and, as a tensor, has its shape."""
        unknown = set(updates) - set(tensors)
        if unknown:
            raise KeyError(f"{self.name} returned updates for {sorted(unknown)}, which are neither "
                           f"parameters of the network nor learned by the rule: {sorted(tensors)}.")
        for name, update in updates.items():
            if update is None or isinstance(update, Outer):                  # None: no update this step
                continue
            if not isinstance(update, torch.Tensor):
                raise TypeError(f"{self.name} returned a {type(update).__name__} as the update for {name}: "
                                f"an update is a torch tensor of {name}'s shape {tuple(tensors[name].shape)}.")
            if update.shape != tensors[name].shape:
                transposed = update.dim() == 2 and update.shape == tensors[name].shape[::-1]
                raise ValueError(f"{self.name} returned an update of shape {tuple(update.shape)} for {name}, "
                                 f"which has shape {tuple(tensors[name].shape)}: an update has its tensor's shape"
                                 + (" (this one is transposed: ΔW_l = e_lᵀ h_{l-1} is (n_l, n_{l-1}))." if transposed else "."))

    # ---- predicting and evaluating
    def scores(self, net: MLP, X) -> torch.Tensor:
        """(batch, n_out) scores; the prediction is their argmax. Default: the network's output."""
        return net(X)

    def predict(self, net: MLP, X) -> torch.Tensor:
        """Predicted labels (batch,)."""
        return self.scores(net, X).argmax(dim=1)

    def score_loss(self, net: MLP, scores, y) -> torch.Tensor:
        """Per-sample loss (batch,) of the scores: the network's loss by default."""
        return net.loss.per_sample(scores, net.targets(y))

    networks = (MLP,)                          # the network classes the rule can train

    def check_network(self, net):
        """Fail in one line when the rule cannot train this kind of network, naming the rules that can."""
        if not isinstance(net, self.networks):
            able = sorted(rule.__name__ for rule in all_rules() if isinstance(net, rule.networks))
            raise TypeError(f"{type(self).__name__} trains {' or '.join(c.__name__ for c in self.networks)} "
                            f"networks, not {type(net).__name__}. Rules that can train it: "
                            f"{', '.join(able) or 'none in course_lib'}.")

    def check_compatible(self, net: MLP, data):
        """Fail early, in learner terms, when the network does not fit the data."""
        if data.n_features != net.sizes[0]:
            raise ValueError(f"The data has {data.n_features} features per sample but the network's "
                             f"input layer has {net.sizes[0]} units: build it as MLP([{data.n_features}, ...]).")
        if data.y_train.dim() == 1 and data.n_classes != net.sizes[-1]:
            raise ValueError(f"The data has {data.n_classes} classes but the network has {net.sizes[-1]} "
                             f"outputs: make the last layer {data.n_classes} units wide.")

    # ---- what the alignment measures compare
    def feedback_pairs(self, net: MLP) -> dict:
        """{name: (feedback, counterpart)}: each matrix the rule sends signals through, with the one
        backprop would use in its place (same shape). Named after the forward weight it stands in
        for ("W2": B₂ vs W₂ᵀ) or after the rule's matrix ("F"). Empty when nothing travels back."""
        return {}

    # ---- settings and state
    def config(self) -> dict:
        """{"rule": class name, setting: value, ...}: the ``__init__`` arguments (recorded in checkpoints)."""
        settable = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        names = [name for name, p in inspect.signature(type(self).__init__).parameters.items()
                 if name != "self" and p.kind in settable]
        settings = {p: setting_value(getattr(self, p)) for p in names if p not in self.unrecorded}
        return {"rule": type(self).__qualname__, **settings}

    def generators(self) -> dict:
        """{name: torch.Generator} the rule draws its randomness from while it trains (dropout
        masks, noise, negative labels): by default every generator held as an attribute. Their
        states belong to the rule's state, so a resumed run draws what the uninterrupted one would."""
        return {name: g for name, g in vars(self).items() if isinstance(g, torch.Generator)}

    def state_dict(self) -> dict:
        """The owned tensors, and the state of each generator under "generator <name>"."""
        state = {name: t.detach().clone() for name, t in self.owned().items()}
        state.update({f"{GENERATOR} {name}": g.get_state() for name, g in self.generators().items()})
        return state

    @torch.no_grad()
    def load_state_dict(self, state: dict):
        """Copy saved tensors into the bound rule's own (in place: the optimiser keeps its references)
        and set its generators to their saved states (a state saved before generators were saved
        leaves them as they are)."""
        owned = self.owned()
        tensors = {name: t for name, t in state.items() if not name.startswith(GENERATOR)}
        if set(tensors) != set(owned):
            raise ValueError(f"The saved {self.name} state has {sorted(tensors)}, this rule owns {sorted(owned)}.")
        for name, t in owned.items():
            t.copy_(tensors[name])
        for name, g in self.generators().items():
            if f"{GENERATOR} {name}" in state:
                g.set_state(state[f"{GENERATOR} {name}"].cpu())

    def __repr__(self):
        settings = {k: v for k, v in self.config().items() if k != "rule"}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in settings.items())})"


class ErrorRule(LearningRule):
    """A rule that assigns credit through per-sample errors e_l (batch, n_l) of every layer, then
    updates each synapse by the local outer product ΔW_l = e_lᵀ h_{l-1} / batch (module docstring).
    Subclasses define :meth:`errors`; backprop, FA, DFA, sign symmetry, KP and node perturbation do.

    Two options of the published recipes, for the rules that take them as settings (backprop and
    FA, as the PEPITA paper's code trains its baselines, Chapter 5): ``keep`` < 1 trains with
    dropout, each hidden unit kept with probability ``keep`` (a dropped unit neither sends activity
    up nor passes error down: e_l = (e_{l+1} Bᵀ) ⊙ f'(a_l) ⊙ m_l); ``biases=False`` leaves every bias
    at zero. Predictions use the whole network."""
    keep, biases, mask_generator = 1.0, True, None

    def prepare(self, net: MLP):
        if self.keep < 1 and self.mask_generator is None:
            self.mask_generator = seeded_generator(self.seed, "dropout", net.W[0].device)

    def errors(self, net: MLP, fwd: ForwardPass, T: torch.Tensor) -> list:
        """[e_1, ..., e_L]: the error of every layer, (batch, n_l) each."""
        raise NotImplementedError

    def updates(self, net, X, y):
        if self.keep < 1 and self.mask_generator is None:
            raise self.unbound_error()
        fwd = net.forward(X, masks=dropout_masks(net, len(X), self.keep, self.mask_generator))
        T = net.targets(y)
        updates = outer_product_updates(fwd, self.errors(net, fwd, T), self.stepping, self.biases)  # biases=False: b stays 0
        return updates, net.loss(fwd.output, T)

    def config(self) -> dict:
        """The settings, ``keep`` and ``biases`` only where they change something (dropout, no
        biases): they came after many runs were recorded, whose checkpoints keep their fingerprints."""
        config = super().config()
        if config.get("keep") == 1:
            del config["keep"]
        if config.get("biases") is True:
            del config["biases"]
        return config

    @torch.no_grad()
    def per_sample_moments(self, net: MLP, X, y, layer: int = 0):
        """Mean and mean square over the samples of X of the per-sample estimates of layer
        ``layer``'s [W | b] (n_l, n_{l-1} + 1) (Chapter 2, "Gradient SNR"). Each is an outer product
        g_n = u_n v_nᵀ of the error u_n and v_n = [h_{l-1,n}, 1], so mean = Uᵀ V / N and mean square
        = (U²)ᵀ (V²) / N: two matrix products, no loop over samples."""
        fwd = net.forward(X)
        U = self.errors(net, fwd, net.targets(y))[layer]                           # (N, n_l)
        h = fwd.h[layer]
        V = torch.cat([h, torch.ones(len(h), 1, device=h.device, dtype=h.dtype)], dim=1)  # (N, n_{l-1} + 1)
        return U.T @ V / len(X), (U ** 2).T @ (V ** 2) / len(X)


def all_rules() -> list:
    """Every concrete LearningRule class: course_lib's rule modules, and any defined elsewhere."""
    for module in pkgutil.iter_modules(importlib.import_module(__package__).__path__):
        importlib.import_module(f"{__package__}.{module.name}")
    found, todo = [], [LearningRule]
    while todo:
        rule = todo.pop()
        todo.extend(rule.__subclasses__())
        if rule.__module__ != __name__:                                    # not the abstract bases here
            found.append(rule)
    return found
