"""Wrong learner answers that more than one test file writes (the hint catalogue and the robustness
tests of the checks)."""
from course_lib.chapters import ch01


def flipped(*factors):
    """An answer to exercise 1's "which factors are local" with these factors' marks turned round."""
    def local_factors():
        answer = ch01.local_factors()
        for f in factors:
            answer[f] = not answer[f]
        return answer
    return local_factors
