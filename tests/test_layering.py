"""arkgate's import rules (docs/development.md, "Import direction"), checked over every module.

Read ``LAYERS`` top to bottom. A module may import its own package, any package on a lower row, and
the ``SHARED`` leaf modules. Packages on one row are peers and import none of each other. A package in
``ISOLATED`` imports nothing else from arkgate and is imported only by the packages named beside it.
Every import counts: at module level, inside a function, or under ``TYPE_CHECKING``.

The table names the target layout; a name with no module behind it yet (a package still to be moved
in) is allowed, but every module that exists must have a place in it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import arkgate

# -- the rules ------------------------------------------------------------------------------------

LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("app", "client_cli", "serving"),  # what the command line starts
    ("api", "web", "admin"),  # the HTTP fronts
    ("runtime", "plugins"),  # the application container; plugins.py loads the third-party hooks
    ("hookspecs",),  # the hooks' declarations, which plugins.py reads
    ("services",),  # the work the fronts and MCP share
    ("catalog", "cluster", "webhooks"),
    ("payments", "downloads"),
    ("db", "outbound"),
)

# Leaf modules at the top of arkgate/ that anything may import; they import only each other.
SHARED: frozenset[str] = frozenset(
    {
        "errors",
        "settings",
        "logs",
        "timestamps",  # the one wire form of an instant
        "chromium",  # Chromium's command-line flags (screenshots, the browser tests)
        "gc_tuning",  # the garbage collector's start-up settings
        "client",  # the Python client of arkgate's HTTP API: only HTTP, no internals
    }
)

# The bundled barkd simulator shares no code with the gateway, so it cannot share the adapter's mistakes.
ISOLATED: Mapping[str, frozenset[str]] = {"simulator": frozenset({"cli", "app"})}

# -- the checker ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Rules:
    layers: tuple[tuple[str, ...], ...]
    shared: frozenset[str]
    isolated: Mapping[str, frozenset[str]]

    def row(self, name: str) -> int | None:
        return next((i for i, row in enumerate(self.layers) if name in row), None)

    def known(self, name: str) -> bool:
        return self.row(name) is not None or name in self.shared or name in self.isolated

    def reason(self, importer: str, imported: str) -> str | None:
        """Why the top-level part ``importer`` may not import ``imported``; None when it may."""
        if importer == imported:
            return None
        for name in (importer, imported):
            if not self.known(name):
                return f"{name} has no place in the layering table"
        if imported in self.isolated:
            if importer in self.isolated[imported]:
                return None
            return f"only {', '.join(sorted(self.isolated[imported]))} may import {imported}"
        if importer in self.isolated:
            return f"{importer} imports nothing else from the package"
        if imported in self.shared:
            return None
        if importer in self.shared:
            return f"{importer} is a shared leaf module: it imports only other shared modules"
        low, high = self.row(importer), self.row(imported)
        assert low is not None and high is not None
        if low == high:
            return f"{importer} and {imported} are peers on one row"
        if low > high:
            return f"{importer} is below {imported}"
        return None


@dataclass(frozen=True, kw_only=True)
class Violation:
    path: Path
    line: int
    importer: str
    imported: str
    reason: str

    @property
    def pair(self) -> tuple[str, str]:
        return (self.importer, self.imported)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}: {self.reason}"


def _module_name(path: Path, package_dir: Path) -> str:
    parts = path.relative_to(package_dir.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str, package: str) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import of ``package``'s modules in the file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # `from . import x` in a/b.py means a; in a/__init__.py it means a itself.
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            if source == package:
                # `from arkgate import x`: x is the module imported.
                for alias in node.names:
                    yield f"{package}.{alias.name}", node.lineno
            else:
                yield source, node.lineno


def violations(package_dir: Path, rules: Rules) -> list[Violation]:
    package = package_dir.name
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        module = _module_name(path, package_dir)
        if module == package:
            continue  # the package's own __init__ only names it
        importer = module.split(".")[1]
        for imported, line in _imports(path, module, package):
            parts = imported.split(".")
            if parts[0] != package or len(parts) < 2:
                continue
            reason = rules.reason(importer, parts[1])
            if reason is not None:
                found.append(Violation(path=path, line=line, importer=module, imported=imported, reason=reason))
    return found


def unplaced(package_dir: Path, rules: Rules) -> list[str]:
    """Top-level modules and packages the table does not place."""
    names = {p.stem for p in package_dir.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in package_dir.iterdir() if (p / "__init__.py").exists()}
    return sorted(name for name in names if not rules.known(name))


ARKGATE = Rules(layers=LAYERS, shared=SHARED, isolated=ISOLATED)
PACKAGE_DIR = Path(arkgate.__file__).parent


# -- arkgate --------------------------------------------------------------------------------------


def test_every_module_has_a_place_in_the_table() -> None:
    assert unplaced(PACKAGE_DIR, ARKGATE) == []


def test_arkgate_imports_follow_the_layering() -> None:
    broken = [str(v) for v in violations(PACKAGE_DIR, ARKGATE)]
    assert broken == [], "imports against docs/development.md:\n" + "\n".join(broken)


# -- the checker itself, on a small package written for the test ----------------------------------

TOY = Rules(
    layers=(("front",), ("left", "right"), ("low",)),
    shared=frozenset({"errors"}),
    isolated={"sim": frozenset({"front"})},
)


def _toy(tmp_path: Path, files: Mapping[str, str]) -> Path:
    package_dir = tmp_path / "toy"
    for name in ("front", "left", "right", "low", "sim"):
        (package_dir / name).mkdir(parents=True)
        (package_dir / name / "__init__.py").write_text("")
    (package_dir / "__init__.py").write_text("")
    (package_dir / "errors.py").write_text("")
    for name, text in files.items():
        (package_dir / name).write_text(text)
    return package_dir


def test_a_package_that_follows_the_rules_passes(tmp_path: Path) -> None:
    package_dir = _toy(
        tmp_path,
        {
            "front/app.py": "import toy.left\nfrom toy import sim\nfrom toy.low import x\n",
            "left/a.py": "from ..low import y\nfrom . import b\nfrom toy.errors import E\n",
            "low/y.py": "import os\nfrom toy import errors\n",
        },
    )
    assert violations(package_dir, TOY) == []
    assert unplaced(package_dir, TOY) == []


@pytest.mark.parametrize(
    ("path", "text", "imported", "reason"),
    [
        ("low/up.py", "import toy.front.app\n", "toy.front.app", "low is below front"),
        ("low/up.py", "def f():\n    from toy.left import a\n", "toy.left", "low is below left"),
        ("low/up.py", "from ..right import b\n", "toy.right", "low is below right"),
        ("left/side.py", "from toy import right\n", "toy.right", "left and right are peers on one row"),
        ("right/sim_user.py", "import toy.sim\n", "toy.sim", "only front may import sim"),
        ("sim/out.py", "from toy.errors import E\n", "toy.errors", "sim imports nothing else from the package"),
        ("errors.py", "from toy.low import y\n", "toy.low", "errors is a shared leaf module"),
    ],
)
def test_a_forbidden_import_is_reported(tmp_path: Path, path: str, text: str, imported: str, reason: str) -> None:
    package_dir = _toy(tmp_path, {path: text})
    [found] = violations(package_dir, TOY)
    assert found.imported == imported
    assert found.reason.startswith(reason)
    assert str(found).startswith(f"{package_dir / path}:")


def test_a_module_outside_the_table_is_reported(tmp_path: Path) -> None:
    package_dir = _toy(tmp_path, {"stray.py": "", "low/z.py": "import toy.stray\n"})
    assert unplaced(package_dir, TOY) == ["stray"]
    [found] = violations(package_dir, TOY)
    assert found.reason == "stray has no place in the layering table"
