"""PEPITA for a convolutional network (Chapter 5, "The convolutional variant").

The same two passes as :class:`~course_lib.rules.pepita.PEPITA`, on a :class:`~course_lib.conv_network.ConvNet`
(conv → ReLU → max-pool → linear): the output error is projected onto the input rows by F (n_in, n_out),
x̃ = x + s · e Fᵀ with s = -1 (the course's sign), and the network runs on x̃ with the same weights and
the same dropout mask. Only the convolution's update differs, because its weights are shared across
positions:

    change of the pooled units     d = h₁ - h̃₁                                    (batch, C_out·P·P')
    routed to the positions        δ = unpool(d), at the position the modulated   (batch, C_out, H', W')
                                   pass's max-pool took each unit from, 0 elsewhere
    kernel  ΔK[o,i,u,v] = (1/batch) Σ_b Σ_p δ[b,o,p] · x̃[b,i,p+(u,v)]            (C_out, C_in, k, k)
    bias    Δb₁[o]      = (1/batch) Σ_b Σ_p δ[b,o,p]                               (C_out,)
    output  ΔW₂ = ẽᵀ h̃₁ / batch,   Δb₂ = mean(ẽ)                                  as in the FC rule

Summed over positions, averaged over the batch once: a kernel entry is one synapse repeated at every
position, and the sum over positions is what the FC rule's ΔW = (h - h̃)ᵀ x̃ / batch becomes for it
(with one position, k = H = W and pool = 1, the two rules coincide; tests/test_pepita_conv.py checks
it). The bias is the weight of a constant input 1 at every position, so it gets the same sum.

Which activity compares the two passes: the pooled unit's, after ReLU, pooling and dropout, exactly
the h₁ the output layer reads (the FC rule's h_l is also taken after the dropout mask). Its change is
credited to the one conv position it came from in the modulated pass and paired with the modulated
input patch there, the presynaptic activity that produced h̃₁ (the FC rule pairs the change with the
modulated presynaptic activity). Positions the pooling discards feed nothing forward and do not
learn, as they get no gradient in backprop; a unit dropped by dropout does not learn either. To first
order in F the clean and modulated passes pool from the same positions, and d at a unit is the
change h_conv - h̃_conv of the position it pools.

The reference conv script got three of these wrong. Its kernel update had the opposite sign to its FC
rule's: a conv layer with a single position then does not compute the FC rule, and to first order the
flip is the other sign convention applied to the conv layer alone (feedback alignment with the
feedback negated), so layers of one network disagree about the sign and the soft alignment of F is
reported the other way round. It divided the kernel update by the batch size twice, so the filters
learned with a learning rate batch-size times smaller than the rest (1/64 at batch 64): they barely
move, and the network is mostly a linear read-out of random filters. And it ignored the dropout masks.
"""
import torch

from ..conv_network import ConvForwardPass, ConvNet
from .pepita import PEPITA


class ConvPEPITA(PEPITA):
    """PEPITA on a :class:`~course_lib.conv_network.ConvNet`; module docstring for the update.

    Settings as :class:`PEPITA`'s: ``F_scale`` (F's entries F_scale · U(±√(6/n_in)), n_in = C·H·W),
    ``sign`` (-1: x - F e), ``output_error`` ("modulated" or "clean"), ``keep`` (dropout on the pooled
    units, the same mask in both passes), ``seed``.
    """
    name = "ConvPEPITA"

    def __init__(self, F_scale: float = 0.05, sign: int = -1, output_error: str = "modulated",
                 keep: float = 1.0, seed: int = 0):
        super().__init__(F_scale=F_scale, sign=sign, output_error=output_error, keep=keep, seed=seed)

    networks = (ConvNet,)

    def prepare(self, net: ConvNet):
        self.check_network(net)
        super().prepare(net)       # F (C·H·W, n_out) as PEPITA draws it, or a given F's shape checked

    def check_compatible(self, net: ConvNet, data):
        shape = tuple(getattr(data, "image_shape", ()) or ())
        if shape != net.image_shape:
            raise ValueError(f"The data holds images of shape {shape or (data.n_features,)}, but the network was "
                             f"built for {net.image_shape}: build it with ConvNet(image_shape=data.image_shape).")
        super().check_compatible(net, data)

    # ---- the two passes: the network's own forward pass, with the dropout mask on the pooled units
    def forward(self, net: ConvNet, X, masks=None, a_1=None) -> ConvForwardPass:
        return net.forward(X, mask=None if masks is None else masks[0])

    def modulated_first_preactivation(self, net, clean, e):
        return None   # the convolution of x̃ is computed directly

    def hidden_update(self, net: ConvNet, l: int, clean: ConvForwardPass, mod: ConvForwardPass):
        """(ΔK, Δb₁): the change of each pooled unit, at the position it pooled in the modulated
        pass, times the modulated input patch there; summed over positions, batch mean once."""
        batch = len(clean.h[0])
        delta = net.unpool(clean.h[1] - mod.h[1], mod.pool_indices)           # (batch, C_out, H', W')
        # Σ_b Σ_p δ[b,o,p] · x̃[b,i,p+(u,v)]: the convolution's weight gradient with δ as output gradient
        dK = torch.nn.grad.conv2d_weight(net.images(mod.h[0]), net.W[0].shape, delta)   # (C_out, C_in, k, k)
        return dK / batch, delta.sum(dim=(2, 3)).mean(dim=0)                   # (C_out,)

    def feedback_pairs(self, net) -> dict:
        """None: with pooling no matrix carries the error from the output back to the input, so there
        is nothing to compare F with."""
        return {}
