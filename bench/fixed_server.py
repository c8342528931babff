"""The fixed-response baseline: the same stack as `admission serve` (Starlette on uvicorn with uvloop and
httptools, TLS, N workers) answering every POST with one constant allowed AdmissionReview.

    python bench/fixed_server.py --port 9443 --cert certs/tls.pem --key certs/tls-key.pem --workers 2
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ANSWER = (b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",'
          b'"response":{"uid":"00000000-0000-0000-0000-000000000000","allowed":true}}')


async def answer(request: Request) -> Response:
    await request.body()  # read the body like the real server does
    return Response(ANSWER, media_type="application/json")


async def healthz(_request: Request) -> Response:
    return Response(b'{"ok":true}', media_type="application/json")


def app() -> Starlette:
    return Starlette(routes=[
        Route("/validate", answer, methods=["POST"]),
        Route("/mutate", answer, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", healthz, methods=["GET"]),
    ])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9443)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    uvicorn.run("fixed_server:app", factory=True, host=args.host, port=args.port, workers=args.workers,
                loop="uvloop", http="httptools", ssl_certfile=args.cert, ssl_keyfile=args.key,
                access_log=False, server_header=False, log_level="warning", app_dir=str(_here()))


def _here() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent)


if __name__ == "__main__":
    main()
