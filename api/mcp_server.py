"""OrderOps as an MCP server: the tools, intake and the records, for outside agents and chat clients.

An MCP client (a general-purpose agent, a chat client) gets what OrderOps' own agents get and no
more: every tool call goes through the :class:`~tools.gateway.ToolGateway` — validated (malformed
arguments are denied and recorded, never half-run), simulated on the twin, judged by policy, then
denied, parked for a person's approval, or executed exactly once under an idempotency key — and
every step lands in the audit trail. Documents go through the same intake graph as
``orderops intake``. Runs, approvals and the audit trail are read-only resources.

Who acts: over stdio, the person whose API key started the server (``--key`` /
``ORDEROPS_API_KEY``); over streamable HTTP, the person whose key each request presents
(``Authorization: Bearer``). The key's roles gate what the person may do here, as on the HTTP API: a
viewer reads, an operator also proposes writes and submits documents, approvers and admins also read
the whole audit trail. Nobody approves through MCP: approval belongs to a person in the console, the
CLI, the API or Slack, and an MCP client only learns where to ask for it.

How the client is named: the model behind an MCP client proposes, so a call acts as an *agent*
``mcp:<client name>`` (from the client's ``initialize``) on behalf of the key's person — the person
is the requester of any approval (and so may not approve it), and the audit rows say
``agent:mcp:<client>`` with the run ``mcp:<person>:<session>``.

What this module must never do: execute a write other than through the gateway, let a key without a
writer role propose one, or approve anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio.to_thread
import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, Field, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import ApiKeyStore, Principal, Role
from api.bootstrap import AppContext
from core.errors import NotFound, OrderOpsError, PolicyDenied, ValidationFailed
from guardrails.approvals import ApprovalStatus
from guardrails.audit import AuditEvent, EventType
from guardrails.calls import Actor
from guardrails.calls import RiskClass as Risk
from services.approvals import DIRECT_RUN_PREFIX
from tools.gateway import Outcome, RunLedger, ToolGateway

SERVER_NAME = "orderops"
RUN_PREFIX = DIRECT_RUN_PREFIX
"""Run ids of the ledgers MCP calls are charged to (``mcp:<person>:<session>``): how an approval made
through MCP is told apart from one of an exception run (which its run carries out itself); the
decision that approves one carries it out (:func:`services.approvals.carry_on`)."""
EXECUTE_APPROVED = "execute_approved"
SUBMIT_DOCUMENT = "submit_document"
WRITER = (Role.OPERATOR,)
"""Roles that may propose writes and submit documents (admins hold every role)."""
AUDITOR = (Role.APPROVER, Role.ADMIN)
"""Roles that may read the whole audit trail (as ``GET /v1/audit``)."""
TRACER = (Role.OPERATOR, Role.APPROVER, Role.ADMIN)
"""Roles that may read one run's trail (as ``GET /v1/runs/{id}/trace``)."""

MAX_SESSIONS = 10_000
"""Run ledgers kept for MCP sessions (one each); past this the oldest is forgotten."""

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_FORBIDDEN = -32003
"""JSON-RPC error code of a resource the caller's roles do not reach (implementation-defined range)."""


def _slug(text: str, limit: int) -> str:
    """``text`` reduced to characters safe in ids and run ids (what the HTTP API's path ids allow)."""
    return _SAFE.sub("-", text).strip("-")[:limit] or "unknown"


# --- identity ---------------------------------------------------------------------------------------


