"""The package's layout is its architecture: each pipeline imports only what sits below it.

    kernel (config, limits, errors, tenants, queue_format, events, ...)  <- everything
    spec                       <- conformance, ingest
    conformance, identity      <- ingest
    forward                    (kernel only)
    admin                      <- nothing (it uses forward's token client for the connection check)

Read from the source with `ast` (imports inside functions and under TYPE_CHECKING count too), so
an upward arrow fails here before it becomes a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "shared" / "segment_bridge"
SUBPACKAGES = ("spec", "conformance", "identity", "ingest", "forward", "admin")
#: What each part may import besides the kernel (and itself).
ALLOWED: dict[str, set[str]] = {
    "kernel": set(),
    "spec": set(),
    "conformance": {"spec"},
    "identity": set(),
    "ingest": {"spec", "conformance", "identity"},
    "forward": set(),
    "admin": {"forward"},
}


def part_of(module: str) -> str:
    """`segment_bridge.ingest.sources.stripe` -> "ingest"; top-level modules are the kernel."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES else "kernel"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every segment_bridge module `path` imports, relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("segment_bridge"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("segment_bridge"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import safe_json`
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    own = part_of(module_name(path))
    allowed = {"kernel", own} | ALLOWED[own]
    existing = {module_name(p) for p in modules()}
    for target in imported_modules(path):
        if target not in existing and target.rpartition(".")[0] in existing:
            continue  # `from .x import Name`: the name, not a module
        assert part_of(target) in allowed, f"{module_name(path)} ({own}) imports {target} ({part_of(target)})"


def test_top_level_modules_are_only_the_kernel() -> None:
    """No top-level module belongs to a single pipeline (those live in their subpackage)."""
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert top == [
        "apigw",
        "auth",
        "aws",
        "config",
        "errors",
        "events",
        "limits",
        "observability",
        "queue_format",
        "safe_json",
        "tenants",
    ]


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_each_subpackage_exports_its_public_names(subpackage: str) -> None:
    import importlib

    module = importlib.import_module(f"segment_bridge.{subpackage}")
    assert module.__doc__ and module.__all__, subpackage
    assert all(hasattr(module, name) for name in module.__all__), subpackage
