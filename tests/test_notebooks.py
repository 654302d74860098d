"""The course notebooks: static checks (as Unsloth's CI does them), then all six executed headless in smoke mode."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
ORDER = ["00_setup", "01_collect", "02_clean", "03_finetune", "04_compare", "05_export"]
STACK = ("brandkit", "torch", "transformers", "trl", "peft", "datasets", "unsloth", "accelerate")


def load(name: str):
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def code_cells(notebook) -> list[str]:
    return [c.source for c in notebook.cells if c.cell_type == "code"]


def without_magics(source: str) -> str:
    """IPython's `!shell` and `%magic` lines as `pass` (same indentation), so the rest can be parsed."""
    return "\n".join(re.sub(r"^(\s*)[!%].*$", r"\1pass", line) for line in source.splitlines())


def test_the_six_notebooks_exist_in_order():
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == ORDER


@pytest.mark.parametrize("name", ORDER)
def test_notebook_is_valid_stripped_and_parses(name):
    notebook = load(name)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "outputs must be stripped in git"
            ast.parse(without_magics(cell.source))
    assert notebook.metadata["accelerator"] == "GPU" and notebook.metadata["colab"]["gpuType"] == "T4"


def checkpoint_cell(notebook):
    """The code cell right after the "## Checkpoint" heading."""
    index = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "markdown" and
                 c.source.startswith("## Checkpoint"))
    return next(c for c in notebook.cells[index + 1:] if c.cell_type == "code")


def answer_cells(notebook) -> list:
    return [c for c in notebook.cells if c.cell_type == "code" and "answer" in c.metadata.get("tags", [])]


@pytest.mark.parametrize("name", ORDER)
def test_notebook_teaches(name):
    notebook = load(name)
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    first = notebook.cells[0].source
    assert "colab.research.google.com/github/" in first and f"notebooks/{name}.ipynb" in first
    assert "By the end of this notebook you will be able to" in first
    assert "on a Colab T4 GPU" in first and "on a laptop CPU" in first and "You need" in first
    assert "## Checkpoint" in markdown
    assert "**Start here.**" in markdown and "**Go further.**" in markdown and "**Your own data.**" in markdown
    checkpoint = checkpoint_cell(notebook).source
    assert "assert" in checkpoint and "OK" in checkpoint
    assert "smoke" in markdown and "full" in markdown
    # the shared paragraphs are said once, in 00; the others link back to it
    assert ("Two modes, one switch" in markdown) == ("**Your own data.** Make a folder" in markdown) == \
        (name == "00_setup")
    if name != "00_setup":
        assert "(00_setup.ipynb)" in markdown


@pytest.mark.parametrize("name", ORDER)
def test_every_exercise_says_what_to_expect_and_has_a_hidden_checked_answer(name):
    notebook = load(name)
    exercises = [c.source for c in notebook.cells if c.cell_type == "markdown" and c.source.startswith("### Exercise")]
    answers = answer_cells(notebook)
    assert len(exercises) == len(answers) == 3
    for number, (exercise, answer) in enumerate(zip(exercises, answers, strict=True), 1):
        assert exercise.startswith(f"### Exercise {number}") and "*What to expect:*" in exercise
        following = notebook.cells[notebook.cells.index(answer) - 1]
        assert following.source == exercise, "each answer sits right under its exercise"
        assert answer.metadata["jupyter"]["source_hidden"] is True and answer.metadata["cellView"] == "form"
        assert answer.source.startswith(f"# @title Answer {number}\n")
        assert "assert " in answer.source and f'"Answer {number}: ' in answer.source.replace("f\"", "\"")


def test_the_setup_checkpoint_asserts_the_version_check():
    checkpoint = checkpoint_cell(load("00_setup")).source
    assert "assert not problems" in checkpoint and "version_problems()" in checkpoint
    assert "not installed\"" not in checkpoint  # the old check passed with mismatched versions


