"""Learning rules: one module per rule, all sharing :mod:`course_lib.rules.base`."""
from .base import LearningRule, output_error, outer_product_updates, propagate_errors
from .backprop import Backprop

__all__ = ["LearningRule", "Backprop", "output_error", "propagate_errors", "outer_product_updates"]
