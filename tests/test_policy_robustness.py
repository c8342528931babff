"""Malformed policies are the user's to fix, never a crash: every node of the built-in Kyverno policies is
replaced by a value of the wrong type, and loading must either succeed or raise PolicyError with the
file and line; whatever loads must evaluate to results, never reach the engine's crash handler."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from admission.engine import Engine
from admission.engines import Context, PolicyError
from admission.engines.yaml import KyvernoEvaluator
from admission.manifests import Document, load_file
from admission.review import Request
from tests.conftest import REPO, pod

POLICIES = sorted((REPO / "policies").glob("*/policy.yaml"))
WRONG = (5, "x", None, {"k": 1})


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,)
            yield from paths(v, prefix + (i,))


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def deployment() -> dict[str, Any]:
    p = pod("web", "team", image="nginx")
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "team"},
            "spec": {"template": {"metadata": p["metadata"], "spec": p["spec"]}}}


@pytest.mark.parametrize("policy_file", POLICIES, ids=lambda p: Path(p).parent.name)
def test_wrongly_typed_nodes_are_policy_errors_not_crashes(policy_file: Path) -> None:
    doc = load_file(policy_file)[0]
    requests = [Request.for_object(pod("web", "team", image="nginx")), Request.for_object(deployment())]
    loaded = rejected = 0
    for path in paths(doc.obj):
        if path[0] in ("apiVersion", "kind"):
            continue  # then it is not a Kyverno policy at all, and policyset never hands it over
        for value in WRONG:
            bad = Document(replaced(doc.obj, path, value), doc.file, doc.line)
            try:
                evaluator = KyvernoEvaluator.from_documents([bad])
            except PolicyError as exc:
                assert exc.source.startswith(f"{doc.file}:"), exc
                rejected += 1
                continue
            loaded += 1
            engine = Engine([evaluator])
            mutates = any(p.mutates for p in engine.policies())
            for request in requests:
                results = engine.results(request, Context())
                if mutates:
                    results += engine.mutate(request, Context()).decision.results
                for r in results:
                    assert not r.message.startswith("internal error"), (path, value, r)
    assert rejected > 0 and loaded > 0


GATEKEEPER = sorted(p for p in (REPO / "policies" / "gatekeeper").iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", GATEKEEPER, ids=lambda p: Path(p).name)
def test_wrongly_typed_gatekeeper_documents_are_policy_errors(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from admission.engines.rego.gatekeeper import ConstraintSet

    # Parsing is what meets the malformed shapes; compiling the Rego is regopy's part, tested elsewhere.
    monkeypatch.setattr(ConstraintSet, "compile", classmethod(lambda cls, templates, constraints, **kw: None))
    docs = [load_file(folder / "template.yaml")[0]]
    docs += [d for f in sorted(folder.glob("constraint*.yaml")) for d in load_file(f)]
    rejected = 0
    for index, doc in enumerate(docs):
        for path in paths(doc.obj):
            if path[0] in ("apiVersion", "kind"):
                continue  # then it is not a Gatekeeper document, and policyset never hands it over
            for value in WRONG:
                variant = [Document(replaced(d.obj, path, value), d.file, d.line) if i == index else d
                           for i, d in enumerate(docs)]
                try:
                    ConstraintSet.from_documents(variant, isolate=False)
                except PolicyError as exc:
                    # a broken template may surface as its constraint's error: either names its file
                    assert exc.source.split(":")[0] in {d.file for d in docs}, exc
                    rejected += 1
    assert rejected > 0


# --- an empty or wrong --policies is an error, never "allow everything" ---------------------------------------

GOOD = (REPO / "policies" / "disallow-privileged" / "policy.yaml").read_text()
NO_POLICIES = ("no policy documents (Kyverno ClusterPolicy/Policy, Rego modules, Gatekeeper templates and "
               "constraints, PodSecurityException); pass --allow-empty to run without policies")


def test_a_missing_path_is_an_error_naming_it(tmp_path: Path) -> None:
    from admission.policyset import load

    with pytest.raises(PolicyError) as err:
        load([tmp_path / "nope"])
    assert str(err.value) == f"{tmp_path / 'nope'}: no such file or folder"


@pytest.mark.parametrize("content", [None, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"])
def test_a_folder_without_policies_is_an_error_unless_allowed(tmp_path: Path, content: str | None) -> None:
    from admission.policyset import load

    folder = tmp_path / "policies"
    folder.mkdir()
    if content is not None:
        (folder / "deploy.yaml").write_text(content)
    with pytest.raises(PolicyError) as err:
        load([folder])
    assert str(err.value) == f"{folder}: {NO_POLICIES}"
    with pytest.raises(PolicyError):
        load([])
    assert [p.name for p in load([folder], allow_empty=True).policies() if p.dialect != "psa"] == []


def test_one_empty_path_among_good_ones_is_still_an_error(tmp_path: Path) -> None:
    from admission.policyset import load

    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolicyError) as err:
        load([tmp_path / "good.yaml", tmp_path / "empty"])
    assert str(err.value).startswith(f"{tmp_path / 'empty'}: no policy documents")


BAD = GOOD.replace("validationFailureAction: Enforce", "validationFailureAction: Enforcee")


def bad_line() -> int:
    return next(i for i, line in enumerate(BAD.splitlines(), 1) if "Enforcee" in line)


def test_lint_exits_2_with_one_line(tmp_path: Path) -> None:
    import io

    from admission.lint import run

    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml_pod())
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "bad.yaml").write_text(BAD)
    cases = {
        str(tmp_path / "nope"): f"error: cannot load policies: {tmp_path / 'nope'}: no such file or folder\n",
        str(empty): f"error: cannot load policies: {empty}: {NO_POLICIES}\n",
        str(tmp_path / "bad.yaml"): f"error: cannot load policies: {tmp_path / 'bad.yaml'}:{bad_line()}: "
                                    "spec.validationFailureAction: 'Enforcee' is not one of Enforce, Audit; "
                                    "did you mean 'Enforce'?\n",
    }
    for policies, message in cases.items():
        out, err = io.StringIO(), io.StringIO()
        assert run([str(manifest)], [policies], "text", out, err=err) == 2
        assert err.getvalue() == message and out.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    assert run([str(manifest)], [str(empty)], "text", out, err=err, allow_empty=True) == 0


def yaml_pod() -> str:
    import json

    return json.dumps(pod("web", "team", image="nginx"))


def test_the_cli_exits_2_for_lint_test_and_audit(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from admission.cli import main

    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml_pod())
    empty = tmp_path / "empty"
    empty.mkdir()
    lint = CliRunner().invoke(main, ["lint", str(manifest), "--policies", str(empty)])
    assert lint.exit_code == 2 and f"{empty}: no policy documents" in lint.output
    assert CliRunner().invoke(main, ["lint", str(manifest), "--policies", str(empty), "--allow-empty"]).exit_code == 0
    test = CliRunner().invoke(main, ["test", str(empty)])
    assert test.exit_code == 2
    assert test.output == f"error: no policy tests (PolicyTest, kyverno-test.yaml, Gatekeeper Suite) in: {empty}\n"
    audit = CliRunner().invoke(main, ["audit", "--policies", str(tmp_path / "nope")])
    assert audit.exit_code == 2 and f"{tmp_path / 'nope'}: no such file or folder" in audit.output


def test_audit_refuses_an_empty_set_before_listing_the_cluster(tmp_path: Path) -> None:
    import io

    from admission.audit import run

    def lister(*_args: Any, **_kw: Any) -> Any:
        raise AssertionError("the cluster must not be listed")

    err = io.StringIO()
    assert run([str(tmp_path)], "text", io.StringIO(), lister=lister, err=err) == 2
    assert err.getvalue() == f"error: cannot load policies: {tmp_path}: {NO_POLICIES}\n"


@pytest.mark.parametrize("which", ["missing", "empty", "bad"])
def test_serve_refuses_to_start(tmp_path: Path, which: str, capsys: pytest.CaptureFixture[str]) -> None:
    from admission.server import run

    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text(BAD)
    given = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "bad": tmp_path / "bad.yaml"}[which]
    expected = {
        "missing": f"{given}: no such file or folder",
        "empty": f"{given}: {NO_POLICIES}",
        "bad": f"{given}:{bad_line()}: spec.validationFailureAction: 'Enforcee' is not one of Enforce, Audit; "
               "did you mean 'Enforce'?",
    }[which]
    assert run(policies=(str(given),), insecure_http=True, cluster=False) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"admission serve: cannot load policies: {expected}"


def test_reload_keeps_the_last_good_set(tmp_path: Path) -> None:
    from admission.reload import Policies

    folder = tmp_path / "policies"
    folder.mkdir()
    policy = folder / "policy.yaml"
    policy.write_text(GOOD)
    policies = Policies([folder])
    assert policies.load() and policies.engine is not None
    good = policies.engine
    policy.write_text(BAD)
    assert not policies.load()
    assert policies.engine is good
    assert policies.error == (f"{policy}:{bad_line()}: spec.validationFailureAction: 'Enforcee' is not one of "
                              "Enforce, Audit; did you mean 'Enforce'?")
    policy.unlink()
    assert not policies.load()
    assert policies.engine is good and policies.error == f"{folder}: {NO_POLICIES}"
    allowing = Policies([folder], allow_empty=True)
    assert allowing.load() and allowing.engine is not None
    policy.write_text(GOOD)
    assert policies.load() and policies.engine is not good and policies.error == ""


def test_serve_workers_get_allow_empty_through_their_settings(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from admission.server import SETTINGS_ENV, Settings, create_app

    for allow_empty in (False, True):
        monkeypatch.setenv(SETTINGS_ENV, Settings(policies=[str(tmp_path)], allow_empty=allow_empty).to_env())
        app = create_app(Settings.from_env())
        assert app.webhook.policies.load() is allow_empty
        if not allow_empty:
            assert app.webhook.policies.error == f"{tmp_path}: {NO_POLICIES}"
