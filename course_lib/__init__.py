"""course_lib: the tested library behind the Beyond Backprop course."""
