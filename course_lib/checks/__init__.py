"""Graded checks, one per exercise: ``check_<exercise>(your_function)`` right under the exercise."""
from .ch01 import check_backprop_two_layer, check_local_factors
from .ch02 import (check_node_perturbation_update, check_weight_perturbation_update,
                   check_wp_empirical_moments, check_wp_predicted_moments)
from .ch03 import check_feedback_alignment_updates
from .ch04 import check_kolen_pollack_step
from .ch05 import check_pepita_updates
from .ch06 import check_mirror_update
from .ch07 import (check_embed_label, check_ff_layer_loss, check_goodness, check_goodness_per_label,
                   check_negative_labels, check_normalise_input)
from .core import CheckResult, your_function_or_reference

# exercise (the function the learner writes) -> its check; tests run every solution and stub through it
EXERCISES = {
    "backprop_two_layer": check_backprop_two_layer,
    "local_factors": check_local_factors,
    "weight_perturbation_update": check_weight_perturbation_update,
    "node_perturbation_update": check_node_perturbation_update,
    "wp_empirical_moments": check_wp_empirical_moments,
    "wp_predicted_moments": check_wp_predicted_moments,
    "feedback_alignment_updates": check_feedback_alignment_updates,
    "kolen_pollack_step": check_kolen_pollack_step,
    "pepita_updates": check_pepita_updates,
    "mirror_update": check_mirror_update,
    "embed_label": check_embed_label,
    "negative_labels": check_negative_labels,
    "goodness": check_goodness,
    "ff_layer_loss": check_ff_layer_loss,
    "normalise_input": check_normalise_input,
    "goodness_per_label": check_goodness_per_label,
}

__all__ = ["check_backprop_two_layer", "check_local_factors", "check_weight_perturbation_update",
           "check_node_perturbation_update", "check_wp_empirical_moments", "check_wp_predicted_moments",
           "check_feedback_alignment_updates", "check_kolen_pollack_step", "check_pepita_updates", "check_mirror_update",
           "check_embed_label",
           "check_negative_labels", "check_goodness", "check_ff_layer_loss", "check_normalise_input",
           "check_goodness_per_label", "CheckResult",
           "your_function_or_reference", "EXERCISES"]
