"""Load a policy set from files and folders: Kyverno-dialect YAML, Rego modules, Gatekeeper templates.

A broken file is reported with its file and line (PolicyError / ManifestError); callers that reload keep
their last good set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from admission.engine import Engine
from admission.engines import Evaluator, PolicyError
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


def load(paths: Iterable[str | Path]) -> Engine:
    """An Engine over every policy found under paths. Raises PolicyError or ManifestError on a broken file."""
    kyverno: list[Document] = []
    gatekeeper: list[Document] = []
    rego_files: list[Path] = []
    exceptions: list[Document] = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise PolicyError(str(path), "no such file or folder")
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
    evaluators: list[Evaluator] = []
    if kyverno:
        from admission.engines.yaml import KyvernoEvaluator

        evaluators.append(KyvernoEvaluator.from_documents(kyverno))
    if gatekeeper or rego_files:
        from admission.engines.rego import RegoEvaluator

        evaluators.append(RegoEvaluator.from_sources(gatekeeper, rego_files))
    # Namespace-label Pod Security is always on: it does nothing where no namespace asks for it.
    evaluators.append(PodSecurityAdmission.from_documents(exceptions))
    return Engine(evaluators)
