"""A SendGrid look-alike fast enough to measure against: `python -m bench.lookalike`.

The tests' look-alike (`tests/support/sendgrid_lookalike.py`) is a `ThreadingHTTPServer`,
which tops out near 1,100 requests/s on this machine: a dispatch figure measured against it
measures the server. This one answers the same requests the same way (`POST /v3/mail/send`,
bearer key checked, the body parsed as JSON and its required fields checked, 202 with an
`X-Message-Id`) on asyncio with keep-alive, so the figure is ours.

`python -m bench.lookalike MS` answers each request after MS milliseconds. Prints its URL on
the first line, serves until stdin closes, then prints as JSON the cadence
email id and arrival time (Unix seconds) of every request it accepted.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

API_KEY = "SG.test-key"
REPO = Path(__file__).resolve().parents[1]


class Lookalike:
    def __init__(self, latency: float = 0.0) -> None:
        self.arrivals: list[tuple[str, float]] = []
        # how long each answer takes, as a real API's round trip does (SendGrid's: tens of
        # milliseconds to a few hundred): what a sender must overlap requests to hide
        self.latency = latency

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if method != "POST" or path != "/v3/mail/send":
            return _reply(404, {"errors": [{"message": "not found"}]})
        if headers.get("authorization") != f"Bearer {API_KEY}":
            return _reply(401, {"errors": [{"message": "authorization required"}]})
        try:
            payload: dict[str, Any] = json.loads(body)
            people = payload["personalizations"]
            addresses = [p["to"][0]["email"].lower() for p in people]
            # SendGrid's own limits: 1 to 1000 emails, each address once
            assert 1 <= len(people) <= 1000 and len(set(addresses)) == len(addresses)
            assert payload["from"]["email"] and payload["subject"]
        except Exception:  # noqa: BLE001 - any malformed body is SendGrid's 400
            return _reply(400, {"errors": [{"message": "bad request body"}]})
        now, top = time.time(), payload.get("custom_args") or {}
        for p in people:  # one email each
            args = {**top, **(p.get("custom_args") or {})}
            self.arrivals.append((str(args.get("cadence_email", "")), now))
        return _reply(202, None, {"X-Message-Id": uuid.uuid4().hex[:22]})

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if self.latency:
                    await asyncio.sleep(self.latency)
                writer.write(self.answer(method, path, headers, body))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
            pass  # the client hung up, or we are shutting down
        finally:
            writer.close()


def _reply(
    status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    reason = {202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}[status]
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(data)}"]
    if body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def main() -> None:
    sg = Lookalike(float(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 0.0)
    server = await asyncio.start_server(sg.serve, "127.0.0.1", 0, backlog=1024)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"http://{host}:{port}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await asyncio.sleep(0.1)
    server.close()
    print(json.dumps(sg.arrivals), flush=True)


if __name__ == "__main__":
    asyncio.run(main())


class LookalikeProcess:
    """The SendGrid look-alike in a process of its own, so it does not share our GIL."""

    api_key = "SG.test-key"

    def __init__(self, latency_ms: float = 0) -> None:
        self.latency_ms = latency_ms

    def __enter__(self) -> LookalikeProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.lookalike", str(self.latency_ms)],
            cwd=REPO,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        return self

    def __exit__(self, *exc: object) -> None:
        out, _ = self.proc.communicate("", timeout=30)
        self.arrivals: dict[str, float] = dict(json.loads(out.strip() or "[]"))


def sendgrid_config(
    path: Path, url: str, sg: LookalikeProcess, rules_dir: Path, extra: str = ""
) -> Path:
    """A cadence.yaml sending through the look-alike (the key in $SG_KEY)."""
    path.write_text(
        f"database_url: {url}\ntemplates_dir: {REPO / 'templates'}\n"
        f"rules_dir: {rules_dir}\n"
        "transport:\n  kind: sendgrid\n"
        f"  sendgrid: {{api_host: '{sg.url}', api_key_env: SG_KEY}}\n" + extra
    )
    return path
