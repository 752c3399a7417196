"""The package's shape: an honest public API, one import name, and layers that import one way only."""
from __future__ import annotations

import ast
import pkgutil
import tomllib
from collections import defaultdict
from pathlib import Path

import scoring

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(scoring.__file__).parent
#: Where each installed package's files live (pyproject maps the apps' folders under the one name).
FOLDERS = {"scoring": SRC, "scoring.training": ROOT / "training", "scoring.serving": ROOT / "serving",
           "scoring.cli": ROOT / "cli"}
APPS = ("scoring.training", "scoring.serving", "scoring.cli")


def _modules() -> dict[str, Path]:
    """Every module of the project by its import name."""
    out: dict[str, Path] = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            if package == "scoring" and path.relative_to(folder).parts[0] in ("training", "serving", "cli"):
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (anywhere but under ``if TYPE_CHECKING:``), relative ones resolved."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("scoring")}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(name, path) if m in modules and m != name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_all_is_honest():
    public = {name for name in dir(scoring) if not name.startswith("_")}
    submodules = {m.name for m in pkgutil.iter_modules(scoring.__path__)} | {a.rpartition(".")[2] for a in APPS}
    assert set(scoring.__all__) == public - submodules, "export exactly what __all__ lists"
    assert scoring.__all__ == sorted(scoring.__all__)


def test_every_package_is_installed_under_the_one_name():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {name for name, path in _modules().items() if path.name == "__init__.py"}
    assert listed == on_disk


def test_domain_library_imports_neither_training_nor_serving():
    for name, targets in _graph().items():
        if not name.startswith(APPS):
            bad = [t for t in targets if t.startswith(APPS)]
            assert not bad, f"{name} imports {bad}"


def test_serving_does_not_import_training():
    for name, targets in _graph().items():
        if name.startswith("scoring.serving"):
            assert not [t for t in targets if t.startswith("scoring.training")], name


def test_no_import_circles():
    assert _cycle(_graph()) is None


def test_the_library_layers_import_one_way():
    """Between the library's subpackages (data -> features -> models -> evaluation, forecast -> report) no circle."""
    layers: dict[str, set[str]] = defaultdict(set)
    for name, targets in _graph().items():
        if name.startswith(APPS) or name.count(".") < 2:
            continue
        here = name.split(".")[1]
        layers[here].update(t.split(".")[1] for t in targets if t.count(".") >= 2 and t.split(".")[1] != here
                            and not t.startswith(APPS))
    assert _cycle(layers) is None, dict(layers)


def test_quick_answers_import_nothing_heavy():
    """`scoring --version` answers without importing pandas, NumPy, LightGBM or MLflow (it took about 2 s
    before the commands were loaded lazily); a command imports what it needs when it runs (and the group's
    --help, which lists every command's summary, imports them all)."""
    import subprocess
    import sys

    probe = ("import sys\nfrom scoring.cli.main import main\n"
             "for args in (['--version'], ['score', '--help']):\n"
             "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
             "    print(args[0], sorted(m for m in ('pandas', 'numpy', 'lightgbm', 'mlflow', 'sklearn', 'scipy')"
             " if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.splitlines() if line.startswith(("--", "score"))}
    assert lines["--version"] == "[]"
    assert "pandas" in lines["score"]  # the command's own module, loaded when asked for
