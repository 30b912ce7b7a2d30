"""What ``course-grade`` writes ("How to use this course", "Grading"): ``grades.csv``,
``feedback/<learner>.md`` and ``summary.md``, each headed by how the notebooks were run (in the
sandbox, with its limits, or not)."""
import csv
import re
from collections import Counter
from pathlib import Path

from .statuses import MARKS, Mark, mark_text


def points_of(exercises) -> dict:
    """{exercise: the points its declaration gives}."""
    from course_lib.exercises import points
    return {n: points(n) for n in exercises}


def merge(subs) -> dict:
    """{learner: {"marks": {exercise: best Mark}, "problems", "files"}} over a learner's notebooks."""
    order = {s: k for k, s in enumerate(MARKS)}
    learners = {}
    for s in subs:
        entry = learners.setdefault(s.learner, {"marks": {}, "problems": [], "files": []})
        entry["problems"] += s.problems
        entry["files"].append(s.path.name)
        for name, mark in s.marks.items():
            best = entry["marks"].get(name)
            if best is None or order[mark.status] < order[best.status]:
                entry["marks"][name] = mark
    return learners


def write_results(learners: dict, exercises: list, out: Path, assignment: dict, how_run: str) -> str:
    """grades.csv, feedback/<learner>.md and summary.md; returns the summary's text. ``how_run``:
    the sentence saying whether the sandbox was on."""
    out.mkdir(parents=True, exist_ok=True)
    points = points_of(exercises)
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["learner", *exercises, "points", "notes"])
        for learner, entry in sorted(learners.items()):
            writer.writerow([learner, *(mark_text(entry["marks"][n]) for n in exercises),
                             points_got(entry, exercises, points), " ".join(entry["problems"])])
    (out / "feedback").mkdir(exist_ok=True)
    for learner, entry in learners.items():
        (out / "feedback" / f"{safe_name(learner)}.md").write_text(
            feedback(learner, entry, exercises, points, assignment, how_run))
    summary = class_summary(learners, exercises, assignment, how_run)
    (out / "summary.md").write_text(summary)
    return summary


def points_got(entry: dict, exercises: list, points: dict) -> int:
    return sum(points[n] for n in exercises if entry["marks"][n].status == "pass")


def feedback(learner: str, entry: dict, exercises: list, points: dict, assignment: dict, how_run: str) -> str:
    lines = [f"# Feedback for {learner}", "",
             f"Notebook: {', '.join(entry['files'])} (graded as {', '.join(assignment)}). {how_run}",
             f"Points: {points_got(entry, exercises, points)} of {sum(points.values())}.", ""]
    if entry["problems"]:
        lines += ["Problems with the submission:", ""] + [f"- {p}" for p in entry["problems"]] + [""]
    lines += ["Exercises:", ""] + [f"- {plain_line(n, entry['marks'][n])}" for n in exercises]
    return "\n".join(lines) + "\n"


def plain_line(name: str, mark: Mark) -> str:
    """What the learner reads about one exercise: the check's own line where there is one."""
    if mark.message.startswith(("✅", "❌", "✏️")):
        return mark.message
    text = {"not attempted": "not attempted", "error": "could not be checked", "timeout": "ran out of time",
            "wrong": "wrong", "pass": "passed", "uses reference": "uses the library's reference"}[mark.status]
    return f"{name}: {text}" + (f" ({mark.message})" if mark.message else "") + "."


def safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name) or "learner"


def class_summary(learners: dict, exercises: list, assignment: dict, how_run: str) -> str:
    n = len(learners)
    lines = [f"# Class summary: {', '.join(assignment)}", "", how_run, "",
             f"{n} learner{'s' if n != 1 else ''}.", "",
             "| exercise | passed | wrong | uses reference | not attempted | error | timeout | most common mistakes |",
             "|---|---|---|---|---|---|---|---|"]
    for name in exercises:
        marks = [e["marks"][name] for e in learners.values()]
        counts = Counter(m.status for m in marks)
        mistakes = Counter(m.mistake for m in marks if m.status == "wrong" and m.mistake)
        common = ", ".join(f"{m} ({c})" for m, c in mistakes.most_common(3)) or "–"
        lines.append(f"| {name} | {counts['pass']}/{n} | {counts['wrong']} | {counts['uses reference']} | "
                     f"{counts['not attempted']} | {counts['error']} | {counts['timeout']} | {common} |")
    problems = [(learner, p) for learner, e in sorted(learners.items()) for p in e["problems"]]
    if problems:
        lines += ["", "Submissions that could not be run normally:", ""]
        lines += [f"- {learner}: {p}" for learner, p in problems]
    return "\n".join(lines) + "\n"
