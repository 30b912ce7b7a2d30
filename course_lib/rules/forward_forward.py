"""Forward-Forward (Chapter 7): every layer learns from two forward passes; nothing travels back.

Hinton's Forward-Forward algorithm (Hinton 2022, arXiv 2212.13345) for classification. *Positive* data is an
image with its true label written into its first ``n_classes`` pixels (one-hot); *negative* data is
the same image with a wrong label, drawn uniformly among the others (never the true one). Every
layer sees its input only after **length normalisation**, so the length of the activity below (its
goodness) cannot be passed up and each layer must find its own evidence:

    x̂ = x / (rms(x) + ε),   rms(x) = √(mean_j x_j²)           (batch, n_{l-1})  row by row
    a_l = x̂ W_lᵀ + b_l,  h_l = relu(a_l)                        (batch, n_l)
    G_l = mean_i h_{l,i}²                                         (batch,)          the goodness

Each layer lowers its own loss, the cross-entropy of the logistic "is this sample positive?",
p = σ(G − θ), over the N positive and N negative samples of a batch:

    L_l = ½ [mean_n softplus(θ − G⁺_n) + mean_n softplus(G⁻_n − θ)]

With ``goodness="sum"`` (Hinton's sum of squares, as in loeweX's code) G_l = Σ_i h_{l,i}² and the
layer's threshold is θ·n_l: the logit Σh² − θ n_l = n_l (mean h² − θ) is the mean's, n_l times
sharper. For ReLU units ∂G/∂a = (2/n_l) h (mean) or 2h (sum), so the gradient is a local outer
product of each layer's own input and activity, Hebbian on positive data and anti-Hebbian on
negative data (written for the mean):

    e⁺ = −σ(θ − G⁺) (2/n_l) h⁺ / 2N,   e⁻ = σ(G⁻ − θ) (2/n_l) h⁻ / 2N   (batch, n_l)
    ΔW_l = e⁺ᵀ x̂⁺ + e⁻ᵀ x̂⁻,   Δb_l = Σ_n (e⁺_n + e⁻_n)

**Peer normalisation** (loeweX's code, ``peer_normalisation`` = c > 0) keeps every unit in use.
Each layer keeps a running mean of each unit's activity on positive data, m ← 0.9 m + 0.1 mean_n h⁺,
and adds c · mean_j (m_j − m̄)² to its loss. Its gradient reaches every unit's pre-activation as if
the ReLU had slope 1 (the source's "full gradient" ReLU), so a silent unit is pulled back up:

    e⁺_peer = c (2/n_l) (m − m̄) · 0.1/N     (every positive sample, every unit)

**Prediction.** (a) by goodness: run the image once with each label embedded and pick the label
whose accumulated goodness (over ``score_layers``) is highest: ``n_classes`` forward passes;
(b) by a softmax readout: one pass with a *neutral* label (1/n_classes in every label pixel), the
normalised activities of ``readout_layers`` concatenated into z, logits z Rᵀ. R is owned by the
rule and learned by the shared optimiser in its own parameter group (``readout_lr``,
``readout_weight_decay``), from the cross-entropy of its logits; it sends nothing down.
"""
import torch
import torch.nn.functional as nnf

from ..losses import as_targets
from .base import LearningRule, outer_product, seeded_generator

EPS = 1e-8
NEUTRAL = "neutral"


# ---------------------------------------------------------------- the pieces (Chapter 7's exercises)

def check_images(X, n_classes: int):
    """Images must be flattened rows with room for the label pixels."""
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"Forward-Forward takes a torch tensor of images, got {type(X).__name__}.")
    if X.dim() != 2:
        raise ValueError(f"Images of shape {tuple(X.shape)}: Forward-Forward takes flattened rows "
                         f"(batch, pixels); flatten them with X.reshape(len(X), -1).")
    if X.shape[1] <= n_classes:
        raise ValueError(f"Rows of {X.shape[1]} values leave no room for {n_classes} label pixels.")


