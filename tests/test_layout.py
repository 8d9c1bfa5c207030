"""The packages and the one direction their imports point in (DESIGN.md, "Packages")."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OURS = {"edge_agent", "hub_sync", "provisioning", "firmware", "classroom_ui"}
# what each package may import from the others
ALLOWED = {
    "hub_sync": set(),
    "classroom_ui": set(),  # presentation only: it knows nothing of storage
    "firmware": {"hub_sync"},
    "edge_agent": {"hub_sync", "firmware", "classroom_ui"},
    "provisioning": {"hub_sync", "edge_agent"},
}
# the CLI is the top and adds every package's commands; the demo orchestrates like the CLI
TOP = {"edge_agent/cli.py", "edge_agent/demo/county_hub.py"}


def imported_packages(path: Path) -> set[str]:
    """Our top-level packages that ``path`` imports (absolute imports only; relative stay inside)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


def test_every_package_of_the_layout_is_there():
    for name in ("edge_agent", "hub_sync", "firmware", "provisioning", "classroom_ui", "tests"):
        assert (REPO / name).is_dir(), name
    for name in ALLOWED:
        assert (REPO / name / "__init__.py").is_file(), name


def test_imports_point_one_way():
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel in TOP:
                continue
            bad = imported_packages(path) - allowed - {package}
            if bad:
                wrong.append(f"{rel} imports {sorted(bad)}")
    assert wrong == []


def test_the_layout_check_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("import os\nfrom edge_agent.app import create_app\nfrom . import x\n", "utf-8")
    assert imported_packages(bad) == {"edge_agent"}


def test_one_version_for_the_installed_software():
    import firmware
    import edge_agent
    from importlib.metadata import version

    assert edge_agent.__version__ == firmware.__version__ == version("school-edge")
