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
@click.option("--cert", type=click.Path(dir_okay=False), help="Serving certificate (PEM), reloaded when it changes. Default: generate under --certs-dir.")
@click.option("--key", type=click.Path(dir_okay=False), help="Private key of --cert (PEM).")
@click.option("--certs-dir", default=None,
              help="Where generated certificates live; a relative folder is under $ADMISSION_HOME (default: "
                   "~/.local/share/admission). Default: certs.")
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
@click.option("--register", is_flag=True,
              help="Register the webhooks (as `admission register`) and keep them in step with the policies.")
@click.option("--register-url", default="",
              help="With --register: https://HOST:PORT the API server calls. Default: the Service "
                   "NAMESPACE/SERVICE:443.")
@click.option("--webhook-name", default="admission", show_default=True,
              help="With --register: name of the webhook configurations.")
@click.option("--ca-bundle", type=click.Path(dir_okay=False),
              help="With --register: caBundle file. Default: the generated CA bundle (needed with --cert).")
@click.option("--namespace-label", "namespace_labels", multiple=True,
              help="With --register: KEY=VALUE (repeatable), only namespaces with these labels.")
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


@main.command()
@click.option("--policies", "policies", multiple=True, help="Policy file or folder (repeatable). Default: built-in library.")
@click.option("--url", default="", help="https://HOST:PORT of a server outside the cluster (/validate, /mutate are appended).")
@click.option("--service", default="", help="NAMESPACE/NAME[:PORT] of the Service in front of the server (port 443).")
@click.option("--name", default="admission", show_default=True, help="Name of both webhook configurations.")
@click.option("--namespace", default="", help="The server's own namespace, always excluded. Default: the Service's, "
                                              "else admission.")
@click.option("--ca-bundle", type=click.Path(dir_okay=False), help="PEM CA bundle for caBundle. Default: ca.pem of "
                                                                    "--certs-dir.")
@click.option("--certs-dir", default=None, help="Certificates folder (relative: under $ADMISSION_HOME, see `admission "
                                                "certs`).")
@click.option("--inject-ca-from", default="", help="NAMESPACE/CERTIFICATE: leave caBundle to cert-manager's CA injector.")
@click.option("--timeout-seconds", default=10, show_default=True, type=int,
              help="timeoutSeconds for policies that do not set their own (keep it above serve's --timeout).")
@click.option("--namespace-label", "namespace_labels", multiple=True,
              help="KEY=VALUE (repeatable): only namespaces with these labels (an opt-in rollout).")
@click.option("--dry-run", is_flag=True, help="Print the configurations instead of applying them.")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="Format of --dry-run.")
@click.option("--delete", "delete_them", is_flag=True, help="Delete both configurations from the cluster.")
@click.option("--allow-empty", is_flag=True,
              help="Run with an empty policy set (otherwise a --policies path without policies is an error).")
@cluster_options
def register(policies: tuple[str, ...], **options: Any) -> None:
    """Register the webhooks the policies need (server-side apply), print them (--dry-run) or --delete them."""
    from admission.register import run

    sys.exit(run(policies=list(policies), out=sys.stdout, err=sys.stderr, **options))


@main.group()
def certs() -> None:
    """The CA and serving certificate of `admission serve` (under $ADMISSION_HOME/certs by default)."""


def certs_dir_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--certs-dir", default=None,
                        help="Certificates folder; a relative one is under $ADMISSION_HOME (default: "
                             "~/.local/share/admission). Default: certs.")(command)


@certs.command(name="init")
@certs_dir_option
@click.option("--service", default="admission", show_default=True, help="Service name for the DNS names.")
@click.option("--namespace", default="admission", show_default=True, help="Namespace of the Service.")
def certs_init(certs_dir: str | None, service: str, namespace: str) -> None:
    """Create the CA and serving certificate (or reuse them; renew what is due)."""
    from admission import certs as c

    try:
        paths = c.ensure(c.certs_dir(certs_dir), service, namespace)
    except c.CertError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"{'created' if paths.created else 'reused'}: certificate {paths.cert}, key {paths.key}, "
               f"CA bundle {paths.ca}")


