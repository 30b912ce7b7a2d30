"""The convolutional variant of PEPITA (Chapter 5): with one position it is the FC rule, its kernel
update against a slow per-position loop, batch averaging done once, dropout with one mask for both
passes, learning and checkpoints through train(), and its messages on bad input."""
import pytest
import torch

from course_lib.conv_network import ConvNet
from course_lib.data import load
from course_lib.network import MLP
from course_lib.rules import Backprop
from course_lib.rules.conv_pepita import ConvPEPITA
from course_lib.rules.pepita import PEPITA
from course_lib.train import train


def conv_case(image_shape=(2, 6, 6), channels=3, kernel_size=3, pool=2, n_out=4, batch=5, seed=0):
    net = ConvNet(image_shape, channels, kernel_size, pool, n_out, seed=seed, device="cpu", dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 1)
    net.b[0].copy_(0.3 + 0.1 * torch.rand(channels, generator=g, dtype=torch.float64))   # few ReLU zeros: few ties
    net.b[1].normal_(0, 0.3, generator=g)
    X = torch.rand(batch, net.sizes[0], generator=g, dtype=torch.float64)
    y = torch.randint(n_out, (batch,), generator=g)
    F = torch.randn(net.sizes[0], n_out, generator=g, dtype=torch.float64) * 0.3
    return net, X, y, F


@pytest.mark.parametrize("sign", [-1, 1])
@pytest.mark.parametrize("output_error", ["modulated", "clean"])
@pytest.mark.parametrize("keep", [1.0, 0.5])
def test_one_position_without_pooling_is_the_fc_rule(sign, output_error, keep):
    """A kernel as large as the image has one position; without pooling the conv layer is a fully
    connected layer with W₁ = K flattened. ConvPEPITA must then give PEPITA's updates on that MLP
    (same F, same dropout masks): this pins the sign and the batch averaging of the kernel update."""
    net, X, y, F = conv_case(image_shape=(2, 4, 4), channels=7, kernel_size=4, pool=1, batch=6)
    mlp = MLP.from_weights([net.W[0].reshape(7, -1), net.W[1]], net.b, activation="relu", output="identity",
                           loss="cross_entropy")
    settings = dict(sign=sign, output_error=output_error, keep=keep, seed=3)
    conv, conv_loss = ConvPEPITA.with_projection(F, **settings).bind(net).updates(net, X, y)
    fc, fc_loss = PEPITA.with_projection(F, **settings).bind(mlp).updates(mlp, X, y)
    assert list(conv) == list(fc)
    for name, want in fc.items():
        torch.testing.assert_close(conv[name].reshape(want.shape), want, msg=name)
    torch.testing.assert_close(conv_loss, fc_loss)


def loop_conv_pepita(net, X, y, F, sign, mask=None):
    """Both passes and the updates with explicit loops over channels, positions and pooling windows
    (ties in a window go to its first maximum, row by row, as torch's max-pool does)."""
    C, H, W = net.image_shape
    K, W2 = net.W
    b1, b2 = net.b
    k, pool, n = net.kernel_size, net.pool, len(X)
    Hc, Wc = H - k + 1, W - k + 1
    P, Q = Hc // pool, Wc // pool
    T = torch.nn.functional.one_hot(y, net.sizes[-1]).to(X.dtype)

    def forward(x_rows):
        x = x_rows.reshape(n, C, H, W)
        pooled = torch.zeros(n, net.channels, P, Q, dtype=X.dtype)
        where = {}
        for b in range(n):
            for o in range(net.channels):
                conv = torch.zeros(Hc, Wc, dtype=X.dtype)
                for r in range(Hc):
                    for c in range(Wc):
                        conv[r, c] = torch.relu((K[o] * x[b, :, r:r + k, c:c + k]).sum() + b1[o])
                for i in range(P):
                    for j in range(Q):
                        best = None
                        for r in range(i * pool, (i + 1) * pool):
                            for c in range(j * pool, (j + 1) * pool):
                                if best is None or conv[r, c] > conv[best]:
                                    best = (r, c)
                        pooled[b, o, i, j], where[b, o, i, j] = conv[best], best
        h = pooled.reshape(n, -1) if mask is None else pooled.reshape(n, -1) * mask
        return x, h, where, h @ W2.T + b2

    _, h, _, logits = forward(X)
    e = torch.softmax(logits, 1) - T
    x_mod, h_mod, where_mod, logits_mod = forward(X + sign * e @ F.T)
    e_mod = torch.softmax(logits_mod, 1) - T
    d = (h - h_mod).reshape(n, net.channels, P, Q)
    dK, db = torch.zeros_like(K), torch.zeros_like(b1)
    for (b, o, i, j), (r, c) in where_mod.items():   # each pooled unit's change, at its modulated position
        dK[o] += d[b, o, i, j] * x_mod[b, :, r:r + k, c:c + k]
        db[o] += d[b, o, i, j]
    return {"W1": dK / n, "b1": db / n, "W2": e_mod.T @ h_mod / n, "b2": e_mod.mean(0)}


