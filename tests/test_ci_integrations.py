"""The CI integrations run what they say: the pre-commit hook's entry (.pre-commit-hooks.yaml), the GitHub
composite action's lint step (action.yml) and the GitLab CI snippet of the README, each read from its file
and run against fixture manifests with the installed `admission` command."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

GOOD = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "good", "namespace": "team"},
        "spec": {"selector": {"matchLabels": {"app": "good"}}, "template": {
            "metadata": {"labels": {"app": "good"}},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.0",
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                                                   "limits": {"memory": "32Mi"}}}]}}}}
NETPOL = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "all", "namespace": "team"}, "spec": {"podSelector": {}}}
BAD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "namespace": "team"},
       "spec": {"containers": [{"name": "app", "image": "nginx:latest"}]}}


def env() -> dict[str, str]:
    """The environment with the `admission` command of this interpreter first on PATH."""
    bindir = Path(sys.executable).parent
    if shutil.which("admission", path=str(bindir)) is None:
        pytest.skip(f"no `admission` command beside {sys.executable}: install the package (pip install -e .)")
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "good.yaml").write_text(yaml.safe_dump_all([NETPOL, GOOD]))
    (deploy / "bad.yml").write_text(yaml.safe_dump(BAD))
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: nginx}\n")
    (tmp_path / "notes.txt").write_text("not yaml\n")
    return tmp_path


# --- pre-commit ---------------------------------------------------------------------------------------------


def hook() -> dict[str, Any]:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    (found,) = [h for h in hooks if h["id"] == "admission-lint"]
    return found


def run_hook(project: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """As pre-commit runs it: entry, then args, then the staged files its `types` select."""
    h = hook()
    assert h["language"] == "python" and h["types"] == ["yaml"]
    selected = [f for f in files if Path(f).suffix in (".yaml", ".yml")]  # identify's `yaml` tag
    cmd = [*shlex.split(h["entry"]), *h.get("args", []), *selected]
    return subprocess.run(cmd, cwd=project, env=env(), capture_output=True, text=True, timeout=120)


def test_pre_commit_hook_fails_on_an_enforced_finding(project: Path) -> None:
    out = run_hook(project, "deploy/bad.yml", "deploy/good.yaml", "notes.txt")
    assert out.returncode == 1, out.stderr
    assert "Pod team/bad: deny [disallow-latest-tag" in out.stdout


def test_pre_commit_hook_passes_clean_manifests_and_non_kubernetes_yaml(project: Path) -> None:
    out = run_hook(project, "deploy/good.yaml", "compose.yaml")
    assert out.returncode == 0, out.stdout + out.stderr
    only_other_yaml = run_hook(project, "compose.yaml")
    assert only_other_yaml.returncode == 0, only_other_yaml.stderr
    assert "not a Kubernetes object" in only_other_yaml.stdout


def test_pre_commit_hook_takes_policies_as_args(project: Path) -> None:
    h = hook()
    cmd = [*shlex.split(h["entry"]), "--policies", str(REPO / "policies" / "disallow-privileged"), "deploy/bad.yml"]
    out = subprocess.run(cmd, cwd=project, env=env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout  # only the privileged check: the bad Pod passes it


# --- the GitHub composite action ------------------------------------------------------------------------------


def action() -> dict[str, Any]:
    return yaml.safe_load((REPO / "action.yml").read_text())


def step(doc: dict[str, Any], **match: str) -> dict[str, Any]:
    (found,) = [s for s in doc["runs"]["steps"] if all(str(s.get(k, "")).startswith(v) for k, v in match.items())]
    return found


def resolve(text: str, inputs: dict[str, str]) -> str:
    """`${{ inputs.NAME }}` as GitHub substitutes it (the action's defaults, overridden by `inputs`)."""
    defaults = {k: str(v.get("default", "")) for k, v in action()["inputs"].items()}

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        assert name in defaults, f"the action has no input {name}"
        return inputs.get(name, defaults[name])

    return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", value, text)


def run_lint_step(project: Path, **inputs: str) -> tuple[int, dict[str, str], Path]:
    lint = step(action(), id="lint")
    assert lint["shell"] == "bash"
    output = project / "github-output"
    output.write_text("")
    step_env = {k: resolve(str(v), inputs) for k, v in lint["env"].items()}
    done = subprocess.run(["bash", "-e", "-c", lint["run"]], cwd=project, capture_output=True, text=True,
                          env={**env(), **step_env, "GITHUB_OUTPUT": str(output)}, timeout=120)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return done.returncode, outputs, project / step_env["SARIF_FILE"]


def test_action_lint_step_writes_sarif_and_reports_the_exit_code(project: Path) -> None:
    code, outputs, sarif = run_lint_step(project, paths="deploy/")
    assert code == 0  # findings do not stop the job before the upload; a later step fails it
    assert outputs == {"exit-code": "1"}
    doc = json.loads(sarif.read_text())
    assert doc["version"] == "2.1.0"
    failing = {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) for r in doc["runs"][0]["results"]
               if r["level"] == "error"}
    assert ("disallow-latest-tag", "deploy/bad.yml") in failing