class Unauthorised(Exception):
    """No key, or a key that matches no active one (over HTTP: 401 before the MCP layer)."""


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key of an HTTP request: ``Authorization: Bearer <key>``, or ``X-API-Key`` as on the API."""
    auth = headers.get("authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return (headers.get("x-api-key") or "").strip() or None


def authenticate(keys: ApiKeyStore, headers: Mapping[str, str]) -> Principal:
    key = presented_key(headers)
    if key is None:
        raise Unauthorised("an API key is required: send `Authorization: Bearer <key>`")
    found = keys.authenticate(key)
    if found is None:  # never echo the key
        raise Unauthorised("the API key is not valid (unknown, malformed, revoked or expired)")
    return found


def client_name(ctx: ServerRequestContext[Any, Any]) -> str:
    """The MCP client as its ``initialize`` names it, ``<name>@<version>`` (``unknown`` if none): what
    the audit trail names as the agent that proposed a call."""
    params = ctx.session.client_params
    if params is None:
        return "unknown"
    info = params.client_info
    version = _slug(info.version, 20) if info.version else ""
    return _slug(info.name, 40) + (f"@{version}" if version else "")


@dataclass(frozen=True)
class Caller:
    """One request's caller: the key's person and the MCP client acting for them."""

    principal: Principal
    client: str
    ledger: RunLedger

    @property
    def actor(self) -> Actor:
        """The client's model proposes on the person's behalf: an agent holding no approval role."""
        return Actor(kind="agent", id=f"mcp:{self.client}", on_behalf_of=self.principal.id)

    def may(self, roles: tuple[Role, ...]) -> bool:
        return any(self.principal.has(r) for r in roles)


# --- what a result says -----------------------------------------------------------------------------


def waiting_text(approval_id: str, console_base: str) -> str:
    """The plain sentence a client (and the person reading it) gets when a call waits for a person."""
    return (
        f"waiting for approval {approval_id}: approve with `orderops approvals approve {approval_id}` or in "
        f"the console at {console_base.rstrip('/')}/console/approvals/{approval_id}; the approval carries it "
        f"out (exactly once); call `{EXECUTE_APPROVED}` with approval_id {approval_id} for its result"
    )


def outcome_text(outcome: Outcome, console_base: str) -> str:
    """The first line of a tool result: what became of the call, in words."""
    if outcome.status == "awaiting_approval" and outcome.approval_id:
        why = f" (policy: {'; '.join(outcome.reasons)})" if outcome.reasons else ""
        return waiting_text(outcome.approval_id, console_base) + why
    if outcome.status in ("executed", "replayed"):
        result = outcome.result or {}
        done, skipped = result.get("done") or [], result.get("skipped") or {}
        again = " (already done earlier: this is the first result)" if outcome.status == "replayed" else ""
        return f"executed {outcome.tool}{again}: {len(done)} changed, {len(skipped)} skipped"
    if outcome.status == "read":
        return f"{outcome.tool}: read"
    reasons = "; ".join(outcome.reasons) or "no reason given"
    return f"{outcome.status} {outcome.tool}: {reasons}"


def _result(text: str, data: Any, *, error: bool = False) -> types.CallToolResult:
    body = json.dumps(data, default=str, indent=1)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"{text}\n{body}")],
        structured_content=data if isinstance(data, dict) else {"result": data},
        is_error=error,
    )


def _outcome_result(outcome: Outcome, console_base: str) -> types.CallToolResult:
    data = outcome.model_dump(mode="json", exclude={"preview"})
    if outcome.preview is not None:
        data["preview"] = {
            "summary": outcome.preview.summary,
            "affected": len(outcome.preview.affected),
            "skipped": outcome.preview.skipped,
            "cost_delta": str(outcome.preview.cost_delta),
            "late_before": outcome.preview.late_before,
            "late_after": outcome.preview.late_after,
        }
    return _result(outcome_text(outcome, console_base), data, error=outcome.status in ("denied", "failed"))


# --- tools of the server's own ----------------------------------------------------------------------


class ExecuteApprovedArgs(BaseModel):
    approval_id: str = Field(min_length=1, max_length=64, description="The approval a write call waited for.")


class SubmitDocumentArgs(BaseModel):
    filename: str = Field(min_length=1, max_length=255, description="The document's file name (its extension helps).")
    content: str | None = Field(default=None, description="The document as text (EDI, CSV, an e-mail, plain text).")
    content_base64: str | None = Field(default=None, description="The document's bytes, base64 (PDF, XLSX).")
    sender: str | None = Field(default=None, max_length=320, description="Who sent it (e-mail address), if known.")

    def data(self) -> bytes:
        if (self.content is None) == (self.content_base64 is None):
            raise ValidationFailed("give exactly one of content and content_base64")
        if self.content is not None:
            return self.content.encode()
        try:
            return base64.b64decode(self.content_base64 or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationFailed("content_base64 is not valid base64") from exc


_IDEMPOTENCY_SCHEMA = {
    "type": "string",
    "maxLength": 120,
    "description": "Your key for this change: a retry with the same key and arguments returns the first "
    "result instead of acting twice. Omitted: every call is a new request.",
}


def _schema(model: type[BaseModel], *, idempotent: bool = False) -> dict[str, Any]:
    schema = model.model_json_schema()
    if idempotent:
        schema = {**schema, "properties": {**schema.get("properties", {}), "idempotency_key": _IDEMPOTENCY_SCHEMA}}
    return schema


# --- the service ------------------------------------------------------------------------------------

ResolveCaller = Callable[[ServerRequestContext[Any, Any]], Principal]


@dataclass
class OrderOpsMcp:
    """Everything the MCP handlers do, on one :class:`AppContext`.

    ``principal``: the fixed caller (stdio); None: each request's API key decides (HTTP).
    """

    actx: AppContext
    keys: ApiKeyStore
    principal: Principal | None = None
    console_base: str | None = None
    _ledgers: dict[tuple[str, str, str], RunLedger] = field(default_factory=dict)

    @property
    def gateway(self) -> ToolGateway:
        return self.actx.gateway

    @property
    def base(self) -> str:
        return self.console_base or self.actx.settings.slack_link_base_url

    # --- who ---------------------------------------------------------------------------------------

    def caller(self, ctx: ServerRequestContext[Any, Any]) -> Caller:
        principal = self.principal
        if principal is None:
            request = ctx.request
            headers = getattr(request, "headers", None)
            if headers is None:
                raise MCPError(types.INVALID_REQUEST, "no API key: this server needs `Authorization: Bearer <key>`")
            try:
                principal = authenticate(self.keys, headers)
            except Unauthorised as exc:
                raise MCPError(types.INVALID_REQUEST, str(exc)) from exc
        client = client_name(ctx)
        session = _session_of(ctx)
        return Caller(principal=principal, client=client, ledger=self._ledger(principal.id, client, session))

    def _ledger(self, person: str, client: str, session: str | None) -> RunLedger:
        """The run ledger calls are charged to (the policy's per-run budgets): one per MCP session
        (the stdio process, an HTTP session); a sessionless HTTP request gets its own."""
        if session is None and self.principal is None:
            return RunLedger(run_id=_run_id(person))
        key = (person, client, session or "-")
        found = self._ledgers.get(key)
        if found is None:
            if len(self._ledgers) >= MAX_SESSIONS:  # HTTP sessions come and go: forget the oldest
                del self._ledgers[next(iter(self._ledgers))]
            found = self._ledgers[key] = RunLedger(run_id=_run_id(person))
        return found

    # --- tools -------------------------------------------------------------------------------------

    def tools(self) -> list[types.Tool]:
        gw = self.gateway
        out: list[types.Tool] = []
        for name, read in gw.reads.items():
            out.append(
                types.Tool(
                    name=name,
                    description=read.description,
                    input_schema=_schema(read.args_model),
                    annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
                )
            )
        for name, write in gw.writes.items():
            out.append(
                types.Tool(
                    name=name,
                    description=write.description
                    + "\n\nProposed through OrderOps' gateway: simulated, judged by policy, then executed once, "
                    "refused, or left waiting for a person's approval (the result says where to approve).",
                    input_schema=_schema(write.args_model, idempotent=True),
                    annotations=types.ToolAnnotations(
                        read_only_hint=False,
                        destructive_hint=write.risk is Risk.DESTRUCTIVE,
                        idempotent_hint=False,
                        open_world_hint=False,
                    ),
                )
            )
        out.append(
            types.Tool(
                name=EXECUTE_APPROVED,
                description="Carry out a write that waited for approval, once a person approved it: exactly the "
                "arguments (and orders) they approved, re-simulated first; calling again returns the first result. "
                "Says so when the request is still waiting, was rejected or expired.",
                input_schema=_schema(ExecuteApprovedArgs),
                annotations=types.ToolAnnotations(read_only_hint=False, idempotent_hint=True, open_world_hint=False),
            )
        )
        out.append(
            types.Tool(
                name=SUBMIT_DOCUMENT,
                description="Submit a purchase-order document (X12 850, EDIFACT ORDERS, PDF, e-mail, CSV, XLSX, "
                "text) to OrderOps intake: parsed, validated, then the order is created through the gateway, "
                "queued for review, or left waiting for approval. Returns what became of each order in it.",
                input_schema=_schema(SubmitDocumentArgs),
                annotations=types.ToolAnnotations(read_only_hint=False, open_world_hint=False),
            )
        )
        return out

    def call(self, caller: Caller, name: str, arguments: Mapping[str, Any]) -> types.CallToolResult:
        """One tool call (synchronous: the gateway and the database are)."""
        gw = self.gateway
        try:
            if name in gw.reads:
                return _outcome_result(gw.read(name, arguments, actor=caller.actor, run=caller.ledger), self.base)
            if name in gw.writes:
                return self._write(caller, name, arguments)
            if name == EXECUTE_APPROVED:
                return self._execute_approved(caller, arguments)
            if name == SUBMIT_DOCUMENT:
                return self._submit(caller, arguments)
        except OrderOpsError as exc:
            return _result(f"{exc.code}: {exc.message}", exc.to_dict(), error=True)
        return _result(f"unknown tool {name!r}", {"tool": name}, error=True)

    def _refuse_role(self, caller: Caller, name: str, arguments: Mapping[str, Any], doing: str) -> types.CallToolResult:
        """A caller without a writer role: refused before the gateway, and the refusal is audited."""
        held = ", ".join(sorted(r.value for r in caller.principal.roles)) or "no role"
        reason = f"{caller.principal.id} holds {held}, not operator: may not {doing} through MCP"
        self.actx.guard.audit.append(
            AuditEvent(
                event_type=EventType.DENIED,
                run_id=caller.ledger.run_id,
                tool=name,
                actor=f"{caller.actor.kind}:{caller.actor.id}",
                arguments=_jsonable(arguments),
                reasons=[reason],
            )
        )
        return _result(f"denied {name}: {reason}", {"status": "denied", "tool": name, "reasons": [reason]}, error=True)

    def _write(self, caller: Caller, name: str, arguments: Mapping[str, Any]) -> types.CallToolResult:
        if not caller.may(WRITER):
            return self._refuse_role(caller, name, arguments, f"propose {name}")
        args = dict(arguments)
        key = args.pop("idempotency_key", None)
        scope = f"mcp:{caller.principal.id}:{caller.client}"
        idempotency_key = f"{scope}:{key}" if isinstance(key, str) and key else f"{scope}:{uuid.uuid4().hex}"
        outcome = self.gateway.propose(
            name, args, actor=caller.actor, run=caller.ledger, idempotency_key=idempotency_key
        )
        return _outcome_result(outcome, self.base)

    def _execute_approved(self, caller: Caller, arguments: Mapping[str, Any]) -> types.CallToolResult:
        if not caller.may(WRITER):
            return self._refuse_role(caller, EXECUTE_APPROVED, arguments, "carry out approved writes")
        try:
            args = ExecuteApprovedArgs.model_validate(dict(arguments))
        except ValidationError as exc:
            raise ValidationFailed(f"malformed arguments: {exc.errors()[0]['msg']}") from exc
        req = self.actx.guard.approvals.get(args.approval_id)
        if not (req.run_id or "").startswith(RUN_PREFIX):
            raise PolicyDenied(
                f"approval {req.id} belongs to run {req.run_id}, which carries it out itself; "
                "only writes proposed through MCP are carried out here"
            )
        data = {"approval_id": req.id, "status": req.status.value, "tool": req.tool}
        if req.status == ApprovalStatus.PENDING:
            return _result(waiting_text(req.id, self.base), data)
        if req.status != ApprovalStatus.APPROVED:
            return _result(f"approval {req.id} is {req.status.value}: nothing will be executed", data, error=True)
        outcome = self.gateway.execute_approved(req.id, actor=caller.actor, run=caller.ledger)
        return _outcome_result(outcome, self.base)

    def _submit(self, caller: Caller, arguments: Mapping[str, Any]) -> types.CallToolResult:
        if not caller.may(WRITER):
            return self._refuse_role(
                caller, SUBMIT_DOCUMENT, {"filename": arguments.get("filename")}, "submit documents"
            )
        try:
            args = SubmitDocumentArgs.model_validate(dict(arguments))
        except ValidationError as exc:
            raise ValidationFailed(f"malformed arguments: {exc.errors()[0]['msg']}") from exc
        from api.cli_intake import IntakeSession
        from graphs.intake import open_intake_graph
        from services.wiring import intake_deps

        deps = intake_deps(self.actx)
        # The pipeline proposes orders as its own agent; the person who submitted stays its requester.
        deps = replace(deps, actor=deps.actor.model_copy(update={"on_behalf_of": caller.principal.id}))
        with open_intake_graph(deps) as graph:
            report = IntakeSession(actx=self.actx, deps=deps, graph=graph).ingest(
                args.data(), channel="mcp", filename=args.filename, sender=args.sender
            )
        lines = [f"document {report['document_id']}: {report['status']}"]
        for order in report.get("orders", []):
            decision = order.get("decision") or {}
            line = f"PO {order.get('po_number')}: {decision.get('status', 'not decided')}"
            if decision.get("order_id"):
                line += f" as order {decision['order_id']}"
            if decision.get("approval_id"):
                line += "; " + waiting_text(decision["approval_id"], self.base)
            elif decision.get("review_item_id"):
                line += f"; in the review queue as {decision['review_item_id']} (`orderops review show`)"
            lines.append(line)
        return _result("\n".join(lines), report)

    # --- resources ---------------------------------------------------------------------------------

    def resources(self) -> list[types.Resource]:
        js = "application/json"
        return [
            types.Resource(
                uri="orderops://runs", name="runs", description="Exception runs, newest first.", mime_type=js
            ),
            types.Resource(
                uri="orderops://approvals", name="approvals", description="Approval requests waiting for a person.",
                mime_type=js,
            ),
            types.Resource(
                uri="orderops://audit", name="audit",
                description="The audit trail in chain order (approvers, admins); `?after_seq=N` pages on.",
                mime_type=js,
            ),
        ]  # fmt: skip

    def templates(self) -> list[types.ResourceTemplate]:
        js = "application/json"
        return [
            types.ResourceTemplate(
                uri_template="orderops://runs/{run_id}", name="run",
                description="One run: status, report, pending approvals, alerts, jobs.", mime_type=js,
            ),
            types.ResourceTemplate(
                uri_template="orderops://approvals/{approval_id}", name="approval",
                description="One approval request: the exact arguments and preview it binds, its decisions.",
                mime_type=js,
            ),
            types.ResourceTemplate(
                uri_template="orderops://audit/runs/{run_id}", name="run-audit",
                description="The audit events of one run or MCP session (run id `mcp:...`), in chain order.",
                mime_type=js,
            ),
        ]  # fmt: skip

    def read(self, caller: Caller, uri: str) -> Any:
        """The JSON a resource URI names (the HTTP API's own views of the same records)."""
        from api.routes import approvals as approval_routes
        from api.routes import audit as audit_routes
        from api.routes import runs as run_routes

        parts = urlsplit(uri)
        if parts.scheme != "orderops":
            raise NotFound("resource", uri)
        path = [p for p in (parts.netloc + parts.path).split("/") if p]
        who, ctx = caller.principal, self.actx
        if path == ["runs"]:
            return run_routes.list_runs(ctx, who, status=None, limit=50)
        if len(path) == 2 and path[0] == "runs":
            return run_routes.get_run(ctx, who, path[1])
        if path == ["approvals"]:
            return approval_routes.list_pending(ctx, who, run_id=None)
        if len(path) == 2 and path[0] == "approvals":
            return approval_routes.get_approval(ctx, who, path[1])
        if path == ["audit"]:
            self._gate(caller, AUDITOR, "read the audit trail")
            after = _int(parse_qs(parts.query).get("after_seq", ["0"])[0])
            return audit_routes.list_events(ctx, who, run_id=None, call_id=None, after_seq=after, limit=100)
        if len(path) == 3 and path[:2] == ["audit", "runs"]:
            self._gate(caller, TRACER, "read a run's audit trail")
            return {"run_id": path[2], "records": ctx.guard.audit.list(run_id=path[2], limit=1000)}
        raise NotFound("resource", uri)

    def _gate(self, caller: Caller, roles: tuple[Role, ...], doing: str) -> None:
        if not caller.may(roles):
            names = " or ".join(r.value for r in roles)
            raise PolicyDenied(f"{caller.principal.id} needs the role {names} to {doing}")


def _run_id(person: str) -> str:
    """``mcp:<person>:<8 hex>``: short and safe enough for the HTTP API's run-id paths."""
    return f"{RUN_PREFIX}{_slug(person, 24)}:{uuid.uuid4().hex[:8]}"


def _int(text: str) -> int:
    try:
        return max(0, int(text))
    except ValueError as exc:
        raise ValidationFailed(f"after_seq must be a whole number, not {text[:20]!r}") from exc


def _session_of(ctx: ServerRequestContext[Any, Any]) -> str | None:
    headers = getattr(ctx.request, "headers", None)
    return headers.get("mcp-session-id") if headers is not None else None


def _jsonable(value: Mapping[str, Any]) -> dict[str, Any]:
    """Raw arguments as the trail can store them (anything odd as its text)."""
    out: dict[str, Any] = json.loads(json.dumps(dict(value), default=str))
    return out


def _to_json(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=1)
    return json.dumps(
        value, default=lambda v: v.model_dump(mode="json") if isinstance(v, BaseModel) else str(v), indent=1
    )


# --- the MCP server ---------------------------------------------------------------------------------


def build_server(service: OrderOpsMcp) -> Server[Any]:
    """The low-level MCP server over ``service``: tool schemas are the tools' own argument models,
    and arguments reach the gateway unvalidated by the SDK, so a malformed call is denied *and
    audited* by the gateway instead of bounced before it."""

    async def in_thread(fn: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(fn)

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        service.caller(ctx)  # an unauthenticated HTTP request learns nothing
        return types.ListToolsResult(tools=service.tools())

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        caller = service.caller(ctx)
        arguments = dict(params.arguments or {})
        result: types.CallToolResult = await in_thread(lambda: service.call(caller, params.name, arguments))
        return result

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        service.caller(ctx)
        return types.ListResourcesResult(resources=service.resources())

    async def list_templates(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        service.caller(ctx)
        return types.ListResourceTemplatesResult(resource_templates=service.templates())

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        caller = service.caller(ctx)
        uri = str(params.uri)
        try:
            found = await in_thread(lambda: service.read(caller, uri))
        except NotFound as exc:
            raise MCPError(types.INVALID_PARAMS, exc.message) from exc
        except PolicyDenied as exc:
            raise MCPError(_FORBIDDEN, exc.message) from exc
        except OrderOpsError as exc:
            raise MCPError(types.INVALID_PARAMS, f"{exc.code}: {exc.message}") from exc
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=_to_json(found))]
        )

    return Server(
        SERVER_NAME,
        version=_version(),
        instructions="OrderOps: fulfillment exceptions and B2B order intake. Read tools change nothing; write "
        "tools are simulated and judged by policy, and may wait for a person's approval (the result says where); "
        f"after approval call `{EXECUTE_APPROVED}`. Runs, approvals and the audit trail are resources.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("orderops")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --- streamable HTTP --------------------------------------------------------------------------------


class RequireApiKey:
    """ASGI wrapper: an HTTP request without a valid API key gets 401 before it reaches MCP (the
    handlers check the key again, per request, to act as its person)."""

    def __init__(self, app: ASGIApp, keys: ApiKeyStore) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            authenticate(self.keys, headers)
        except Unauthorised as exc:
            body = json.dumps({"code": "unauthenticated", "message": str(exc)}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="orderops"'),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def http_app(service: OrderOpsMcp, *, host: str = "127.0.0.1", path: str = "/mcp") -> ASGIApp:
    """The streamable-HTTP ASGI app (its lifespan runs the session manager), behind the key check."""
    app = build_server(service).streamable_http_app(streamable_http_path=path, host=host)
    return RequireApiKey(app, service.keys)


ServeStdio = Callable[[Server[Any]], Awaitable[None]]


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one client over this process's stdin/stdout until it closes them."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
