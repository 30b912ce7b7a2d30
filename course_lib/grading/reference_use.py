"""Whether a learner handed in the library's reference instead of their own code ("How to use this
course", "What the grader cannot tell"). ``course_lib`` carries the reference of every exercise,
so ``def goodness(h): return ch07.goodness(h)`` would pass every check.

Found by reading the notebook's code (never by running it): names bound to ``course_lib`` by
imports and plain assignments anywhere in the notebook are followed, and the exercise counts as
handed in from the library when its function uses the exercise's own reference, or
:func:`~course_lib.checks.core.your_function_or_reference`, or when the exercise's name is itself
bound to the library. A reference retyped by hand is the learner's own code as far as any grader
can tell.
"""
import ast

from ..notebook_format import cell_source, code_cells

LIBRARY = "course_lib"
FALLBACK = "your_function_or_reference"


def parsed_cells(nb_json: dict) -> list:
    """Each code cell that parses as Python (magics and shell lines blanked)."""
    trees = []
    for cell in code_cells(nb_json):
        lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in cell_source(cell).split("\n")]
        try:
            trees.append(ast.parse("\n".join(lines)))
        except SyntaxError:
            continue
    return trees


def library_names(trees) -> dict:
    """{local name: dotted path in course_lib} for every import from course_lib, and every plain
    assignment of such a path, anywhere in the notebook."""
    names = {}
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == LIBRARY:
                    names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else LIBRARY
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == LIBRARY and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in (n for tree in trees for n in ast.walk(tree)):   # then aliases of those
        if isinstance(node, ast.Assign) and resolve(node.value, names):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = resolve(node.value, names)
    return names


def resolve(node, names) -> str:
    """The course_lib path an expression (a name or an attribute chain) stands for, or ""."""
    if isinstance(node, ast.Name):
        return names.get(node.id, FALLBACK if node.id == FALLBACK else "")
    if isinstance(node, ast.Attribute):
        base = resolve(node.value, names)
        return f"{base}.{node.attr}" if base else ""
    return ""


def is_reference(path: str, exercise: str) -> bool:
    return path.split(".")[-1] in (exercise, FALLBACK)


def reference_used(nb_json: dict, exercise: str, function: str) -> str:
    """The library reference that the notebook's ``function`` (the exercise's function, perhaps
    renamed) hands in for ``exercise``, as a path ("course_lib.chapters.ch07.goodness"), or "" when
    it uses none."""
    trees = parsed_cells(nb_json)
    names = library_names(trees)
    defs = [node for tree in trees for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function]
    if not defs and is_reference(names.get(function, ""), exercise):
        return names[function]
    for node in defs:
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Name, ast.Attribute)) and is_reference(resolve(inner, names), exercise):
                return resolve(inner, names)
    return ""
