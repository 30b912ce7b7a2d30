"""Learning rules: one module per rule, all fitting the contract of :mod:`course_lib.rules.base`."""
from .base import ErrorRule, LearningRule, output_error, outer_product_updates, propagate_errors
from .backprop import Backprop

__all__ = ["LearningRule", "ErrorRule", "Backprop", "output_error", "propagate_errors", "outer_product_updates"]
