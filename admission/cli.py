"""The `admission` command: a thin shell over the engine. Only this module knows about terminals."""

from __future__ import annotations

import sys

import click

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


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
@click.option("--namespace", default="admission", show_default=True, help="Namespace of the Service.")
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
def lint(paths: tuple[str, ...], policies: tuple[str, ...], fmt: str, allow_empty: bool) -> None:
    """Check manifests against the policies; exit 1 when an enforced rule fails."""
    from admission.lint import run

    sys.exit(run(list(paths), list(policies), fmt, sys.stdout, allow_empty=allow_empty))


@main.command()
@click.option("--policies", "policies", multiple=True, help="Policy file or folder (repeatable). Default: built-in library.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "junit"]), default="text", show_default=True)
@click.option("--kind", "kinds", multiple=True,
              help="apiVersion/Kind to list (repeatable), e.g. apps/v1/Deployment. Default: workloads and common kinds.")
@click.option("-n", "--namespace", default="", help="Only this namespace. Default: all.")
@click.option("--include-owned", is_flag=True, help="Also report objects a controller owns (ReplicaSets, Pods, Jobs).")
@click.option("--allow-empty", is_flag=True,
              help="Run with an empty policy set (otherwise a --policies path without policies is an error).")
def audit(policies: tuple[str, ...], fmt: str, kinds: tuple[str, ...], namespace: str, include_owned: bool,
          allow_empty: bool) -> None:
    """Check what already runs in the cluster (current kubeconfig context) against the policies."""
    from admission.audit import run

    sys.exit(run(list(policies), fmt, sys.stdout, kinds=list(kinds), namespace=namespace, include_owned=include_owned,
                 allow_empty=allow_empty))


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
@click.option("--engine", type=click.Choice(["auto", "cel", "rego"]), default="auto", show_default=True,
              help="Which code of a Gatekeeper template that has both runs: CEL (K8sNativeValidation) or Rego; "
                   "auto runs CEL when present.")
def test_cmd(paths: tuple[str, ...], verbose: bool, engine: str) -> None:
    """Run policy test suites (our format, kyverno-test.yaml, Gatekeeper Suite)."""
    from admission.engines.cel.gatekeeper_cel import engine as gatekeeper_engine
    from admission.testing import run

    with gatekeeper_engine(engine):
        sys.exit(run(list(paths), sys.stdout, verbose=verbose))
