"""A small HTTP/1.1-over-TLS load generator on asyncio (uvloop when present), for loopback benchmarks.

Two modes: closed loop (C connections, each sending its next request when the last answer arrives: the
throughput a server sustains) and open loop at a fixed rate (requests start on a schedule whatever the
server does; latency is measured from the scheduled start, so queueing behind a slow answer counts).
It speaks just enough HTTP/1.1 for these servers: keep-alive, Content-Length bodies.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds
    errors: int = 0
    unfinished: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[k]


def build_request(host: str, path: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int, ctx: ssl.SSLContext | None) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host if ctx else None)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # loopback benchmark against our own test certificate
    return ctx


async def closed_loop(host: str, port: int, path: str, bodies: list[bytes], *, connections: int,
                      duration: float, tls: bool = True) -> Result:
    ctx = client_context() if tls else None
    raws = [build_request(host, path, b) for b in bodies]
    result = Result()
    conns = [await Connection.open(host, port, ctx) for _ in range(connections)]
    end = time.perf_counter() + duration

    async def worker(conn: Connection, offset: int) -> None:
        i = offset
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            try:
                status = await conn.send(raws[i % len(raws)])
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result.errors += 1
                return
            result.latencies.append(time.perf_counter() - t0)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            i += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(c, k * 7) for k, c in enumerate(conns)))
    result.elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return result


async def fixed_rate(host: str, port: int, path: str, bodies: list[bytes], *, rate: float, duration: float,
                     connections: int = 32, tls: bool = True) -> Result:
    """Start rate requests per second for duration seconds; latency counts from each scheduled start."""
    ctx = client_context() if tls else None
    raws = [build_request(host, path, b) for b in bodies]
    result = Result()
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await Connection.open(host, port, ctx))
    total = int(rate * duration)
    start = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()

    async def one(i: int, scheduled: float) -> None:
        conn = await idle.get()
        try:
            status = await conn.send(raws[i % len(raws)])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            result.errors += 1
            idle.put_nowait(await Connection.open(host, port, ctx))
            return
        result.latencies.append(time.perf_counter() - scheduled)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        idle.put_nowait(conn)

    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=10)
    result.elapsed = time.perf_counter() - start
    result.unfinished = len(pending)  # still waiting 10 s after the last start: the server could not keep up
    for task in list(pending):
        task.cancel()
    while not idle.empty():
        idle.get_nowait().close()
    return result


def run(coro: Coroutine[Any, Any, Result]) -> Result:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)
