"""Graded checks, one per exercise: ``check_<exercise>(your_function)`` right under the exercise."""
from .ch01 import check_backprop_two_layer, check_local_factors
from .ch02 import (check_node_perturbation_update, check_weight_perturbation_update,
                   check_wp_empirical_moments, check_wp_predicted_moments)
from .ch03 import check_feedback_alignment_updates
from .ch04 import check_kolen_pollack_step
from .ch06 import check_mirror_update
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
    "mirror_update": check_mirror_update,
}

__all__ = ["check_backprop_two_layer", "check_local_factors", "check_weight_perturbation_update",
           "check_node_perturbation_update", "check_wp_empirical_moments", "check_wp_predicted_moments",
           "check_feedback_alignment_updates", "check_kolen_pollack_step", "check_mirror_update", "CheckResult",
           "your_function_or_reference", "EXERCISES"]