@certs.command(name="rotate")
@certs_dir_option
@click.option("--ca", "new_ca", is_flag=True, help="Also a new CA (the old one stays in the bundle for the overlap).")
@click.option("--if-due", is_flag=True, help="Only what is inside the renewal window (for a periodic job).")
@click.option("--name", default="admission", show_default=True, help="Webhook configurations whose caBundle to patch.")
@click.option("--wait", "wait_seconds", default=5.0, show_default=True, type=float,
              help="After patching a new caBundle, wait this long for the API server to see it before the "
                   "serving certificate of the new CA is written.")
@cluster_options
def certs_rotate(certs_dir: str | None, new_ca: bool, if_due: bool, name: str, wait_seconds: float,
                 kubeconfig: str | None, context: str | None) -> None:
    """New serving certificate (and with --ca a new CA); patch caBundle when a cluster is configured."""
    import time

    from admission import certs as c
    from admission.cluster import ClusterError, connect
    from admission.register import patch_ca_bundle

    folder = c.certs_dir(certs_dir)

    def publish(bundle: bytes) -> None:
        try:
            cluster = connect(kubeconfig, context)
            for line in patch_ca_bundle(cluster.api, name, bundle):
                click.echo(line)
        except ClusterError as exc:
            if kubeconfig or context:
                raise
            click.echo(f"caBundle not patched: {exc}", err=True)
            return
        time.sleep(wait_seconds)

    try:
        if if_due:
            ca_due, serving_due = c.due(folder)
            new_ca = ca_due  # the CA only when it is due itself
            if not serving_due:
                click.echo(f"nothing due: the certificates under {folder} are outside the renewal window")
                return
        done = c.rotate(folder, ca=new_ca, before_serving=publish)
    except (c.CertError, ClusterError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"rotated: {'CA and ' if done.ca else ''}serving certificate under {folder}")


@certs.command(name="show")
@certs_dir_option
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--ca-bundle", "print_bundle", is_flag=True, help="Print only the base64 caBundle.")
@click.option("--ca-file", "print_file", is_flag=True, help="Print only the path of the CA bundle (for curl --cacert).")
def certs_show(certs_dir: str | None, output: str, print_bundle: bool, print_file: bool) -> None:
    """Where the certificates are, their names, validity, and whether renewal is due."""
    import json

    from admission import certs as c

    folder = c.certs_dir(certs_dir)
    try:
        info = c.describe(folder)
    except c.CertError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if print_file:
        click.echo(str(folder / c.CA_CERT))
    elif print_bundle:
        click.echo(c.ca_bundle_b64(folder / c.CA_CERT))
    elif output == "json":
        click.echo(json.dumps(info, indent=2))
    else:
        s = info["serving"]
        click.echo(f"serving certificate {s['file']}: {', '.join(s['dnsNames'] + s['ipAddresses'])}")
        click.echo(f"  valid until {s['notAfter']} ({s['daysLeft']} days){', renewal due' if s['renewalDue'] else ''}"
                   f"{'' if s['signedByCurrentCA'] else ', NOT signed by the current CA'}")
        click.echo(f"CA bundle {info['caBundle']['file']}:")
        for i, ca in enumerate(info["caBundle"]["certificates"]):
            role = "current" if i == 0 else "previous (kept for the overlap)"
            click.echo(f"  {role}: valid until {ca['notAfter']} ({ca['daysLeft']} days), sha256 {ca['sha256'][:16]}")


@main.command(name="test")
@click.argument("paths", nargs=-1, required=True)
@click.option("-v", "--verbose", is_flag=True, help="Print passing results too.")
@click.option("--engine", type=click.Choice(["auto", "cel", "rego"]), default="auto", show_default=True,
              help="Which code of a Gatekeeper template that has both runs: CEL (K8sNativeValidation) or Rego; "
                   "auto runs CEL when present.")
def test_cmd(paths: tuple[str, ...], verbose: bool, engine: str) -> None:
    """Run policy test suites (our format, kyverno-test.yaml, Gatekeeper Suite)."""
    from admission.engines.cel.gatekeeper_cel import engine as gatekeeper_engine
    from admission.testing import run

    with gatekeeper_engine(engine):
        sys.exit(run(list(paths), sys.stdout, verbose=verbose))