@pytest.mark.parametrize("sign", [-1, 1])
@pytest.mark.parametrize("shape,kernel_size,pool", [((2, 6, 6), 3, 2), ((1, 7, 7), 2, 3), ((3, 5, 5), 3, 1)],
                         ids=["2x6x6-k3-pool2", "1x7x7-k2-pool3", "3x5x5-k3-nopool"])
def test_kernel_update_matches_a_per_position_loop(sign, shape, kernel_size, pool):
    """ΔK[o,i,u,v] = (1/batch) Σ_b Σ_positions (h - h̃)[b,o,p] · x̃[b,i,p+(u,v)], the change of each pooled
    unit credited to the position its modulated pass pooled; Δb₁ the same sum without the patch.
    (1x7x7 with k=2, pool 3: a 6×6 map pooled to 2×2; 3x5x5 without pooling.)"""
    net, X, y, F = conv_case(image_shape=shape, kernel_size=kernel_size, pool=pool, batch=3)
    got, _ = ConvPEPITA.with_projection(F, sign=sign).bind(net).updates(net, X, y)
    want = loop_conv_pepita(net, X, y, F, sign)
    for name, w in want.items():
        torch.testing.assert_close(got[name], w, msg=name)


def test_batch_is_averaged_once():
    """The update is a batch mean: the same samples twice give the same update, not twice it (the
    reference divided the kernel update by the batch size a second time)."""
    net, X, y, F = conv_case(batch=4)
    rule = ConvPEPITA.with_projection(F).bind(net)
    once, loss = rule.updates(net, X, y)
    twice, loss2 = rule.updates(net, torch.cat([X, X]), torch.cat([y, y]))
    for name, u in once.items():
        torch.testing.assert_close(twice[name], u, msg=name)
        assert u.abs().max() > 1e-4, f"{name} is too small to test anything"
    torch.testing.assert_close(loss2, loss)


