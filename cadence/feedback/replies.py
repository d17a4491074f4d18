"""`POST /webhooks/sendgrid/inbound?key=...`: SendGrid's Inbound Parse, a customer's reply
ledgered as a `replied` event (which playbooks may `cancel_on`, and which counts as contact).

Inbound Parse cannot sign its posts; what proves one is SendGrid's is a secret in the URL it
is set up with (`http.sendgrid_inbound_key_env` names the variable holding it). Without the
setting every post is refused: anyone who can reach the port could otherwise make customers
seem to have written. SendGrid retries whatever does not get a 2xx, for days; so a post that
is ours but leads nowhere (an unknown sender, an out of office) gets a 200 and is dropped.
"""

from __future__ import annotations

import hmac
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cadence import metrics
from cadence.clock import utcnow
from cadence.feedback import inbound, ledger
from cadence.feedback.pages import Served, guarded, read_body

log = logging.getLogger("cadence.http")

PATH = "/webhooks/sendgrid/inbound"

#: what a post gets, and the daemon logs at start, when no key is set
UNCONFIGURED = (
    "the inbound webhook has no key and refuses every post: set "
    "http.sendgrid_inbound_key_env to the environment variable holding the key that "
    "SendGrid's Inbound Parse URL carries as ?key="
)


def key_matches(expected: str | None, given: str | None) -> bool:
    """Whether the post's `?key=` is the configured key, compared in constant time (how
    much of a guess is right must not show in how long the refusal takes)."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def route(served: Served, key: str | None) -> Route:
    """The inbound webhook's route; `key` is what `?key=` must be (None: refuse all)."""
    if key is None:
        log.warning("%s; until then every post gets a 403", UNCONFIGURED)

    def store_and_apply(reply: inbound.Reply) -> ledger.Replied:
        result = ledger.record_reply(served.app.store, reply, utcnow())
        if result.stored:
            served.apply_now()
        return result

    async def receive(request: Request) -> Response:
        # the key is checked before the body is read: a stranger's post costs nothing
        if key is None:
            metrics.record_inbound("refused")
            return JSONResponse({"error": UNCONFIGURED}, status_code=403)
        if not key_matches(key, request.query_params.get("key")):
            log.warning("inbound webhook post refused: missing or wrong ?key=")
            metrics.record_inbound("refused")
            return JSONResponse({"error": "missing or wrong key"}, status_code=403)
        body = await read_body(request)
        if body is None:
            log.warning("inbound webhook post refused: larger than the limit")
            metrics.record_inbound("malformed")
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            fields = inbound.form_fields(body, request.headers.get("content-type", ""))
            reply = inbound.read_reply(fields)
        except inbound.MalformedInbound as exc:
            log.warning("inbound webhook post refused: %s", exc)
            metrics.record_inbound("malformed")
            return JSONResponse({"error": str(exc)}, status_code=400)
        if reply.automatic is not None:
            log.info(
                "automatic reply from %s (%s): not a reply, nothing stored",
                inbound.mask(reply.sender),
                reply.automatic,
            )
            metrics.record_inbound("automatic")
            return JSONResponse({"stored": 0, "automatic": reply.automatic})
        result = await run_in_threadpool(store_and_apply, reply)
        if result.unknown_sender:
            metrics.record_inbound("unknown_sender")
        elif result.stored:
            metrics.record_inbound("matched")
        else:
            metrics.record_inbound("duplicate")
        return JSONResponse(result.as_dict())

    return Route(PATH, guarded(receive), methods=["POST"])
