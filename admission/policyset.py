"""Load a policy set from files and folders: Kyverno-dialect YAML, Kyverno's CEL kinds, Rego modules,
Gatekeeper templates (Rego, or CEL: see admission.engines.cel.gatekeeper_cel).

A broken file is reported with its file and line (PolicyError / ManifestError); callers that reload keep
their last good set. A missing path, a path without any policy document and an empty set are errors too
(unless an empty set is asked for), so that a wrong --policies never means "allow everything".
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from admission.engine import Engine
from admission.engines import Evaluator, PolicyError
from admission.engines.cel.gatekeeper_cel import split as split_gatekeeper
from admission.engines.cel.kyverno_policies import is_cel_policy
from admission.engines.psa import PodSecurityAdmission
from admission.manifests import Document, find_files, load_file

POLICY_SUFFIXES = (".yaml", ".yml", ".json", ".rego")


def builtin_policies() -> Path:
    """The built-in policy library (ADMISSION_POLICIES overrides). An installed package carries it as
    `admission/builtin_policies/` (package data); a source checkout, editable installs included, reads
    the repository's `policies/` folder."""
    override = os.environ.get("ADMISSION_POLICIES")
    if override:
        return Path(override)
    package = Path(__file__).resolve().parent
    shipped = package / "builtin_policies"
    if shipped.is_dir():
        return shipped
    return package.parent / "policies"


def is_kyverno(doc: Document) -> bool:
    obj = doc.obj
    return (
        isinstance(obj, dict)
        and obj.get("kind") in ("ClusterPolicy", "Policy")
        and str(obj.get("apiVersion", "")).startswith("kyverno.io/")
    )


def is_gatekeeper(doc: Document) -> bool:
    obj = doc.obj
    if not isinstance(obj, dict):
        return False
    api = str(obj.get("apiVersion", ""))
    return api.startswith("templates.gatekeeper.sh/") or api.startswith("constraints.gatekeeper.sh/")


def is_psa_exception(doc: Document) -> bool:
    obj = doc.obj
    return (
        isinstance(obj, dict)
        and obj.get("kind") == "PodSecurityException"
        and str(obj.get("apiVersion", "")).startswith("admission.dev/")
    )


OPT_IN_MARKER = ".opt-in"


def opt_in_skipped(root: Path, file: Path) -> bool:
    """A sub-folder holding an `.opt-in` file (e.g. policies/gatekeeper, the same guardrails in the other
    dialect) is loaded only when it, or a path inside it, is given, not as part of a parent folder."""
    if not root.is_dir():
        return False
    for parent in file.relative_to(root).parents:
        if parent != Path(".") and (root / parent / OPT_IN_MARKER).exists():
            return True
    return False


KYVERNO_KINDS = ("ClusterPolicy", "Policy")


def _kyverno_kind_problem(doc: Document) -> str:
    """Why a kyverno.io document that is not a ClusterPolicy/Policy cannot be loaded, or "" for other documents.

    Such a document is never silently skipped: a misspelt kind or apiVersion, or a kind this engine does not
    run (a PolicyException, a CleanupPolicy), would otherwise not mean what its author thinks."""
    from admission.engines.yaml.schema import did_you_mean

    obj = doc.obj
    if not isinstance(obj, dict):
        return ""
    api = str(obj.get("apiVersion", ""))
    if not api.startswith("kyverno.io/"):
        group = api.rpartition("/")[0] or api
        if obj.get("kind") in KYVERNO_KINDS and group != "kyverno.io" and did_you_mean(group, ["kyverno.io"]):
            return f"apiVersion: {api!r} is not Kyverno's{did_you_mean(group, ['kyverno.io'])}"
        return ""
    kind = obj.get("kind")
    if kind in KYVERNO_KINDS:
        return ""
    from admission.engines.cel.kyverno_policies import KINDS as CEL_KINDS

    if kind in CEL_KINDS and kind != "PolicyException":  # kyverno.io has its own PolicyException
        return f"kind: {kind} is in the policies.kyverno.io group, not {api}; did you mean 'policies.kyverno.io/v1'?"
    hint = did_you_mean(str(kind), KYVERNO_KINDS) if isinstance(kind, str) else ""
    return f"kind: {kind!r} of {obj.get('apiVersion')} is not supported (only ClusterPolicy and Policy){hint}"