def check_labels(y, n_classes: int):
    """Labels must be integers in 0 … n_classes-1 (one per row)."""
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.is_floating_point() or y.is_complex():
        raise ValueError(f"Labels must be a 1-D tensor of integer class indices, got "
                         f"{getattr(y, 'dtype', type(y).__name__)} of shape {tuple(getattr(y, 'shape', ()))}.")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"Labels must lie in 0..{n_classes - 1}, got values from {int(y.min())} "
                         f"to {int(y.max())}.")


def embed_label(X, y, n_classes: int = 10) -> torch.Tensor:
    """X (batch, pixels) with label y (batch,) written one-hot into its first n_classes pixels:
    those pixels are all 0 except pixel y, which is 1. ``y`` may also be one int for every row,
    or ``"neutral"`` (every label pixel 1/n_classes). Returns a new tensor."""
    check_images(X, n_classes)
    out = X.clone()
    if isinstance(y, str) and y == NEUTRAL:
        out[:, :n_classes] = 1.0 / n_classes
        return out
    if isinstance(y, int):
        y = torch.full((len(X),), y, dtype=torch.long, device=X.device)
    check_labels(y, n_classes)
    if len(y) != len(X):
        raise ValueError(f"{len(X)} images but {len(y)} labels.")
    return write_labels_(out, y, n_classes)


def write_labels_(X, y, n_classes: int) -> torch.Tensor:
    """Write labels y (batch,) one-hot into the first n_classes pixels of X, in place; unchecked
    (the training step's labels were checked once, before training). Returns X."""
    label_pixels = X[:, :n_classes]
    label_pixels.zero_().scatter_(1, y.long()[:, None], 1.0)
    return X


def negative_labels(y, n_classes: int, generator: torch.Generator) -> torch.Tensor:
    """A wrong label for every sample, uniform over the n_classes - 1 others: y + k mod n_classes
    with k uniform in 1 … n_classes-1, so never the true label. (Shuffling the labels instead,
    ``y[randperm]``, gives the true label back for about 1 sample in n_classes.)"""
    shift = torch.randint(1, n_classes, y.shape, generator=generator, device=generator.device)
    return (y + shift.to(y.device)) % n_classes


def goodness(h) -> torch.Tensor:
    """G = mean over units of h²: (batch, n) -> (batch,)."""
    return h.pow(2).mean(dim=1)


def sum_of_squares(h) -> torch.Tensor:
    """G = Σ over units of h² (Hinton's goodness): (batch, n) -> (batch,)."""
    return h.pow(2).sum(dim=1)


GOODNESS = {"mean": goodness, "sum": sum_of_squares}


def layer_loss(g_pos, g_neg, threshold: float) -> torch.Tensor:
    """½ [mean softplus(θ − G⁺) + mean softplus(G⁻ − θ)]: the logistic loss of σ(G − θ), positives
    labelled 1 and negatives 0, averaged over all samples. softplus, unlike log(1 + exp(·)),
    never overflows."""
    return 0.5 * (nnf.softplus(threshold - g_pos).mean() + nnf.softplus(g_neg - threshold).mean())


def normalise(x, eps: float = EPS) -> torch.Tensor:
    """Each row divided by its root mean square (plus ε): length √n, direction kept.
    A silent row (all zeros) stays zero instead of becoming NaN."""
    return x / (x.pow(2).mean(dim=1, keepdim=True).sqrt() + eps)


# ---------------------------------------------------------------- the network, run the FF way

def layer_forward(W, b, x, eps: float = EPS):
    """One FF layer: (normalised input x̂, activity h = relu(x̂ Wᵀ + b))."""
    x_hat = normalise(x, eps)
    return x_hat, torch.relu(torch.addmm(b, x_hat, W.T))