def test_action_lint_step_with_policies_and_a_clean_run(project: Path) -> None:
    (project / "deploy" / "bad.yml").unlink()
    (project / "out").mkdir()
    code, outputs, sarif = run_lint_step(project, paths="deploy/ compose.yaml", policies=str(REPO / "policies"),
                                         **{"sarif-file": "out/report.sarif"})
    assert code == 0 and outputs == {"exit-code": "0"}
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    assert all(r["level"] == "warning" for r in results)  # audit-mode findings only


def test_action_lint_step_fails_on_unusable_input(project: Path) -> None:
    code, outputs, _ = run_lint_step(project, paths="missing/")
    assert code == 2 and outputs == {"exit-code": "2"}


def test_action_installs_itself_uploads_to_code_scanning_and_fails_on_findings() -> None:
    doc = action()
    assert doc["runs"]["using"] == "composite"
    install = step(doc, name="Install admission")
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}" and '"$ACTION_PATH"' in install["run"]
    assert (REPO / "pyproject.toml").is_file()  # the action's folder is an installable package
    upload = step(doc, uses="github/codeql-action/upload-sarif@")
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    assert "inputs.upload == 'true'" in upload["if"] and "always()" in upload["if"]
    fail = step(doc, name="Fail on enforced findings")
    assert "steps.lint.outputs.exit-code == '1'" in fail["if"] and "exit 1" in fail["run"]
    assert set(doc["inputs"]) >= {"paths", "policies", "sarif-file", "upload", "fail-on-findings"}


# --- the GitLab CI snippet of the README ----------------------------------------------------------------------


def gitlab_job() -> dict[str, Any]:
    readme = (REPO / "README.md").read_text()
    after = readme[readme.index("**GitLab CI.**"):]
    block = re.search(r"```yaml\n(.*?)```", after, re.S)
    assert block, "no yaml block after **GitLab CI.** in the README"
    return yaml.safe_load(block.group(1))["admission-lint"]


def test_gitlab_snippet_runs_and_writes_the_junit_report_it_uploads(project: Path) -> None:
    job = gitlab_job()
    commands = [c for c in job["script"] if c.startswith("admission ")]  # the install line needs a network
    assert commands and any(c.startswith("pip install") for c in job["script"])
    report = job["artifacts"]["reports"]["junit"]
    assert job["artifacts"]["when"] == "always"
    done = subprocess.run(["bash", "-e", "-c", "\n".join(commands)], cwd=project, env=env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1  # the job fails on the enforced finding
    suites = ET.parse(project / report).getroot()
    assert int(suites.get("failures", "0")) >= 1
    (project / "deploy" / "bad.yml").unlink()
    clean = subprocess.run(["bash", "-e", "-c", "\n".join(commands)], cwd=project, env=env(), capture_output=True,
                           text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr
