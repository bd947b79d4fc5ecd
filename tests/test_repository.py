"""Repository conventions: environment files agree, notebooks are stripped and parameterized."""

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "tests" / "fixtures").glob("*.ipynb")
)
REQUIRED_PARAMETERS = {"profile", "seed", "run_dir", "figures_dir"}


def test_environment_yml_agrees_with_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    pythons = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    assert len(pythons) == 1, "environment.yml must pin python exactly once"
    version = pythons[0].split("=")[-1]
    lo, hi = re.match(r">=(\d+\.\d+),<(\d+\.\d+)", pyproject["project"]["requires-python"]).groups()
    as_tuple = lambda v: tuple(int(p) for p in v.split("."))  # noqa: E731
    assert as_tuple(lo) <= as_tuple(version) < as_tuple(hi), "python pin outside requires-python"
    pip = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert pip == [['-e ".[dev]"']], "environment.yml must install the package with pip -e .[dev]"
    assert "dev" in pyproject["project"]["optional-dependencies"]
    assert "gpu" in pyproject["project"]["optional-dependencies"]


def _cells(path):
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped(path):
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name} cell {i} carries outputs"
            assert cell.get("execution_count") is None, (
                f"{path.name} cell {i} has an execution count"
            )
    kernel = json.loads(path.read_text())["metadata"].get("kernelspec", {}).get("name")
    assert kernel == "python3", f"{path.name}: kernelspec must be python3, got {kernel!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_one_literal_parameters_cell(path):
    tagged = [c for c in _cells(path) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, (
        f"{path.name}: expected exactly one cell tagged 'parameters', found {len(tagged)}"
    )
    source = "".join(tagged[0]["source"])
    names = set()
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign), f"{path.name}: parameters cell holds only assignments"
        ast.literal_eval(node.value)  # raises if not a literal
        names.update(t.id for t in node.targets)
    for line in source.splitlines():
        if line.strip() and "=" in line:
            assert "#" in line, f"{path.name}: parameter line without a comment: {line!r}"
            # papermill's --help-notebook cannot parse a comment holding "=" (">=" too)
            assert "=" not in line.split("#", 1)[1], (
                f"{path.name}: '=' in parameter comment: {line!r}"
            )
    assert REQUIRED_PARAMETERS <= names, (
        f"{path.name}: missing parameters {REQUIRED_PARAMETERS - names}"
    )


def test_notebooks_are_numbered():
    names = [p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    for name in names:
        assert re.match(r"\d\d_[a-z0-9_]+\.ipynb$", name), name


# ------------------------------------------------------------------- the package's shape
PACKAGE = ROOT / "rbcore"
MAX_MODULE_LINES = 500  # a module a reader takes in one sitting (issue 11)
MAX_FUNCTION_LINES = {("train/loop.py", "fit"): 80, ("deploy/stream.py", "run_deployment"): 80}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, modules: dict) -> set[str]:
    """rbcore modules `path` imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                     else node.module for a in node.names]  # fmt: skip
        else:
            continue
        out.update(n for n in names if n in modules)
    return out


def test_no_import_cycles_between_modules():
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(m, path):
        state[m] = 1
        for n in sorted(graph[m]):
            assert state.get(n) != 1, "import cycle: " + " -> ".join([*path, m, n])
            if n not in state:
                visit(n, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_modules_and_long_functions_stay_short():
    for path in _modules().values():
        n = len(path.read_text().splitlines())
        assert n <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)}: {n} lines > {MAX_MODULE_LINES}"
    for (rel, func), limit in MAX_FUNCTION_LINES.items():
        tree = ast.parse((PACKAGE / rel).read_text())
        (node,) = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == func]
        n = node.end_lineno - node.lineno + 1
        assert n < limit, f"rbcore/{rel}: {func} has {n} lines, limit {limit}"