def ff_forward(net, X_embedded, num_layers: int | None = None, eps: float = EPS) -> list:
    """[(x̂_1, h_1), (x̂_2, h_2), ...]: every layer's normalised input and activity, on data
    that already holds its label. Stops after ``num_layers`` layers (default: all)."""
    out, x = [], X_embedded
    for W, b in list(zip(net.W, net.b))[:num_layers]:
        x_hat, x = layer_forward(W, b, x, eps)
        out.append((x_hat, x))
    return out


@torch.no_grad()
def goodness_per_label(net, X, n_classes: int = 10, layers=None, eps: float = EPS, kind: str = "mean") -> torch.Tensor:
    """(batch, n_classes): the goodness (``kind`` "mean" or "sum" of squares) accumulated over
    ``layers`` (1-based; default all) with each label embedded in turn. Its argmax over labels is
    the prediction by goodness."""
    layers = list(layers) if layers is not None else list(range(1, net.num_layers + 1))
    table = []
    for label in range(n_classes):
        acts = ff_forward(net, embed_label(X, label, n_classes), max(layers), eps)
        table.append(sum(GOODNESS[kind](acts[l - 1][1]) for l in layers))
    return torch.stack(table, dim=1)


def all_but_first(num_layers: int) -> list:
    """All layers but the first (the readout's default, as in loeweX's code), or the only one."""
    return list(range(2, num_layers + 1)) if num_layers > 1 else [1]


# ---------------------------------------------------------------- the rule