def test_dropout_uses_one_mask_for_both_passes():
    """keep < 1: a pooled unit dropped in the clean pass is dropped in the modulated pass too, so it
    neither feeds the output nor learns; kept units are scaled by 1/keep. The updates match the loop
    given the same mask, and a sample whose every unit of a channel is dropped leaves that filter alone."""
    net, X, y, F = conv_case(batch=3, channels=4)
    (mask,) = ConvPEPITA.with_projection(F, keep=0.5, seed=5).bind(net).dropout_masks(net, len(X))
    assert mask.shape == (3, net.sizes[1]) and set(mask.unique().tolist()) == {0.0, 2.0}
    rule = ConvPEPITA.with_projection(F, keep=0.5, seed=5).bind(net)
    clean, mod, _, _ = rule.passes(net, X, y)
    dropped = mask == 0
    assert dropped.any() and not clean.h[1][dropped].any() and not mod.h[1][dropped].any()
    plain = ConvPEPITA.with_projection(F).forward(net, X)
    torch.testing.assert_close(clean.h[1][~dropped], 2 * plain.h[1][~dropped])

    got, _ = ConvPEPITA.with_projection(F, keep=0.5, seed=5).bind(net).updates(net, X, y)
    want = loop_conv_pepita(net, X, y, F, -1, mask=mask)
    for name, w in want.items():
        torch.testing.assert_close(got[name], w, msg=name)

    one = ConvPEPITA.with_projection(F, keep=0.5, seed=5).bind(net)
    one.mask_generator.manual_seed(0)
    (m,) = one.dropout_masks(net, 1)
    one.mask_generator.manual_seed(0)
    channel_dropped = (m.reshape(net.channels, -1) == 0).all(dim=1)
    updates, _ = one.updates(net, X[:1], y[:1])
    assert not updates["W1"][channel_dropped].any() and not updates["b1"][channel_dropped].any()
    if (~channel_dropped).any():
        assert updates["W1"][~channel_dropped].abs().max() > 0


def test_learns_digits_and_checkpoints_round_trip(tmp_path):
    """A few hundred steps on the embedded digits through train(): the loss falls and the accuracy is
    far above chance; the checkpoint then loads into a fresh network and rule unchanged."""
    digits = load("digits", device="cpu", quick=False)
    settings = dict(lr=0.01, num_epochs=16, batch_size=64, momentum=0.9, progress=False,
                    checkpoint=tmp_path / "conv.pt")               # 16 epochs × 19 batches = 304 steps

    def fresh():
        return ConvNet(image_shape=digits.image_shape, channels=4, seed=1, device="cpu"), ConvPEPITA(keep=0.9, seed=0)

    net, rule = fresh()
    history = train(net, rule, digits, **settings)
    assert not history.diverged
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][1]
    assert history["val_acc"][-1] > 0.7 and history["test_acc"][-1] > 0.7   # chance: 0.1

    net2, rule2 = fresh()
    loaded = train(net2, rule2, digits, **settings)
    assert repr(loaded.records) == repr(history.records)   # (repr: the first train_loss is NaN)
    for a, b in zip(net.parameters(), net2.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(rule.F, rule2.F, rtol=0, atol=0)
    assert "ConvNet" in str(net.config()) and loaded.checkpoint == history.checkpoint


def one_line_error(call, *words):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def test_messages_on_bad_input():
    net, X, y, F = conv_case()
    one_line_error(lambda: ConvPEPITA.with_projection(F[:-1]).bind(net), "F has shape", "(n_in, n_out)")
    one_line_error(lambda: ConvPEPITA().bind(net).updates(net, X[:, :-1], y), "ConvNet expects", "image_shape")
    with pytest.raises(RuntimeError, match=r"not bound to a network yet.*call rule.bind\(net\) first"):
        ConvPEPITA().updates(net, X, y)
    one_line_error(lambda: net(X.reshape(len(X), *net.image_shape)), "X.reshape(len(X), -1)")
    mlp = MLP([net.sizes[0], 5, 4], "relu", "identity", "cross_entropy", device="cpu", dtype=torch.float64)
    with pytest.raises(TypeError, match="ConvPEPITA trains ConvNet networks, not MLP. Rules that can train it: .*PEPITA"):
        ConvPEPITA().bind(mlp)
    digits = load("digits", device="cpu", quick=True)
    one_line_error(lambda: train(ConvNet((3, 28, 28), device="cpu"), ConvPEPITA(), digits, lr=0.01, num_epochs=1),
                   "ConvNet(image_shape=data.image_shape)")
    with pytest.raises(ValueError, match="pool"):
        ConvNet((1, 28, 28), kernel_size=5, pool=30)
    with pytest.raises(TypeError, match="Backprop trains MLP networks, not ConvNet. Rules that can train it: ConvPEPITA"):
        train(ConvNet(device="cpu"), Backprop(), digits, lr=0.01, num_epochs=1)