@pytest.mark.parametrize("name", ORDER)
def test_install_cell_comes_before_the_stack(name):
    cells = code_cells(load(name))
    setup = next(i for i, source in enumerate(cells) if "google.colab" in source and "colab.py" in source)
    # brandkit/colab.py's install (loaded by path, before brandkit's dependencies exist) holds the pip commands
    assert "_colab.install(\"/content/brandkit\")" in cells[setup] and "pip install" not in cells[setup]
    install_line = next(n for n, line in enumerate(cells[setup].splitlines()) if "_colab.install(" in line)
    for index, source in enumerate(cells):
        tree = ast.parse(without_magics(source))
        imports = [(node.lineno, alias.name) for node in ast.walk(tree) if isinstance(node, ast.Import)
                   for alias in node.names]
        imports += [(node.lineno, node.module or "") for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        for line, name in imports:
            if name.split(".")[0] in STACK:
                assert index > setup or (index == setup and line - 1 > install_line), \
                    f"cell {index} imports {name} before the install"


def resolve(module: str, attribute: str):
    return getattr(importlib.import_module(module), attribute)


def accepted(function) -> tuple[set[str], bool]:
    signature = inspect.signature(function)
    takes_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    return set(signature.parameters), takes_any


def keyword_problems(sources: list[str]) -> tuple[list[str], int]:
    """Keywords passed to brandkit / trl / transformers / peft callables that their signatures lack."""
    names: dict[str, object] = {}     # imported name -> object
    instances: dict[str, object] = {}  # variable -> class it was built from
    problems, checked = [], 0
    for source in sources:
        tree = ast.parse(without_magics(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in STACK:
                for alias in node.names:
                    names[alias.asname or alias.name] = resolve(node.module, alias.name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                    isinstance(node.value.func, ast.Name) and inspect.isclass(names.get(node.value.func.id)):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        instances[target.id] = names[node.value.func.id]
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.keywords:
                continue
            function = None
            if isinstance(node.func, ast.Name) and node.func.id in names:
                function = names[node.func.id]
            elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) and \
                    node.func.value.id in instances:
                function = getattr(instances[node.func.value.id], node.func.attr)
            if function is None:
                continue
            params, takes_any = accepted(function)
            for keyword in node.keywords:
                if keyword.arg is None or takes_any:
                    continue
                checked += 1
                if keyword.arg not in params:
                    problems.append(f"{getattr(function, '__qualname__', function)}({keyword.arg}=...)")
    return problems, checked


@pytest.mark.parametrize("name", ORDER)
def test_keywords_passed_exist_in_installed_versions(name):
    """Every keyword a notebook passes to brandkit, trl, transformers or peft exists there (API drift)."""
    problems, _ = keyword_problems(code_cells(load(name)))
    assert not problems, problems


def test_the_keyword_check_catches_drift():
    checked = sum(keyword_problems(code_cells(load(name)))[1] for name in ORDER)
    assert checked >= 5
    drifted = ["from brandkit.pipeline import Run\nrun = Run(config)\nrun.train(callbaks=[])",
               "from brandkit.export import merge_adapter\nmerge_adapter('a', 'b', dtyp='float16')"]
    assert keyword_problems(drifted)[0] == ["Run.train(callbaks=...)", "merge_adapter(dtyp=...)"]


def test_notebooks_match_their_generator(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    import make_notebooks

    for name, cells in make_notebooks.NOTEBOOKS.items():
        built = make_notebooks.build(name, cells)
        assert json.loads(nbformat.writes(built)) == json.loads((NOTEBOOK_DIR / f"{name}.ipynb").read_text()), name


def printed(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.notebook
def test_all_six_notebooks_run_headless_in_smoke_mode(tmp_path):
    from nbclient import NotebookClient

    os.environ.update({"BRANDKIT_MODE": "smoke", "BRANDKIT_RUN": str(tmp_path / "course")})
    timings, started = {}, time.perf_counter()
    for name in ORDER:
        notebook = load(name)
        # per cell: on a shared 2-core machine 04's compare cell (three contenders, one with ~1,000-token
        # prompts) has taken over 20 minutes
        client = NotebookClient(notebook, timeout=2400, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
        client.execute()
        errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors, (name, errors)
        assert " OK" in printed(checkpoint_cell(notebook)), (name, printed(checkpoint_cell(notebook)))
        for number, answer in enumerate(answer_cells(notebook), 1):  # each exercise's answer ran and checked itself
            assert f"Answer {number}: " in printed(answer), (name, number, printed(answer))
        timings[name] = round(time.perf_counter() - started)
        started = time.perf_counter()
    print("seconds per notebook:", timings)
    assert (tmp_path / "course" / "report.html").exists()
    assert (tmp_path / "course" / "export" / "Modelfile").exists()
