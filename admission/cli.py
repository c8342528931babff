"""The `admission` command: a thin shell over the engine. Only this module knows about terminals."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def cluster_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--kubeconfig and --context (admission.cluster: otherwise $KUBECONFIG, in-cluster, ~/.kube/config)."""
    command = click.option("--context", default=None, help="Kubeconfig context to use. Default: its current context.")(command)
    return click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False),
                        help="Kubeconfig file. Default: $KUBECONFIG, then the in-cluster service account, then "
                             "~/.kube/config.")(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="admission")
def main() -> None:
    """Kubernetes admission control with Kyverno-dialect YAML rules and Rego (OPA, Gatekeeper)."""


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True,
              help="Address to listen on. The default, every IPv4 interface, is what a Pod needs; use 127.0.0.1 "
                   "to serve this machine only.")
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
@click.option("--policies", "policies", multiple=True, help="Policy file or folder (repeatable). Default: built-in library.")
@click.option("--cert", type=click.Path(dir_okay=False), help="Serving certificate (PEM). Default: generate under certs/.")
@click.option("--key", type=click.Path(dir_okay=False), help="Private key of --cert (PEM).")
@click.option("--certs-dir", default="certs", show_default=True, help="Where generated dev certificates live.")
@click.option("--service", default="admission", show_default=True, help="Service name for the certificate's DNS names.")
@click.option("--namespace", default="admission", show_default=True,
              help="The server's namespace: its Service's (certificate names) and the break-glass ConfigMap's.")
@click.option("--max-body-bytes", default=3 * 1024 * 1024, show_default=True, type=int)
@click.option("--timeout", "timeout_seconds", default=8.0, show_default=True, type=float,
              help="Per-request evaluation deadline in seconds; keep it below the webhook's timeoutSeconds.")
@click.option("--keep-alive-timeout", default=5, show_default=True, type=int,
              help="Close a keep-alive connection idle this many seconds.")
@click.option("--max-connections", default=1000, show_default=True, type=int,
              help="Per worker: past this many open connections or requests in progress, answer 503 at once.")
@click.option("--http", type=click.Choice(["httptools", "h11"]), default="httptools", show_default=True,
              help="HTTP parser: httptools (faster) or h11 (also bounds the header block while parsing).")
@click.option("--insecure-http", is_flag=True, help="Serve plain HTTP (for local experiments behind a TLS proxy).")
@click.option("--cluster/--no-cluster", default=True, show_default=True,
              help="Watch cluster state (NetworkPolicies, Namespaces) through the Kubernetes API.")
@click.option("--state", "state_paths", multiple=True,
              help="Manifests to use as cluster state instead of watching a cluster (repeatable).")
@click.option("--watch-policies/--no-watch-policies", default=True, show_default=True,
              help="Reload the policies when their files change (SIGHUP reloads too).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--allow-empty", is_flag=True,
              help="Run with an empty policy set (otherwise a --policies path without policies is an error).")
@cluster_options
def serve(**options: object) -> None:
    """Run the HTTPS admission webhook server."""
    from admission.server import run

    sys.exit(run(**options))  # type: ignore[arg-type]


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--policies", "policies", multiple=True, help="Policy file or folder (repeatable). Default: built-in library.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "junit"]), default="text", show_default=True)
@click.option("--allow-empty", is_flag=True,
              help="Run with an empty policy set (otherwise a --policies path without policies is an error).")
@click.option("--allow-no-resources", is_flag=True,
              help="Input without any Kubernetes resource is not an error (for hooks handed every changed YAML file).")
def lint(paths: tuple[str, ...], policies: tuple[str, ...], fmt: str, allow_empty: bool,
         allow_no_resources: bool) -> None:
    """Check manifests against the policies; exit 1 when an enforced rule fails."""
    from admission.lint import run

    sys.exit(run(list(paths), list(policies), fmt, sys.stdout, allow_empty=allow_empty,
                 allow_no_resources=allow_no_resources))


