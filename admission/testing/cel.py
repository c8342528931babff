"""What the kyverno CLI's Test format adds for CEL admission policies (ValidatingAdmissionPolicy,
MutatingAdmissionPolicy), kept apart from the runner (admission.testing.kyverno) it plugs into:

- `paramResources`: files of objects that bindings' `paramRef` reads as `params`; they join the test's cluster
  state (they are not reviewed themselves);
- the Values file's `namespaceSelector` entries (a namespace's name and labels) become Namespace objects in the
  cluster state where the test has none, so that `namespaceObject` and the policies' namespace selectors see
  them, as the CLI gives them.

Results of these kinds name no rule (`isValidatingAdmissionPolicy: true`, `isMutatingAdmissionPolicy: true`):
the runner's rule matching takes an empty rule as any rule of the policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from admission.state import ClusterState
from admission.types import Object


def param_resources(base: Path, doc: Mapping[str, Any], load: Callable[[Path, list[Any]], list[Object]]) -> list[Object]:
    """The objects of the test's `paramResources` files (loaded as the runner loads resources)."""
    files = doc.get("paramResources") or []
    return load(base, list(files)) if isinstance(files, list) else []


def add_namespaces(state: ClusterState, labels: Mapping[str, Mapping[str, str]]) -> None:
    """A Namespace object for each namespace the Values file gives labels for, unless the state has one."""
    for name, lbls in labels.items():
        if name and state.get("Namespace", name) is None:
            state.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(lbls)}})
