"""``/api/v1/access``: discover tables, request access, approve or deny — as the request's principal.

The same operations as ``lake.governance.access``, SQL (``REQUEST ACCESS …``) and the CLI
(``wharf access …``): every check (who may decide a request, what discovery shows) is made there.

::

    GET  /api/v1/access/tables?like=sales*&tag=domain&value=sales
    POST /api/v1/access/requests                 {"table": "sales.orders", "privilege": "SELECT", "duration": "8h", "reason": "…"}
    GET  /api/v1/access/requests?status=pending
    POST /api/v1/access/requests/{id}/approve    {"duration": "1h", "comment": "…"}   (both optional)
    POST /api/v1/access/requests/{id}/deny       {"reason": "…"}
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from wharf.governance.access import AccessRequest
from wharf.server.api.models import ERRORS
from wharf.server.context import RequestContext
from wharf.server.state import request_context

router = APIRouter(prefix="/api/v1/access", tags=["Access requests"])
Ctx = Annotated[RequestContext, Depends(request_context)]
ACTION = "accessRequests"  # open to every authenticated principal: lake.governance.access checks the rest


class NewRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    table: str = Field(description="The table (db.t)")
    privilege: str = Field(default="SELECT", description="SELECT, INSERT, UPDATE, DELETE, ALTER or MAINTAIN")
    duration: str = Field(default="8 hours", description="How long: '8 hours', '8h', '2 days'")
    reason: str = Field(description="Why (the approvers read it)")


class Approval(BaseModel):
    model_config = ConfigDict(extra="ignore")

    duration: str | None = Field(default=None, description="Shorter than requested (never longer); default: as requested")
    comment: str | None = None


class Denial(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reason: str | None = None


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status_code=status, media_type="application/json")


def _request(request: AccessRequest) -> dict[str, Any]:
    return {**dataclasses.asdict(request), "duration": request.duration}


@router.get("/tables", responses=ERRORS, summary="Find tables (name, description, owner, tags — never rows)")
def find_tables(ctx: Ctx, like: str | None = None, tag: str | None = None, value: str | None = None) -> Response:
    ctx.authorize(ACTION, "*")
    found = ctx.lake.governance.access.find(like, tag=tag, value=value)
    return _json({"tables": [{**dataclasses.asdict(f), "tags": dict(f.tags)} for f in found]})


@router.post("/requests", responses=ERRORS, status_code=201, summary="Request access to a table for a while")
def create_request(ctx: Ctx, body: NewRequest) -> Response:
    ctx.authorize(ACTION, "*")
    made, message = ctx.lake.governance.access.request_with_message(
        body.table, privilege=body.privilege, duration=body.duration, reason=body.reason
    )
    return _json({"request": _request(made), "message": message}, status=201)


@router.get("/requests", responses=ERRORS, summary="Your requests, and those you decide")
def list_requests(ctx: Ctx, status: str | None = None) -> Response:
    ctx.authorize(ACTION, "*")
    return _json({"requests": [_request(r) for r in ctx.lake.governance.access.requests(status)]})


@router.post("/requests/{request_id}/approve", responses=ERRORS, summary="Approve a request (optionally for less time)")
def approve(ctx: Ctx, request_id: int, body: Approval | None = None) -> Response:
    ctx.authorize(ACTION, "*")
    body = body or Approval()
    decided = ctx.lake.governance.access.approve(request_id, duration=body.duration, comment=body.comment)
    return _json({"request": _request(decided)})


@router.post("/requests/{request_id}/deny", responses=ERRORS, summary="Deny a request")
def deny(ctx: Ctx, request_id: int, body: Denial | None = None) -> Response:
    ctx.authorize(ACTION, "*")
    decided = ctx.lake.governance.access.deny(request_id, reason=(body or Denial()).reason)
    return _json({"request": _request(decided)})