@main.command()
@click.option("--policies", "policies", multiple=True, help="Policy file or folder (repeatable). Default: built-in library.")
@click.option("-o", "--format", "fmt", type=click.Choice(["text", "json", "sarif", "junit", "policyreport"]),
              default="text", show_default=True,
              help="What to print; policyreport prints the reports (YAML) that --write-reports would write.")
@click.option("--kind", "kinds", multiple=True,
              help="apiVersion/Kind to list (repeatable), e.g. apps/v1/Deployment. Default: workloads and common kinds.")
@click.option("-n", "--namespace", default="", help="Only this namespace. Default: all.")
@click.option("--include-owned", is_flag=True, help="Also report objects a controller owns (ReplicaSets, Pods, Jobs).")
@click.option("--allow-empty", is_flag=True,
              help="Run with an empty policy set (otherwise a --policies path without policies is an error).")
@click.option("--write-reports", is_flag=True,
              help="Also write the results to the cluster as policy reports, one per namespace (server-side apply).")
@click.option("--report-format", type=click.Choice(["wgpolicyk8s", "openreports"]), default="wgpolicyk8s",
              show_default=True, help="wgpolicyk8s.io/v1alpha2 PolicyReport or openreports.io/v1alpha1 Report.")
@click.option("--max-results", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Results kept per report (fail first, then error, warn, pass); the summary counts all.")
@cluster_options
def audit(policies: tuple[str, ...], fmt: str, kinds: tuple[str, ...], namespace: str, include_owned: bool,
          allow_empty: bool, write_reports: bool, report_format: str, max_results: int, kubeconfig: str | None,
          context: str | None) -> None:
    """Check what already runs in the cluster (current kubeconfig context) against the policies."""
    from admission.audit import run

    with _progress_bar("auditing") as progress:
        sys.exit(run(list(policies), fmt, sys.stdout, kinds=list(kinds), namespace=namespace,
                     include_owned=include_owned, allow_empty=allow_empty, write=write_reports,
                     report_format=report_format, max_results=max_results, progress=progress,
                     kubeconfig=kubeconfig, context=context))


# A progress bar appears only on a terminal, and only once an audit has this many resources to evaluate.
PROGRESS_MIN = 200


@contextlib.contextmanager
def _progress_bar(what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A `progress(done, total)` callback drawing a bar on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task: list[Any] = []

    def update(done: int, total: int) -> None:
        if total < PROGRESS_MIN:
            return
        if not task:
            bar.start()
            task.append(bar.add_task(what, total=total))
        bar.update(task[0], completed=done)

    try:
        yield update
    finally:
        bar.stop()


@main.command()
@click.option("--policies", "policies", multiple=True, help="Policy file or folder (repeatable). Default: built-in library.")
def webhooks(policies: tuple[str, ...]) -> None:
    """Print the webhook rules the policies need (the `rules:` of deploy/webhooks.yaml's two webhooks)."""
    import yaml

    from admission.engines import PolicyError
    from admission.lint import load_engine
    from admission.manifests import ManifestError
    from admission.webhooks import derived

    try:
        engine = load_engine(list(policies))
    except (PolicyError, ManifestError) as exc:
        click.echo(f"error: cannot load policies: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    rules = derived(engine.policies())
    doc = {"validate (ValidatingWebhookConfiguration, /validate)": rules["validate"],
           "mutate (MutatingWebhookConfiguration, /mutate)": rules["mutate"]}
    click.echo(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None), nl=False)


@main.command(name="test")
@click.argument("paths", nargs=-1, required=True)
@click.option("-v", "--verbose", is_flag=True, help="Print passing results too.")
def test_cmd(paths: tuple[str, ...], verbose: bool) -> None:
    """Run policy test suites (our format, kyverno-test.yaml, Gatekeeper Suite)."""
    from admission.testing import run

    sys.exit(run(list(paths), sys.stdout, verbose=verbose))
