"""Decision endpoints: what the sourcing scorer would do, without doing it.

``POST /v1/decide/route`` asks :class:`services.decisions.DecisionService` for the best node and
carrier service of one order right now: it answers from an in-memory snapshot of the twin checked
against the database at most every 0.25 s and after every write this process makes through the
tool gateway or to profiles and experiments (the order and its stock are read fresh), under the
active sourcing profile or, while an experiment runs, the order's arm; every answer is logged with
its decision id, inputs hash, profile and arm. It changes nothing on the network, so viewers may call it.
"""

from __future__ import annotations

import gc
import json
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import ApiKeyStore, Principal, Role
from api.deps import admit, api_key_header, bearer, current_user
from api.problems import PROBLEM_RESPONSES, problem_responses
from services.decisions import DecisionService, LoggedDecision

router = APIRouter(prefix="/v1/decide", tags=["decide"], responses=PROBLEM_RESPONSES)
ROUTE_PATH = "/v1/decide/route"
_build_lock = threading.Lock()

# Under load a decision waits for this many others before the log is written (or 0.2 s).
LOG_BATCH = 64


class RouteQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


async def decision_service(request: Request) -> DecisionService:
    """The app's one :class:`DecisionService` (its snapshot is shared by every request), built on
    first use from the app's context. Async on purpose: it does no I/O after the first call, and a
    sync dependency would cost every request a hop to the thread pool."""
    return _service(request.app)


_frozen = threading.Event()


def _freeze_once() -> None:
    """Everything a server process has loaded by its first decision (the app, its modules, the
    first snapshot) lives as long as the process: move it out of the collector's full scans, which
    otherwise stalled every request of the event loop for ~140 ms at a time (decide/route closed
    loop p99 84-95 ms at p50 4.5 ms; frozen: p99 11-13 ms). Once per process: a later snapshot is
    replaced when the network changes, and what is frozen is never collected as a cycle."""
    if not _frozen.is_set():
        _frozen.set()
        gc.freeze()


def _service(app: Any) -> DecisionService:
    state = app.state
    svc: DecisionService | None = getattr(state, "decisions", None)
    if svc is None:
        with _build_lock:
            svc = getattr(state, "decisions", None)
            if svc is None:
                actx = state.actx
                svc = DecisionService.build(
                    actx.db, actx.adapters, actx.twin_clock, record_clock=actx.clock, batch=LOG_BATCH
                )
                svc.log.start_flusher()
                svc.cache.get()  # the first snapshot
                _freeze_once()
                state.decisions = svc
    return svc


def flush_log(app: FastAPI) -> None:
    """Write the decisions still waiting in the log's batch (the app's shutdown calls this)."""
    svc: DecisionService | None = getattr(app.state, "decisions", None)
    if svc is not None:
        svc.log.flush()


Decisions = Annotated[DecisionService, Depends(decision_service)]


async def viewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    """:data:`api.deps.Viewer` (the same key check and role gate, the same problems) as one async
    dependency: FastAPI runs a sync dependency in the thread pool, and Viewer's three (the key
    store, the key, the role) cost ~0.3 ms CPU of a decision. The key check reads the database
    only on a cache miss (once per key every few seconds): on SQLite that waits on no network and
    runs here, on PostgreSQL it runs in a thread, as the decision itself does."""
    keys: ApiKeyStore = request.app.state.keys
    if keys.db.is_sqlite:
        user = current_user(keys, credentials, api_key)
    else:
        user = await run_in_threadpool(current_user, keys, credentials, api_key)
    return admit(user, Role.VIEWER)


Viewer = Annotated[Principal, Depends(viewer)]


@router.post(
    "/route",
    response_model=LoggedDecision,
    summary="Best node and carrier service for one order",
    responses=problem_responses(404),
)
async def route(decisions: Decisions, _user: Viewer, body: RouteQuery) -> Response:
    """The scorer's choice with its reasons and the alternatives it beat (nothing is changed), the
    decision id it was logged under, the profile (and experiment arm) that made it."""
    # On SQLite a decision waits on no network: it is ~1-2 ms of CPU held under the GIL either way,
    # and the hop to a thread and back cost ~0.8 ms CPU of a ~4 ms request (3.1-3.3 vs 3.9-4.2 ms
    # server CPU, 225-299 vs 165-196 decisions/s closed loop), so it runs on the event loop. On
    # PostgreSQL its three reads are round trips: in a thread, the loop serves others meanwhile
    # (inline there: 67 vs 80 decisions/s).
    if decisions.local_reads:
        return _answer(decisions, body.order_id)
    return await run_in_threadpool(_answer, decisions, body.order_id)


def _answer(decisions: DecisionService, order_id: str) -> Response:
    # Serialised here: the model is built and typed already, and FastAPI's validate-then-serialise
    # of the response model cost ~0.25 ms CPU of a ~3.5 ms request (response_model stays for /docs).
    return Response(decisions.decide(order_id).model_dump_json(), media_type="application/json")


MAX_FAST_BODY = 4096
"""Bodies up to this size may take :class:`FastRoute` (a route query is ~40 bytes)."""


class FastRoute:
    """``POST /v1/decide/route`` answered without FastAPI's routing, dependency solving and body
    handling, when nothing about the request is unusual; anything else goes the normal way.

    On two cores the framework's share of a decision (matching a dozen routes, solving four
    dependencies, reading the body through the request object) cost about as much as the decision
    itself. This layer sits inside the metrics and tracing layers (they count and time it as
    before) and answers the plain case itself, with the same checks in the same order and the same
    response as :func:`route`: a JSON body that validates as :class:`RouteQuery`, a Bearer key that
    :func:`api.deps.current_user` accepts for a viewer, reads that wait on no network (SQLite), a
    decision made. Whatever does not pass (no or another kind of credential, a refused key, a body
    that is not such JSON, an unknown order, PostgreSQL) is handed to the app with the body it
    read, unchanged, so every refusal and problem is FastAPI's own; a refused request may run its
    checks twice, an answered one runs them once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != ROUTE_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        token = _plain_request(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        answer = _fast_answer(scope, token, body) if messages[-1]["type"] == "http.request" else None
        if answer is not None:
            await answer(scope, receive, send)
            return
        await self.app(scope, _replay(messages, receive), send)


def _plain_request(scope: Scope) -> str | None:
    """The Bearer key of a request the fast path may take: ``Authorization: Bearer <key>``, no
    ``X-API-Key``, ``Content-Type: application/json`` and a small ``Content-Length``; else None."""
    token: str | None = None
    plain_type = False
    length = -1
    for name, value in scope["headers"]:
        if name == b"authorization":
            if token is not None:
                return None
            scheme, _, rest = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not rest or " " in rest:
                return None
            token = rest
        elif name == b"x-api-key":
            return None
        elif name == b"content-type":
            plain_type = value == b"application/json"
        elif name == b"content-length":
            length = int(value) if value.isdigit() else -1
    return token if plain_type and 0 < length <= MAX_FAST_BODY else None


def _fast_answer(scope: Scope, token: str, body: bytes) -> Response | None:
    app = scope["app"]
    keys: ApiKeyStore = app.state.keys
    if not keys.db.is_sqlite:
        return None
    try:
        query = RouteQuery.model_validate(json.loads(body))
        user = current_user(keys, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token), None)
        admit(user, Role.VIEWER)
        decisions = _service(app)
        if not decisions.local_reads:
            return None
        return _answer(decisions, query.order_id)
    except Exception:  # refusals, problems and failures: the normal way answers them
        return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that first gives back the messages the fast path already read."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
