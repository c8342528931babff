"""admission: a Kubernetes policy and admission-control webhook server."""

__version__ = "0.1.0"
