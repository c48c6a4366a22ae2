"""The one model-call layer: structured answers from any OpenAI-compatible chat endpoint, whatever
the server does with tools and schemas.

Servers differ. Hosted APIs return native tool calls; many local servers (llama.cpp, Ollama, vLLM
with some models) return ``tool_calls: []`` and let the model write the call as JSON in the
message content, bare or in a fenced ```json block, while honouring a ``response_format`` JSON
schema. So every structured call here goes one of three ways (:data:`Mode`):

``tools``
    the schemas are bound as tools; native tool calls are read, and JSON written in the content
    is read as tool calls too when the server returned none;
``json_schema``
    the schema goes in ``response_format`` (the server constrains the output to it);
``json``
    the schema goes in the prompt and the JSON is found in the content (bare or fenced).

``auto`` (the default) probes the endpoint once - does it return a native tool call, does it
honour a JSON schema - and remembers the answer per base URL and model, in memory and in
``<home>/llm-capabilities.json`` (:func:`probe`, :class:`CapabilityCache`): native tools when the
server returns them, else the JSON schema, else JSON in the content. Every answer is parsed and
validated against its pydantic model; an answer that fails goes back to the model with the
validation error, ``max_repairs`` times. Transport errors are retried ``attempts`` times; after
that the caller gets :class:`EndpointUnavailable`, and after the repairs
:class:`StructuredOutputError`: callers fall back (loudly) on either.

It lives in ``tools/`` because both readers of model output sit above it (``agents`` plans,
``intake`` extracts: neither may import the other) and because it is an adapter to an external
capability, like the OMS/WMS adapters here; ``core`` holds no I/O. It imports LangChain's chat
model interface only: production passes ``ChatOpenAI``, tests pass scripted fakes or replay
cassettes. What it must never do: act on what the model says (it only returns parsed, validated
data), or hide a failure as an empty answer.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import openai
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import Runnable
from pydantic import BaseModel, Field, ValidationError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from core import tracing
from core.settings import Settings

Mode = Literal["auto", "tools", "json_schema", "json"]
ResolvedMode = Literal["tools", "json_schema", "json"]
T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.RateLimitError,
    openai.InternalServerError,
    httpx.TransportError,
    ConnectionError,
    TimeoutError,
)
CAPABILITIES_FILE = "llm-capabilities.json"


class EndpointUnavailable(RuntimeError):
    """The endpoint failed (after the transport retries): no answer at all."""


class StructuredOutputError(RuntimeError):
    """The model answered, but no answer parsed and validated, even after the repairs."""


class PromptTooLarge(RuntimeError):
    """A request would send more prompt tokens than one call may: it is not sent (the caller falls back)."""


CHARS_PER_TOKEN = 3.0
"""Characters per token of the estimate: JSON-heavy prompts run at about 3 on BPE tokenizers (Qwen,
GPT); the estimate errs high so a budget is not passed by a prompt the server counts larger."""


def estimate_tokens(messages: Sequence[BaseMessage], extra: str = "") -> int:
    """Prompt tokens a request will cost, estimated before it is sent (the server's count comes
    back in ``usage_metadata`` only after it has been paid for). ``extra``: schemas sent beside the
    messages (tools, ``response_format``)."""
    chars = sum(len(_content_text(m.content)) + 8 for m in messages) + len(extra)
    return int(chars / CHARS_PER_TOKEN) + 1


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content)


# --- finding JSON in what a model wrote ---------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript)?[ \t]*\n(.*?)```", re.DOTALL)


def json_values(text: str) -> list[Any]:
    """Every JSON object or array in ``text``: fenced blocks first, else bare values, in order.

    Models write JSON bare, in ```json fences, after a sentence, or inside ``<tool_call>`` tags;
    this accepts all of those and nothing that is not JSON."""
    values: list[Any] = []
    for block in _FENCE.findall(text):
        values.extend(_bare_values(block))
    return values or _bare_values(text)


def _bare_values(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    values: list[Any] = []
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                i += 1
                continue
            if isinstance(value, dict | list):
                values.append(value)
                i = end
                continue
        i += 1
    return values


def error_text(exc: ValidationError, limit: int = 8) -> str:
    """A validation error as the model should read it: path and message per problem."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:limit])


# --- tool calls -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call: name, description (a prompt) and JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True)
class ToolCallOut:
    """One call the model proposed: validated for shape only (the caller judges the arguments)."""

    id: str
    name: str
    args: dict[str, Any]


class _CallJSON(BaseModel):
    tool: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class Proposals(BaseModel):
    """What a model proposing tool calls answers in the JSON modes (calls first: see :func:`proposals_schema`)."""

    calls: list[_CallJSON] = Field(default_factory=list, description="The tool calls, in order; empty for none.")
    summary: str = Field(default="", description="One or two sentences: what you propose and why.")


_NAME_KEYS = ("tool", "name", "function", "tool_name")
_ARGS_KEYS = ("arguments", "args", "parameters", "input")


def _as_call(value: Any) -> dict[str, Any] | None:
    """One call written any of the usual ways ({"name", "arguments"}, {"tool", "args"}, OpenAI's
    {"function": {"name", "arguments": "<json>"}}), as {"tool", "arguments"}; None if it is none."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):
        value = value["function"]
    name = next((value[k] for k in _NAME_KEYS if isinstance(value.get(k), str)), None)
    if name is None:
        return None
    args: Any = next((value[k] for k in _ARGS_KEYS if k in value), {})
    if isinstance(args, str):
        with contextlib.suppress(json.JSONDecodeError):
            args = json.loads(args)
    return {"tool": name, "arguments": args}


def normalize_proposals(value: Any) -> Any:
    """A JSON value as :class:`Proposals` input: a list of calls, one call, or {"summary", "calls"}.

    Anything else is returned unchanged, for validation to reject with a message the model can act on."""
    if isinstance(value, list):
        calls = [_as_call(v) for v in value]
        return {"calls": [c if c is not None else v for c, v in zip(calls, value, strict=True)]}
    if isinstance(value, dict):
        for key in ("calls", "tool_calls"):
            if isinstance(value.get(key), list):
                return {
                    "summary": str(value.get("summary") or value.get("reply") or ""),
                    "calls": [_as_call(v) or v for v in value[key]],
                }
        one = _as_call(value)
        if one is not None:
            return {"calls": [one]}
    return value


def proposals_schema(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """The JSON schema of :class:`Proposals` with each call's arguments tied to its tool's schema,
    so a server that honours ``response_format`` can only produce calls to these tools. The tools'
    ``$defs`` are hoisted to the top (a ``$ref`` must resolve from the root)."""
    defs: dict[str, Any] = {}
    variants: list[dict[str, Any]] = []
    for t in tools:
        params = dict(t.parameters)
        for name, d in dict(params.pop("$defs", {})).items():
            defs.setdefault(name, d)
        variants.append(
            {
                "type": "object",
                "properties": {"tool": {"type": "string", "enum": [t.name]}, "arguments": params},
                "required": ["tool", "arguments"],
            }
        )
    # "calls" before "summary": servers write properties in schema order, and a model that
    # writes its conclusion first talks itself out of acting (seen: "no change needed", calls []).
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "calls": {"type": "array", "items": {"anyOf": variants} if variants else {}},
            "summary": {"type": "string"},
        },
        "required": ["calls", "summary"],
    }
    if defs:
        schema["$defs"] = defs
    return schema


# --- capabilities -----------------------------------------------------------------------------------


@dataclass
class Capabilities:
    """What one endpoint (base URL + model) does, from :func:`probe`."""

    base_url: str
    model: str
    native_tools: bool
    """It returned a native tool call when asked for one."""
    json_schema: bool
    """It constrained the output to a ``response_format`` JSON schema."""
    probed_at: str
    latency_s: float | None = None
    """Wall time of the probe's JSON-schema call (a short prompt, a short answer)."""
    tokens_per_s: float | None = None
    """Completion tokens per second of that call (includes the prompt's time: a lower bound)."""
    notes: list[str] = field(default_factory=list)

    def best_mode(self) -> ResolvedMode:
        if self.native_tools:
            return "tools"
        return "json_schema" if self.json_schema else "json"


class CapabilityCache:
    """Probe results per (base URL, model): in memory, and in a JSON file when given one."""

    _memory: dict[tuple[str, str], Capabilities] = {}  # noqa: RUF012 - shared by every instance on purpose
    _lock = threading.Lock()

    def __init__(self, path: Path | None = None) -> None:
        self.path = path

    def get(self, base_url: str, model: str) -> Capabilities | None:
        key = (base_url.rstrip("/"), model)
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        for entry in self._read():
            if (entry.get("base_url", "").rstrip("/"), entry.get("model")) == key:
                try:
                    caps = Capabilities(**entry)
                except TypeError:
                    return None
                with self._lock:
                    self._memory[key] = caps
                return caps
        return None

    def put(self, caps: Capabilities) -> None:
        key = (caps.base_url.rstrip("/"), caps.model)
        with self._lock:
            self._memory[key] = caps
        if self.path is None:
            return
        kept = [e for e in self._read() if (e.get("base_url", "").rstrip("/"), e.get("model")) != key]
        if not self.path.parent.is_dir():
            return  # no installation home here (a bare eval or script): the memory copy serves this process
        with contextlib.suppress(OSError):  # read-only home: the memory copy still serves this process
            self.path.write_text(json.dumps([*kept, asdict(caps)], indent=1))

    def forget(self, base_url: str, model: str) -> None:
        with self._lock:
            self._memory.pop((base_url.rstrip("/"), model), None)
        if self.path is not None and self.path.exists():
            key = (base_url.rstrip("/"), model)
            kept = [e for e in self._read() if (e.get("base_url", "").rstrip("/"), e.get("model")) != key]
            self.path.write_text(json.dumps(kept, indent=1))

    def _read(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


_PING = ToolSpec(
    name="record_number",
    description="Records one number.",
    parameters={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
)
_PING_SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
    "additionalProperties": False,
}


_PROBE_LIMIT: dict[str, Any] = {"max_completion_tokens": 48}
"""Probe answers are a few tokens; a model that rambles must not hold a slow CPU for minutes."""


def probe(chat: BaseChatModel, *, base_url: str, model: str) -> Capabilities:
    """Ask the endpoint two tiny questions: does it return a native tool call, and does a
    ``response_format`` JSON schema constrain its answer (asked for prose, does it still answer
    with the schema's object)? Raises :class:`EndpointUnavailable` when it does not answer at all."""
    notes: list[str] = []
    try:
        reply = chat.bind_tools([_PING.openai_schema()], tool_choice="required", **_PROBE_LIMIT).invoke(
            [HumanMessage("Record the number 7 with the record_number tool.")]
        )
        native = isinstance(reply, AIMessage) and bool(reply.tool_calls)
        if not native:
            notes.append("no native tool call returned (the model wrote its answer in the content)")
        t0 = time.monotonic()
        reply = chat.bind(response_format=_response_format("number", _PING_SCHEMA), **_PROBE_LIMIT).invoke(
            [HumanMessage("Say hello in one short sentence.")]
        )
        latency = time.monotonic() - t0
        text = reply.content if isinstance(reply.content, str) else ""
        try:
            value = json.loads(text)
            honoured = isinstance(value, dict) and set(value) == {"n"} and isinstance(value["n"], int)
        except ValueError:
            honoured = False
        if not honoured:
            notes.append("response_format json_schema was not honoured")
    except Exception as exc:  # any failure to answer: unreachable, auth, 4xx/5xx
        raise EndpointUnavailable(f"model endpoint failed: {type(exc).__name__}: {exc}"[:300]) from exc
    usage = reply.usage_metadata if isinstance(reply, AIMessage) else None
    out_tokens = int(usage.get("output_tokens") or 0) if usage else 0
    return Capabilities(
        base_url=base_url.rstrip("/"),
        model=model,
        native_tools=native,
        json_schema=honoured,
        probed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        latency_s=round(latency, 2),
        tokens_per_s=round(out_tokens / latency, 2) if latency > 0 and out_tokens else None,
        notes=notes,
    )


def _response_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


# --- the caller -------------------------------------------------------------------------------------


@dataclass
class CallRecord:
    """One request to the model: for run reports, benches and ``orderops llm check``."""

    mode: ResolvedMode
    latency_s: float
    input_tokens: int
    output_tokens: int
    ok: bool
    """The reply parsed and validated (before the caller judged its content)."""
    error: str | None = None
    prompt_tokens_est: int = 0
    """The prompt's size as estimated before sending (:func:`estimate_tokens`), checked against the budget."""


@dataclass
class Proposal:
    """Tool calls one reply proposed, with what is needed to answer about each of them."""

    calls: list[ToolCallOut]
    text: str
    reply: AIMessage
    native: bool
    """The calls came as native tool calls (follow-ups go back as tool messages)."""


OnReply = Callable[[AIMessage], None]


class StructuredModel:
    """A chat model that answers with validated structures (:meth:`ask`) or tool calls (:meth:`propose`).

    ``mode`` ``auto`` is resolved on first use from ``cache``/:func:`probe` for ``endpoint``
    (base URL, model); without an endpoint (a scripted model) it means ``tools``. ``on_reply`` sees
    every reply (the planner counts tokens with it and may stop the run by raising).
    ``max_prompt_tokens`` is the per-call budget: a request estimated above it is never sent
    (:class:`PromptTooLarge`), so one call's cost is bounded before it is paid."""

    def __init__(
        self,
        chat: BaseChatModel,
        *,
        mode: Mode = "auto",
        endpoint: tuple[str, str] | None = None,
        cache: CapabilityCache | None = None,
        max_repairs: int = 2,
        attempts: int = 3,
        retry_wait_s: float = 0.5,
        max_prompt_tokens: int | None = None,
    ) -> None:
        self.chat = chat
        self.max_prompt_tokens = max_prompt_tokens
        self._extra = ""
        self._estimate = 0
        self.requested_mode: Mode = mode
        self.endpoint = endpoint
        self.cache = cache or CapabilityCache()
        self.max_repairs = max_repairs
        self.attempts = attempts
        self.retry_wait_s = retry_wait_s
        self.calls: list[CallRecord] = []
        self._mode: ResolvedMode | None = None if mode == "auto" else mode

    # --- mode ---------------------------------------------------------------------------------

    def mode(self) -> ResolvedMode:
        """The mode in use; ``auto`` probes the endpoint once (cached per base URL + model)."""
        if self._mode is None:
            if self.endpoint is None:
                self._mode = "tools"
            else:
                base_url, model = self.endpoint
                caps = self.cache.get(base_url, model)
                if caps is None:
                    caps = probe(self.chat, base_url=base_url, model=model)
                    self.cache.put(caps)
                self._mode = caps.best_mode()
        return self._mode

    # --- one structured answer ----------------------------------------------------------------

    def ask(self, messages: Sequence[BaseMessage], schema: type[T], *, on_reply: OnReply | None = None) -> T:
        """A validated ``schema`` instance; repairs by re-asking with the validation error."""
        mode = self.mode()
        json_schema = schema.model_json_schema()
        spec = ToolSpec(schema.__name__, (schema.__doc__ or schema.__name__).strip(), json_schema)
        self._extra = json.dumps(json_schema) if mode == "tools" else ""  # a response_format becomes a grammar
        runnable, convo = self._ask_request(mode, spec, list(messages))
        return self._repairing(
            mode,
            runnable,
            convo,
            lambda reply: _answer(reply, spec, schema),
            on_reply=on_reply,
            repair_mode=mode,
            failure="the model's answer did not validate",
        )

    def _ask_request(
        self, mode: ResolvedMode, spec: ToolSpec, convo: list[BaseMessage]
    ) -> tuple[Runnable[LanguageModelInput, BaseMessage], list[BaseMessage]]:
        """How one structure is asked for in each mode: a required call of a function whose arguments
        are the schema, a response_format the server decodes against, or the schema in the prompt."""
        if mode == "tools":
            return self._bind_tools([spec], tool_choice="required"), convo
        if mode == "json_schema":
            bound = self.chat.bind(response_format=_response_format(spec.name, spec.parameters))
            return bound, _with_json_instruction(convo, None)
        return self.chat, _with_json_instruction(convo, spec.parameters)

    # --- tool calls ---------------------------------------------------------------------------

    def propose(
        self,
        messages: Sequence[BaseMessage],
        tools: Sequence[ToolSpec],
        *,
        on_reply: OnReply | None = None,
        example: str | None = None,
    ) -> Proposal:
        """The tool calls the model proposes (shape-checked; the caller judges them).

        In ``tools`` mode a reply with no native call and no JSON is a proposal of nothing (the
        model answered in prose, as the tools API allows); in the JSON modes an answer that does
        not parse as :class:`Proposals` is repaired like :meth:`ask`'s. ``example``: the one-call
        example the JSON modes show (default: a reroute by order id)."""
        mode = self.mode()
        # Tool schemas are rendered into the prompt; a response_format constrains decoding instead.
        self._extra = json.dumps([t.openai_schema() for t in tools]) if mode == "tools" else ""
        runnable, convo = self._propose_request(mode, tools, example, list(messages))
        return self._repairing(
            mode,
            runnable,
            convo,
            lambda reply: _proposal(reply, mode),
            on_reply=on_reply,
            repair_mode="json",
            failure="the model's proposals did not parse",
        )

    def _propose_request(
        self, mode: ResolvedMode, tools: Sequence[ToolSpec], example: str | None, convo: list[BaseMessage]
    ) -> tuple[Runnable[LanguageModelInput, BaseMessage], list[BaseMessage]]:
        """How tool calls are asked for in each mode: the tools bound natively (the model may call none),
        a response_format of :func:`proposals_schema`, or :class:`Proposals`' schema in the prompt."""
        if mode == "tools":
            return self._bind_tools(tools, tool_choice=None), convo
        if mode == "json_schema":
            bound = self.chat.bind(response_format=_response_format("proposals", proposals_schema(tools)))
            return bound, _with_json_instruction(convo, None, tools, example)
        return self.chat, _with_json_instruction(convo, Proposals.model_json_schema(), tools, example)

    def _repairing(
        self,
        mode: ResolvedMode,
        runnable: Runnable[LanguageModelInput, BaseMessage],
        convo: list[BaseMessage],
        parse: Callable[[AIMessage], R],
        *,
        on_reply: OnReply | None,
        repair_mode: str,
        failure: str,
    ) -> R:
        """Send, ``parse`` the reply, and on a parse failure re-ask with the problem, at most
        ``max_repairs`` times. Every reply, good or bad, is recorded and shown to ``on_reply``, so a
        token budget counts the failed rounds too (and may stop the run between them)."""
        problem = "no answer"
        for round_no in range(self.max_repairs + 1):
            reply, started = self._invoke(runnable, convo)
            try:
                out = parse(reply)
            except (ValidationError, StructuredOutputError) as exc:
                problem = error_text(exc) if isinstance(exc, ValidationError) else str(exc)
                self._settle(mode, started, reply, on_reply, error=problem)
                if round_no == self.max_repairs:
                    break
                convo = [*convo, *_repair_messages(reply, problem, repair_mode)]
                continue
            self._settle(mode, started, reply, on_reply)
            return out
        raise StructuredOutputError(f"{failure} after {self.max_repairs} repairs: {problem}"[:400])

    def _settle(
        self,
        mode: ResolvedMode,
        started: float,
        reply: AIMessage,
        on_reply: OnReply | None,
        *,
        error: str | None = None,
    ) -> None:
        """Record the reply (ok when there is no ``error``), then show it to ``on_reply``: recorded
        first, so a budget that stops the run by raising still leaves the call in :attr:`calls`."""
        self._record(mode, started, reply, ok=error is None, error=error)
        if on_reply is not None:
            on_reply(reply)

    @staticmethod
    def follow_up(proposal: Proposal, results: dict[str, str], instruction: str) -> list[BaseMessage]:
        """Messages that tell the model what became of each proposed call (by id) and what to do now."""
        if proposal.native:
            return [
                proposal.reply,
                *(ToolMessage(content=text, tool_call_id=cid) for cid, text in results.items()),
                HumanMessage(instruction),
            ]
        lines = []
        names = {c.id: c.name for c in proposal.calls}
        for n, (cid, text) in enumerate(results.items(), 1):
            lines.append(f"{n}. {names.get(cid, cid)}: {text}")
        return [AIMessage(content=_text(proposal.reply)), HumanMessage("\n".join([*lines, "", instruction]))]

    # --- internals ----------------------------------------------------------------------------

    def _bind_tools(
        self, tools: Sequence[ToolSpec], *, tool_choice: str | None
    ) -> Runnable[LanguageModelInput, BaseMessage]:
        try:
            return self.chat.bind_tools([t.openai_schema() for t in tools], tool_choice=tool_choice)
        except NotImplementedError:
            return self.chat  # scripted test models answer with tool calls without being told the schemas

    def _invoke(
        self, runnable: Runnable[LanguageModelInput, BaseMessage], messages: Sequence[BaseMessage]
    ) -> tuple[AIMessage, float]:
        retrying = Retrying(
            stop=stop_after_attempt(max(1, self.attempts)),
            wait=wait_exponential(multiplier=self.retry_wait_s, max=5),
            retry=retry_if_exception_type(TRANSPORT_ERRORS),
            reraise=True,
        )
        self._estimate = estimate_tokens(messages, self._extra)
        if self.max_prompt_tokens is not None and self._estimate > self.max_prompt_tokens:
            raise PromptTooLarge(
                f"the prompt would be about {self._estimate} tokens; one call may send {self.max_prompt_tokens}"
            )
        started = time.monotonic()
        try:
            for attempt in retrying:
                with attempt:
                    started = time.monotonic()
                    reply = tracing.model_call(  # a GenAI span: model and tokens, never the messages
                        runnable.invoke,
                        list(messages),
                        model=self.endpoint[1] if self.endpoint else None,
                        mode=self._mode or self.requested_mode,
                    )
        except Exception as exc:  # transport after retries, auth, 4xx/5xx: the caller falls back
            raise EndpointUnavailable(f"model endpoint failed: {type(exc).__name__}: {exc}"[:300]) from exc
        if not isinstance(reply, AIMessage):
            raise EndpointUnavailable(f"model returned {type(reply).__name__}, not an AI message")
        return reply, started

    def _record(
        self, mode: ResolvedMode, started: float, reply: AIMessage, *, ok: bool, error: str | None = None
    ) -> None:
        usage: dict[str, Any] = dict(reply.usage_metadata or {})
        self.calls.append(
            CallRecord(
                mode=mode,
                latency_s=round(time.monotonic() - started, 3),
                input_tokens=int(usage.get("input_tokens") or 0),
                output_tokens=int(usage.get("output_tokens") or 0),
                ok=ok,
                error=error,
                prompt_tokens_est=self._estimate,
            )
        )


def _answer_value(reply: AIMessage, spec: ToolSpec) -> Any:
    """The answer's JSON: the first native call's arguments, else the first JSON value in the text
    (unwrapped when the model wrote a call of ``spec`` into its content, as small models do)."""
    if reply.tool_calls:
        return reply.tool_calls[0].get("args") or {}
    found = json_values(_text(reply))
    value = found[0] if found else None
    wrapped = _as_call(value)
    if wrapped is not None and wrapped["tool"] == spec.name and isinstance(wrapped["arguments"], dict):
        return wrapped["arguments"]
    return value


def _answer(reply: AIMessage, spec: ToolSpec, schema: type[T]) -> T:
    """The reply as a ``schema`` instance; raises what :meth:`StructuredModel.ask` repairs."""
    value = _answer_value(reply, spec)
    if value is None:
        raise StructuredOutputError("the answer holds no JSON object")
    return schema.model_validate(value)


def _proposal(reply: AIMessage, mode: ResolvedMode) -> Proposal:
    """The calls one reply proposes: native calls as they are; else :class:`Proposals` parsed from its
    JSON. Prose without JSON is a proposal of nothing in ``tools`` mode (the tools API allows it) and
    a repairable error in the JSON modes (the model was told to answer JSON)."""
    if reply.tool_calls:
        native = [
            ToolCallOut(id=c.get("id") or f"call-{n}", name=c["name"], args=dict(c.get("args") or {}))
            for n, c in enumerate(reply.tool_calls)
        ]
        return Proposal(calls=native, text=_text(reply), reply=reply, native=True)
    found = json_values(_text(reply))
    if found:
        parsed = Proposals.model_validate(normalize_proposals(found[0]))
        text = parsed.summary
    elif mode == "tools":
        parsed = Proposals(summary=_text(reply))
        text = _text(reply)
    else:
        raise StructuredOutputError("the answer holds no JSON object")
    calls = [ToolCallOut(id=f"call-{n}", name=c.tool, args=c.arguments) for n, c in enumerate(parsed.calls)]
    return Proposal(calls=calls, text=text, reply=reply, native=False)


def _text(reply: AIMessage) -> str:
    if isinstance(reply.content, str):
        return reply.content
    return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in reply.content)


DEFAULT_EXAMPLE = (
    '{"calls": [{"tool": "<tool name>", "arguments": {"order_ids": ["<id from FACTS>"], "reason": "<why>"}}], '
    '"summary": "<one sentence>"}'
)


def _with_json_instruction(
    messages: list[BaseMessage],
    schema: dict[str, Any] | None,
    tools: Sequence[ToolSpec] = (),
    example: str | None = None,
) -> list[BaseMessage]:
    """The conversation with a system note on how to answer when there is no tool API."""
    parts = ["Answer with one JSON object only, no other text."]
    if tools:
        parts.append(
            'Write each tool call as {"tool": <name>, "arguments": {...}} in "calls", then say in "summary" '
            'what you propose and why (an empty "calls" list only when nothing should be done), e.g. '
            f"{example or DEFAULT_EXAMPLE}. The tools:"
        )
        parts += [f"- {_signature(t, full=schema is not None)}: {t.description.strip()}" for t in tools]
    if schema is not None:
        parts.append(f"The JSON schema of the answer: {json.dumps(schema, separators=(',', ':'))}")
    note = SystemMessage("\n".join(parts))
    if messages and isinstance(messages[0], SystemMessage):
        first = messages[0]
        merged = SystemMessage(f"{first.content}\n\n{note.content}")
        return [merged, *messages[1:]]
    return [note, *messages]


def _signature(tool: ToolSpec, *, full: bool) -> str:
    """``name(arg, arg?)`` when the server holds the answer to the schema (``json_schema`` mode: the
    prompt need not repeat it), else the name and the full argument schema."""
    if full:
        return f"{tool.name} {json.dumps(tool.parameters, separators=(',', ':'))}"
    required = set(tool.parameters.get("required", []))
    names = [n if n in required else f"{n}?" for n in tool.parameters.get("properties", {})]
    return f"{tool.name}({', '.join(names)})"


def _repair_messages(reply: AIMessage, problem: str, mode: str) -> list[BaseMessage]:
    if mode == "tools" and reply.tool_calls:
        cid = reply.tool_calls[0].get("id") or "call-0"
        return [
            reply,
            ToolMessage(content=f"invalid: {problem}", tool_call_id=cid),
            HumanMessage(f"That answer was invalid: {problem}. Call the function again with corrected values."),
        ]
    return [
        AIMessage(content=_text(reply)),
        HumanMessage(f"That answer was invalid: {problem}. Reply again with the corrected JSON object only."),
    ]


# --- from settings ----------------------------------------------------------------------------------


def make_chat_model(settings: Settings) -> BaseChatModel | None:
    """``ChatOpenAI`` on the configured endpoint, or ``None`` when no model is configured.

    SDK retries are off: :class:`StructuredModel` retries transport errors itself, so the number
    of attempts is one setting. Temperature and seed are fixed by default for repeatable answers."""
    if not settings.llm_configured:
        return None
    from langchain_openai import ChatOpenAI

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
    kwargs: dict[str, Any] = {}
    if settings.llm_seed is not None:
        kwargs["seed"] = settings.llm_seed
    return ChatOpenAI(
        model=settings.llm_model or "",
        base_url=settings.llm_base_url,
        api_key=lambda: key,
        timeout=settings.llm_timeout_s,
        max_retries=0,
        temperature=settings.llm_temperature,
        max_completion_tokens=settings.llm_max_tokens,
        **kwargs,
    )


def endpoint_problem(settings: Settings, *, timeout_s: float = 5.0) -> str | None:
    """Why the configured endpoint cannot be used (not configured, or nothing answers), else None.

    Any HTTP answer to ``GET <base>/models`` counts as reachable (some servers have no such route);
    only "no model configured", a refused connection or a timeout are problems. Cheap: no model call."""
    if not settings.llm_configured:
        return "no model is configured (set ORDEROPS_LLM_BASE_URL and ORDEROPS_LLM_MODEL)"
    headers = {}
    if settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    url = f"{(settings.llm_base_url or '').rstrip('/')}/models"
    try:
        httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"the model endpoint {settings.llm_base_url} is unreachable: {type(exc).__name__}: {exc}"[:300]
    return None


def capability_cache(settings: Settings) -> CapabilityCache:
    """The probe cache of this installation (``<home>/llm-capabilities.json``)."""
    return CapabilityCache(Path(settings.home) / CAPABILITIES_FILE)


def make_structured_model(settings: Settings, chat: BaseChatModel | None = None) -> StructuredModel | None:
    """The configured endpoint as a :class:`StructuredModel` (``None`` when no model is configured)."""
    chat = chat if chat is not None else make_chat_model(settings)
    if chat is None:
        return None
    endpoint = (settings.llm_base_url or "", settings.llm_model or "") if settings.llm_configured else None
    return StructuredModel(
        chat,
        mode=settings.llm_mode,
        endpoint=endpoint,
        cache=capability_cache(settings),
        max_repairs=settings.llm_max_repairs,
        attempts=settings.llm_max_retries + 1,
        max_prompt_tokens=settings.llm_max_prompt_tokens,
    )