class ForwardForward(LearningRule):
    """Forward-Forward training of an ``MLP(sizes, activation="relu", output="relu")``.

    Settings: ``threshold`` θ (per unit: the layer's is θ·n_l with ``goodness="sum"``);
    ``goodness`` "mean" (the chapter's) or "sum" of squares; ``peer_normalisation`` c (0: none);
    ``n_classes`` label pixels; ``layers`` that learn (1-based; None:
    all, at once; ``[1]`` then ``[2]`` trains greedily, one train() call per layer); ``predictor``
    "goodness" or "softmax" (which predictor ``scores`` uses, see the module docstring);
    ``score_layers`` (None: all; Hinton leaves out the first of a deeper net) and ``readout_layers``
    (None: all but the first); ``readout`` (learn the
    softmax readout R); ``readout_lr`` / ``readout_weight_decay`` (its optimiser group); ``eps``;
    ``seed`` (the negative labels' generator).

    ``score_loss`` (the validation loss in histories) is the cross-entropy of the scores taken
    as logits: the readout's own loss for "softmax", the goodness table's softmax for "goodness".
    """
    name = "Forward-Forward"

    def __init__(self, threshold: float = 2.0, n_classes: int = 10, layers=None, predictor: str = "goodness",
                 score_layers=None, readout: bool = False, readout_layers=None, readout_lr: float = 0.01,
                 readout_weight_decay: float = 0.0, goodness: str = "mean", peer_normalisation: float = 0.0,
                 eps: float = EPS, seed: int = 0):
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold}: goodness is a mean of squares, "
                             f"never negative, so every positive sample would already count as good.")
        if goodness not in GOODNESS:
            raise ValueError(f"goodness is 'mean' or 'sum' (of the squared activities), got {goodness!r}.")
        if not peer_normalisation >= 0:
            raise ValueError(f"peer_normalisation is a non-negative weight (0: none), got {peer_normalisation}.")
        if predictor not in ("goodness", "softmax"):
            raise ValueError(f"predictor is 'goodness' or 'softmax', got {predictor!r}.")
        if predictor == "softmax" and not readout:
            raise ValueError("predictor='softmax' needs the readout: ForwardForward(readout=True, predictor='softmax').")
        self.threshold, self.n_classes, self.predictor, self.readout = threshold, n_classes, predictor, readout
        self.layers = None if layers is None else sorted(int(l) for l in layers)
        self.score_layers = None if score_layers is None else sorted(int(l) for l in score_layers)
        self.readout_layers = None if readout_layers is None else sorted(int(l) for l in readout_layers)
        self.readout_lr, self.readout_weight_decay, self.eps, self.seed = readout_lr, readout_weight_decay, eps, seed
        self.goodness, self.peer_normalisation = goodness, peer_normalisation
        self.R, self.mean_activity, self.generator = None, [], None

    # ---- binding: the readout R (owned, learned) and the negative labels' generator
    def prepare(self, net):
        for name, chosen in (("layers", self.layers), ("score_layers", self.score_layers),
                             ("readout_layers", self.readout_layers)):
            if chosen is not None and not all(1 <= l <= net.num_layers for l in chosen):
                raise ValueError(f"{name}={chosen}, but the network has layers 1..{net.num_layers}.")
        width = sum(net.sizes[l] for l in self.readout_layers_of(net))
        if self.R is None or self.R.shape != (self.n_classes, width):
            self.R = torch.zeros(self.n_classes, width, device=net.device, dtype=net.dtype)
        if self.peer_normalisation and [len(m) for m in self.mean_activity] != net.sizes[1:]:
            self.mean_activity = [torch.zeros(n, device=net.device, dtype=net.dtype) for n in net.sizes[1:]]
        self.generator = seeded_generator(self.seed, "negatives", net.device)

    def learned(self):
        """The readout R, stepped by the optimiser."""
        return {"R": self.R} if self.readout and self.R is not None else {}

    def owned(self):
        """R and, with peer normalisation, each layer's running mean activity (saved in checkpoints)."""
        return self.learned() | {f"mean_activity{l}": m for l, m in enumerate(self.mean_activity, start=1)}

    def learning_layers(self, net) -> list:
        return self.layers if self.layers is not None else list(range(1, net.num_layers + 1))

    def score_layers_of(self, net) -> list:
        return self.score_layers if self.score_layers is not None else list(range(1, net.num_layers + 1))

    def readout_layers_of(self, net) -> list:
        return self.readout_layers if self.readout_layers is not None else all_but_first(net.num_layers)

    def learned_options(self, lr, weight_decay):
        """The readout's own lr and weight decay."""
        return {"lr": self.readout_lr, "weight_decay": self.readout_weight_decay}

    # ---- learning
    @torch.no_grad()
    def updates(self, net, X, y):
        if self.generator is None:
            raise self.unbound_error()
        n, top = len(X), max(self.learning_layers(net))
        y_neg = negative_labels(y, self.n_classes, self.generator)
        # the positive and the negative pass as one batch of 2N rows, the N positive rows first
        both = ff_forward(net, write_labels_(torch.cat([X, X]), torch.cat([y, y_neg]), self.n_classes), top, self.eps)
        updates, loss = {}, torch.zeros((), device=X.device, dtype=X.dtype)
        for l in self.learning_layers(net):
            x_hat, h = both[l - 1]                                                  # (2N, n_{l-1}), (2N, n_l)
            width = h.shape[1]
            units = width if self.goodness == "sum" else 1                          # G = units · mean h²
            theta = self.threshold * units
            g = GOODNESS[self.goodness](h)                                          # (2N,)
            g_pos, g_neg = g[:n], g[n:]
            scale = 2.0 * units / width / (2 * n)                                   # ∂G/∂h = 2h·units/n_l, ½·mean
            slope = torch.cat([-torch.sigmoid(theta - g_pos), torch.sigmoid(g_neg - theta)])   # (2N,)
            e = h * (slope * scale)[:, None]                                        # e⁺ rows, then e⁻: (2N, n_l)
            loss += layer_loss(g_pos, g_neg, theta)
            if self.peer_normalisation:
                e_peer, peer_loss = self.peer_term(l, h[:n])
                e[:n] += e_peer
                loss += peer_loss
            updates[f"W{l}"] = outer_product(e, x_hat, self.stepping)               # e⁺ᵀ x̂⁺ + e⁻ᵀ x̂⁻: (n_l, n_{l-1})
            updates[f"b{l}"] = e.sum(dim=0)                                         # (n_l,)
        if self.readout:
            logits, z = self.readout_logits(net, X, return_features=True)
            p = torch.softmax(logits, dim=1)
            updates["R"] = outer_product((p - as_targets(y, self.n_classes)) / n, z, self.stepping)  # (n_classes, width)
            loss += nnf.cross_entropy(logits, y)
        return updates, loss

    def peer_term(self, l: int, h_pos, momentum: float = 0.9):
        """Peer normalisation of layer l (module docstring): updates the running mean m of its units'
        activity on the positive samples h_pos (N, n_l) and returns (the error it adds to every
        positive sample's pre-activation (N, n_l), its loss c · mean_j (m_j − m̄)²)."""
        m = self.mean_activity[l - 1]
        m.mul_(momentum).add_(h_pos.mean(dim=0), alpha=1 - momentum)                # (n_l,)
        spread = m - m.mean()
        c, (N, width) = self.peer_normalisation, h_pos.shape
        e_peer = (c * 2 / width * (1 - momentum) / N) * spread                      # (n_l,), the same for every sample
        return e_peer.expand(N, width), c * spread.pow(2).mean()

    # ---- predicting
    @torch.no_grad()
    def readout_logits(self, net, X, return_features=False):
        """Logits of the softmax readout from one pass with the neutral label: z Rᵀ, where z joins
        the normalised activities of the readout layers."""
        if self.R is None:
            raise self.unbound_error()
        layers = self.readout_layers_of(net)
        acts = ff_forward(net, embed_label(X, NEUTRAL, self.n_classes), max(layers), self.eps)
        z = torch.cat([normalise(acts[l - 1][1], self.eps) for l in layers], dim=1)  # (batch, width)
        logits = z @ self.R.T
        return (logits, z) if return_features else logits

    @torch.no_grad()
    def scores(self, net, X):
        check_images(X, self.n_classes)
        if X.shape[1] != net.sizes[0]:
            raise ValueError(f"Images of {X.shape[1]} pixels but the network's input layer has {net.sizes[0]}.")
        if self.predictor == "softmax":
            return self.readout_logits(net, X)
        return goodness_per_label(net, X, self.n_classes, self.score_layers_of(net), self.eps, self.goodness)

    def score_loss(self, net, scores, y):
        return nnf.cross_entropy(scores, y, reduction="none")

    # ---- fitting the network and the data
    def check_compatible(self, net, data):
        if data.y_train.dim() != 1:
            raise ValueError("Forward-Forward classifies: the data needs integer labels, one per sample.")
        if data.n_classes != self.n_classes:
            raise ValueError(f"The data has {data.n_classes} classes, the rule embeds {self.n_classes} labels: "
                             f"use ForwardForward(n_classes={data.n_classes}).")
        if data.n_features != net.sizes[0]:
            raise ValueError(f"The data has {data.n_features} features per sample but the network's input layer "
                             f"has {net.sizes[0]} units: build it as MLP([{data.n_features}, ...]).")
        if net.activation.name != "relu" or net.output_activation.name != "relu":
            raise ValueError(f"Forward-Forward's layers are all ReLU layers (goodness of every layer, no output "
                             f"layer): build MLP(sizes, activation='relu', output='relu'); got {net}.")
        self.check_threshold(net, data.X_train[:256], data.y_train[:256])

    @torch.no_grad()
    def check_threshold(self, net, X, y):
        """Fail in one line when the mean squared activity of every sample of a learning layer is far
        from the threshold per unit at the start: then σ(G − θ) is saturated, positives and negatives
        cannot be told apart, and the loss is stuck."""
        acts = ff_forward(net, embed_label(X, y, self.n_classes), max(self.learning_layers(net)), self.eps)
        for l in self.learning_layers(net):
            g = goodness(acts[l - 1][1])
            if bool(((g - self.threshold).abs() > 20).all()):
                raise ValueError(f"threshold={self.threshold:g} is far from the goodness of layer {l} at the start "
                                 f"(about {float(g.median()):.3g}): σ(G − θ) is saturated for every sample, so the loss "
                                 f"is stuck; choose a threshold of the order of the goodness.")
