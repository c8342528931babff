"""What a fresh install gets: every module imports, every import is declared, and a built wheel carries
the built-in library and runs from it (not only the editable tree)."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import os
import pkgutil
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import admission

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def all_modules() -> list[str]:
    """Every module but `__main__`, which runs the command line when imported (tested below)."""
    found = (m.name for m in pkgutil.walk_packages(admission.__path__, "admission."))
    return sorted(n for n in found if not n.endswith(".__main__"))


def test_the_module_runs_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "admission", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "lint" in done.stdout and "serve" in done.stdout


@pytest.mark.parametrize("name", all_modules())
def test_every_module_imports(name: str) -> None:
    assert importlib.import_module(name).__name__ == name


def test_the_package_list_names_every_package_folder() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "admission").rglob("__init__.py")
    }
    assert folders <= listed, f"add to [tool.setuptools] packages: {sorted(folders - listed)}"
    assert "admission.builtin_policies" in listed


def _requirement_name(spec: str) -> str:
    return re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0].lower().replace("_", "-")


def test_every_third_party_import_is_declared() -> None:
    """An import of the package must come from a distribution named in `dependencies`, or from the
    standard library: a dependency that only happened to be installed would break a fresh install."""
    declared = {_requirement_name(d) for d in PYPROJECT["project"]["dependencies"]}
    providers = importlib.metadata.packages_distributions()
    undeclared: dict[str, str] = {}
    for path in (REPO / "admission").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "admission" or top in sys.stdlib_module_names:
                    continue
                dists = {d.lower().replace("_", "-") for d in providers.get(top, [])}
                if not dists & declared:
                    undeclared[top] = f"{path.relative_to(REPO)} (from {sorted(dists) or 'nothing installed'})"
    assert not undeclared, f"imports not declared in pyproject.toml dependencies: {undeclared}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    if done.returncode and "No module named" in done.stderr and "setuptools" in done.stderr:
        pytest.skip("setuptools is not installed here, so no wheel can be built without network isolation")
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("admission-*.whl")
    return built


def test_the_wheel_ships_the_builtin_library(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.removeprefix("admission/builtin_policies/") for n in names if n.startswith("admission/builtin_policies/")}
    in_repo = {str(p.relative_to(REPO / "policies")) for p in (REPO / "policies").rglob("*") if p.is_file()}
    assert in_repo and in_repo == shipped


@pytest.mark.slow
def test_the_installed_wheel_lints_and_tests_with_its_own_library(wheel: Path, tmp_path: Path) -> None:
    """The wheel's files alone (unpacked as an installer would, with the source tree out of reach) find
    the built-in library: `lint` denies a bad Pod and `test` runs the library's own cases."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: team}\n"
        "spec:\n  containers:\n  - name: app\n    image: nginx\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ADMISSION_POLICIES", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)

    def admission_cmd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "admission", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    where = subprocess.run(
        [sys.executable, "-c", "import admission.policyset as p; print(p.builtin_policies())"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert Path(where) == site / "admission" / "builtin_policies"

    linted = admission_cmd("lint", str(manifest))
    assert linted.returncode == 1, linted.stdout + linted.stderr
    assert "disallow-public-registries" in linted.stdout

    tested = admission_cmd("test", where)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert re.search(r"^\d+ passed, 0 failed", tested.stdout, re.M), tested.stdout
