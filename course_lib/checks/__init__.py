"""Graded checks, one per exercise: ``check_<exercise>(your_function)`` right under the exercise."""
from .ch01 import check_backprop_two_layer, check_local_factors
from .core import CheckResult, your_function_or_reference

# exercise (the function the learner writes) -> its check; tests run every solution and stub through it
EXERCISES = {
    "backprop_two_layer": check_backprop_two_layer,
    "local_factors": check_local_factors,
}

__all__ = ["check_backprop_two_layer", "check_local_factors", "CheckResult", "your_function_or_reference",
           "EXERCISES"]
