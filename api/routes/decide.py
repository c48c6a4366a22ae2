"""Decision endpoints: what the sourcing scorer would do, without doing it.

``POST /v1/decide/route`` asks :class:`services.decisions.DecisionService` for the best node and
carrier service of one order right now: it answers from an in-memory snapshot of the twin checked
against the database at most every 0.25 s and after every write this process makes through the
tool gateway or to profiles and experiments (the order and its stock are read fresh), under the
active sourcing profile or, while an experiment runs, the order's arm; every answer is logged with
its decision id, inputs hash, profile and arm. It changes nothing on the network, so viewers may call it.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field

from api.auth import ApiKeyStore, Principal, Role
from api.deps import admit, api_key_header, bearer, current_user
from api.problems import PROBLEM_RESPONSES, problem_responses
from services.decisions import DecisionService, LoggedDecision

router = APIRouter(prefix="/v1/decide", tags=["decide"], responses=PROBLEM_RESPONSES)
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
    state = request.app.state
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
