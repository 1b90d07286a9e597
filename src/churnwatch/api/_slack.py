"""``/slack/interactions``: the Won / Lost / Not useful buttons of a Slack notification.

Slack POSTs a form with one field, ``payload`` (JSON), signed with the app's
signing secret. The signature is checked over the raw body before anything
is read; a request that fails it gets 401. A known button records the
answer for the episode its ``value`` names; Slack wants an answer within
three seconds, and one insert is far quicker than that.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request

from churnwatch.api._app import state_of
from churnwatch.api._auth import ErrorOut
from churnwatch.notify import OUTCOME_ACTIONS, verify_slack_signature
from churnwatch.outcomes import record_outcome

__all__ = ["router"]

router = APIRouter(tags=["slack"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Not a Slack interaction payload."},
    401: {"model": ErrorOut, "description": "Missing, invalid or expired Slack signature."},
    404: {"model": ErrorOut, "description": "The button names no known episode."},
    413: {"model": ErrorOut, "description": "The body is too large."},
    503: {"model": ErrorOut, "description": "The server has no Slack signing secret."},
}
_MAX_BODY_BYTES = 256 * 1024


def _payload(body: bytes) -> dict[str, Any]:
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        found = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError):
        raise HTTPException(
            400, "expected a form with a 'payload' field holding JSON, as Slack sends"
        ) from None
    if not isinstance(found, dict):
        raise HTTPException(400, "the Slack payload must be a JSON object")
    return found


@router.post("/slack/interactions", responses=_RESPONSES)
async def slack_interaction(request: Request) -> dict[str, Any]:
    """Record the outcome of a button a CSM pressed in a Slack notification."""
    state = state_of(request)
    if not state.slack_signing_secret:
        raise HTTPException(
            503,
            "Slack interactions are not configured: start the server with the Slack app's "
            "signing secret (the environment variable SLACK_SIGNING_SECRET)",
        )
    body = await request.body()
    if len(body) > _MAX_BODY_BYTES:
        raise HTTPException(413, "the request body is too large for a Slack interaction")
    verified = verify_slack_signature(
        state.slack_signing_secret,
        timestamp=request.headers.get("X-Slack-Request-Timestamp", ""),
        body=body,
        signature=request.headers.get("X-Slack-Signature", ""),
        now=state.clock(),
    )
    if not verified:
        raise HTTPException(401, "invalid or expired Slack signature")
    payload = _payload(body)
    actions = payload.get("actions")
    if payload.get("type") != "block_actions" or not isinstance(actions, list) or not actions:
        # Other interaction kinds are acknowledged and ignored.
        return {"text": "Nothing to record."}
    action = actions[0] if isinstance(actions[0], dict) else {}
    outcome = OUTCOME_ACTIONS.get(str(action.get("action_id")))
    episode = action.get("value")
    if outcome is None or not isinstance(episode, str) or not episode:
        raise HTTPException(400, "the action is not one of Churnwatch's outcome buttons")
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    who = str(user.get("username") or user.get("id") or "a Slack user") if user else "a Slack user"
    stored = record_outcome(
        state.store,
        outcome,
        episode_id=episode,
        notes=f"answered in Slack by {who}",
        source="slack",
    )
    label = {"won": "Won", "lost": "Lost", "not_useful": "Not useful"}[stored.outcome]
    return {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": f"Recorded: {label} for {stored.account_id}. Thank you.",
    }
