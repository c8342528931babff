"""Which cluster: the kubernetes client's ApiClient for `serve`, `audit` and `register`.

The order is the one controller-runtime documents for its `--kubeconfig` flag:

1. `--kubeconfig FILE` and/or `--context NAME` given: that kubeconfig (or `$KUBECONFIG`, or
   `~/.kube/config`) with that context. Anything wrong with them is an error, never a silent fallback.
2. `$KUBECONFIG` set: those files (colon-separated, merged as kubectl merges them), current context.
3. Running in a Pod: the in-cluster service account (`KUBERNETES_SERVICE_HOST` and the mounted token).
4. `~/.kube/config`, when it exists.

Otherwise there is no cluster, and `connect` raises ClusterError saying so. Each call builds its own
`Configuration`, so two connections (say, two contexts) never share the client's process-wide default.
Only the kubernetes client's public API is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


class ClusterError(Exception):
    """No cluster configured, or the kubeconfig asked for cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Cluster:
    api: ApiClient
    how: str  # where the configuration came from, for logs: "kubeconfig ~/.kube/config (context kind)", ...
    host: str


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short line: the Kubernetes client's errors span many lines (urllib3 nests the
    cause, ApiException appends headers and body)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def default_kubeconfig() -> str:
    return os.path.expanduser(os.path.join("~", ".kube", "config"))


def connect(kubeconfig: str | None = None, context: str | None = None, *, retries: int | None = None) -> Cluster:
    """An ApiClient for the cluster chosen as the module docstring says. `retries` overrides urllib3's
    (0: an unreachable API server is reported at once, as `audit` wants)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    how = ""
    env = os.environ.get("KUBECONFIG") or ""
    if kubeconfig or context:
        files = kubeconfig or env or default_kubeconfig()
        how = _load_kubeconfig(files, context, configuration)
    elif env:
        how = _load_kubeconfig(env, None, configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
            how = "in-cluster service account"
        except config.ConfigException:
            default = default_kubeconfig()
            if not Path(default).exists():
                raise ClusterError("no Kubernetes cluster configured: not running in a Pod, no $KUBECONFIG, no "
                                   f"{default}; pass --kubeconfig") from None
            how = _load_kubeconfig(default, None, configuration)
    if retries is not None:
        configuration.retries = retries
    return Cluster(client.ApiClient(configuration), how, str(configuration.host))


def _load_kubeconfig(files: str, context: str | None, configuration: Any) -> str:
    from kubernetes import config

    paths = [p for p in files.split(os.pathsep) if p]
    missing = [p for p in paths if not Path(p).exists()]
    if missing and len(missing) == len(paths):
        raise ClusterError(f"no Kubernetes cluster configured: kubeconfig {files} does not exist")
    try:
        config.load_kube_config(config_file=files, context=context or None, client_configuration=configuration)
    except Exception as exc:  # a malformed file, an unknown context, a missing certificate file...
        ctx = f" (context {context})" if context else ""
        raise ClusterError(f"kubeconfig unusable: {files}{ctx}: {one_line(exc)}") from None
    return f"kubeconfig {files}" + (f" (context {context})" if context else "")