NO_POLICIES = ("no policy documents (Kyverno ClusterPolicy/Policy, Rego modules, Gatekeeper templates and "
               "constraints, PodSecurityException); pass --allow-empty to run without policies")


def load(paths: Iterable[str | Path], *, allow_empty: bool = False, offline: bool = False) -> Engine:
    """An Engine over every policy found under paths. Raises PolicyError or ManifestError on a broken file.

    A path that does not exist is an error naming it; so is a path holding no policy document, and an empty
    set, unless allow_empty (asked for explicitly, e.g. `--allow-empty`). offline (lint, test, audit): a
    ValidatingAdmissionPolicy or MutatingAdmissionPolicy without a binding applies wherever it matches, as
    the kyverno CLI applies it; otherwise (serve) it does nothing, as in the API server."""
    from admission.engines.cel.policy import is_admission_policy

    cel: list[Document] = []
    kyverno: list[Document] = []
    gatekeeper: list[Document] = []
    rego_files: list[Path] = []
    exceptions: list[Document] = []
    kyverno_cel: list[Document] = []  # Kyverno's CEL kinds (policies.kyverno.io)
    paths = list(paths)
    if not paths and not allow_empty:
        raise PolicyError("--policies", NO_POLICIES)
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise PolicyError(str(path), "no such file or folder")
        found = len(kyverno) + len(gatekeeper) + len(rego_files) + len(exceptions) + len(cel) + len(kyverno_cel)
        for f in find_files(path, POLICY_SUFFIXES):
            if opt_in_skipped(path, f):
                continue
            if f.suffix == ".rego":
                if not f.name.endswith("_test.rego"):
                    rego_files.append(f)
                continue
            for doc in load_file(f):
                if is_kyverno(doc):
                    kyverno.append(doc)
                elif is_gatekeeper(doc):
                    gatekeeper.append(doc)
                elif is_psa_exception(doc):
                    exceptions.append(doc)
                elif is_admission_policy(doc):
                    cel.append(doc)
                elif is_cel_policy(doc.obj):
                    kyverno_cel.append(doc)
                elif problem := _kyverno_kind_problem(doc):
                    raise PolicyError(f"{doc.file}:{doc.line}", problem)
        if not allow_empty and found == (len(kyverno) + len(gatekeeper) + len(rego_files) + len(exceptions) + len(cel)
                                         + len(kyverno_cel)):
            raise PolicyError(str(path), NO_POLICIES)
    evaluators: list[Evaluator] = []
    if kyverno:
        from admission.engines.yaml import KyvernoEvaluator

        evaluators.append(KyvernoEvaluator.from_documents(kyverno))
    if kyverno_cel:
        from admission.engines.cel.kyverno_evaluator import CelPolicyEvaluator

        evaluators.append(CelPolicyEvaluator.from_documents(kyverno_cel))
    # templates whose CEL code entry runs (gatekeeper_cel.ENGINE), with their constraints, go to CEL
    gatekeeper, gatekeeper_cel = split_gatekeeper(gatekeeper)
    if gatekeeper or rego_files:
        from admission.engines.rego import RegoEvaluator

        evaluators.append(RegoEvaluator.from_sources(gatekeeper, rego_files))
    if gatekeeper_cel:
        from admission.engines.cel.gatekeeper_cel import GatekeeperCelEvaluator

        evaluators.append(GatekeeperCelEvaluator.from_documents(gatekeeper_cel))
    if cel:
        from admission.engines.cel.evaluator import CelEvaluator

        evaluators.append(CelEvaluator.from_documents(cel, apply_unbound=offline))
    # Namespace-label Pod Security is always on: it does nothing where no namespace asks for it.
    evaluators.append(PodSecurityAdmission.from_documents(exceptions))
    return Engine(evaluators)
