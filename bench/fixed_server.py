"""The fixed-response baseline: the same stack as `admission serve` (uvicorn with uvloop and httptools, TLS,
N workers; POST /validate and /mutate answered by a plain ASGI callable in front of Starlette, as ours are)
answering every POST with one constant allowed AdmissionReview after reading the whole body.

    python bench/fixed_server.py --port 9443 --cert certs/tls.pem --key certs/tls-key.pem --workers 2
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

ANSWER = (b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",'
          b'"response":{"uid":"00000000-0000-0000-0000-000000000000","allowed":true}}')


HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]


async def answer(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


async def healthz(_request: Request) -> Response:
    return Response(b'{"ok":true}', media_type="application/json")


class App:
    """POST /validate and /mutate: read the body, answer the constant; the rest through Starlette."""

    def __init__(self, starlette: Starlette) -> None:
        self.starlette = starlette

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in ("/validate", "/mutate"):
            while (await receive()).get("more_body", False):  # read the body like the real server does
                pass
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "body": ANSWER})
            return
        await self.starlette(scope, receive, send)


def app(starlette_only: bool = False) -> App | Starlette:
    """The baseline; with starlette_only, every endpoint a Starlette route (the layout before the ASGI path)."""
    routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", healthz, methods=["GET"])]
    if starlette_only:
        return Starlette(routes=[Route("/validate", answer, methods=["POST"]),
                                 Route("/mutate", answer, methods=["POST"]), *routes])
    return App(Starlette(routes=routes))


def starlette_app() -> App | Starlette:
    return app(starlette_only=True)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9443)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--starlette", action="store_true", help="Starlette routes for the POST endpoints too")
    args = parser.parse_args()
    uvicorn.run("fixed_server:starlette_app" if args.starlette else "fixed_server:app", factory=True, host=args.host, port=args.port, workers=args.workers,
                loop="uvloop", http="httptools", ssl_certfile=args.cert, ssl_keyfile=args.key,
                access_log=False, server_header=False, log_level="warning", app_dir=str(_here()))


def _here() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent)


if __name__ == "__main__":
    main()
