"""The package's shape: an honest public API, and a domain library that never imports the apps."""
from __future__ import annotations

import ast
from pathlib import Path

import scoring

SRC = Path(scoring.__file__).parent


def test_all_is_honest():
    public = {name for name in dir(scoring) if not name.startswith("_")}
    modules = {p.stem for p in SRC.glob("*.py")}
    assert set(scoring.__all__) == public - modules, "export exactly what __all__ lists"
    assert scoring.__all__ == sorted(scoring.__all__)


def test_domain_library_imports_neither_training_nor_serving():
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in {"training", "serving"}, f"{path.name} imports {name}"
