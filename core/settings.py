"""Application settings, read from the environment (prefix ``ORDEROPS_``) or a ``.env`` file.

Settings are built once by whoever starts the process (CLI, API server, tests) and then injected;
nothing in the project reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path("var")


class SlackPerson(BaseModel):
    """A Slack user linked to the person their API keys and console sessions name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    person: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@+-]+$")
    roles: list[str] = Field(default_factory=list)


class Settings(BaseSettings):
    """Every knob OrderOps reads. Defaults give the embedded, no-network configuration."""

    model_config = SettingsConfigDict(env_prefix="ORDEROPS_", env_file=".env", extra="ignore", frozen=True)

    home: Path = Field(default=DEFAULT_HOME, description="Directory for the SQLite file, documents, logs.")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "ORDEROPS_DATABASE_URL"),
        description="SQLAlchemy URL; PostgreSQL via postgresql+psycopg://. Default: SQLite under home.",
    )
    sql_echo: bool = False
    clock: Literal["network", "system"] = Field(
        default="system",
        description="The digital twin's today. `system`: the wall clock (a real installation); `network`: the "
        "seeded network's business date, for reproducible demos, evals and tests. Records (runs, approvals, "
        "audit, jobs, leases) are always stamped with the wall clock.",
    )

    # Network generator defaults (the demo network).
    seed: int = 42
    nodes: int = 8
    skus: int = 500
    customers: int = 20
    orders: int = 5_000

    # Model endpoint (tools.llm). Unset means: no LLM, deterministic planners and extractors only.
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8088/v1 (llama.cpp, Ollama, vLLM)."
    )
    llm_model: str | None = Field(default=None, description="Model name the endpoint serves.")
    llm_api_key: SecretStr | None = Field(default=None, description="API key, if the endpoint wants one.")
    llm_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="Seconds one model request may take. Local CPU models need minutes for a long prompt; model "
        "time never counts against intake_parse_seconds.",
    )
    llm_max_tokens: int = Field(default=1024, ge=16, description="Most tokens one answer may have.")
    llm_max_prompt_tokens: int | None = Field(
        default=6000,
        ge=256,
        description="Per-call budget: most prompt tokens (estimated before sending) one model request may carry; a "
        "larger request is not sent and the run falls back, saying so. Unset: no limit.",
    )
    llm_max_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a request that failed in transport (connection, 5xx, 429)."
    )
    llm_max_repairs: int = Field(
        default=2,
        ge=0,
        le=5,
        description="Times an answer that does not parse or validate goes back to the model with the error.",
    )
    llm_temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature; 0 for repeatability.")
    llm_seed: int | None = Field(
        default=0, description="Sampling seed sent where the server supports one; unset: none."
    )
    llm_max_read_steps: int = Field(
        default=4,
        ge=0,
        le=20,
        description="Agent loop: model turns in which the LLM planner may call read tools (node load, order search, "
        "inventory, rate quotes, carrier status; through the gateway, audited) before it must propose; 0: one "
        "planning call over the fact sheet, no reads.",
    )
    llm_max_read_tokens: int | None = Field(
        default=16000,
        ge=256,
        description="Agent loop: model tokens (in + out, summed) the planner's reads may spend in one run; once "
        "spent it reads no more and must propose from what it read, or say it cannot. Unset: only the steps bound it.",
    )
    llm_mode: Literal["auto", "tools", "json_schema", "json"] = Field(
        default="auto",
        description="How structured answers are asked for: native tool calls, a response_format JSON schema, or JSON "
        "in the content. auto: probe the endpoint once (cached per base URL + model in "
        "<home>/llm-capabilities.json) and use the first it supports, in that order.",
    )

    policy_path: Path | None = Field(default=None, description="Policy YAML; default: the built-in policy.")
    redaction_key: SecretStr | None = Field(
        default=None,
        description="Key of the tokens that replace personal data in the audit trail; every process writing "
        "one trail needs the same key. Default: a random key made once and kept in the database, encrypted "
        "with the secrets key (shared by every machine on that database).",
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts the installation's secrets in the database (redaction key, console "
        "secret); set the same one on every machine. Default: a key made once in <home>/secrets.key (0600), "
        "enough for one machine.",
    )
    redaction_rules_path: Path | None = None
    approval_ttl_hours: float = Field(default=4.0, gt=0)

    # Anchoring the audit trail (guardrails.anchor): signed checkpoints kept outside the database.
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="Ed25519 key that signs audit checkpoints (PEM, or a 32-byte seed as hex or base64); never "
        "stored in the database. Default: a key made once in <home>/audit-signing.key (0600).",
    )
    audit_anchor_path: Path | None = Field(
        default=None,
        description="Append-only JSON-lines file the checkpoints go to; put it on another disk or host, or make "
        "it append-only (chattr +a). Default: <home>/audit-anchors.jsonl.",
    )
    audit_anchor_every: int = Field(default=100, ge=1, description="Checkpoint the trail every this many appends.")
    audit_anchor_interval_s: float = Field(
        default=300.0, ge=0, description="...or on the first append this many seconds after the last one (0: off)."
    )
    schedule_watch_minutes: float | None = Field(
        default=None,
        gt=0,
        description="Workers run the watch (orderops watch --once: findings become alerts) every this many "
        "minutes, once per interval across all workers on the database (services.schedule). Unset: not scheduled.",
    )
    schedule_approvals_minutes: float | None = Field(
        default=None,
        gt=0,
        description="Workers run the approval-mail tick (orderops approvals tick) every this many minutes, once "
        "per interval across workers. Unset: every minute once smtp_host is set, else not scheduled.",
    )
    installation_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Names this installation in its checkpoints. Default: a random id kept in <home>/installation.id.",
    )

    # Ways in: alert webhooks and the workers that run jobs.
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret of signed alert webhooks (Standard Webhooks: `whsec_<base64>` or raw text). "
        "Unset: alerts need an operator API key.",
    )
    webhook_tolerance_s: int = Field(default=300, ge=1, description="Replay window of webhook timestamps, seconds.")
    alert_dedup_window_s: float = Field(
        default=900.0, ge=0, description="Alerts with one fingerprint within this many seconds start one run."
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest HTTP request body accepted (bytes); larger ones get 413 before they are read.",
    )
    job_engine: Literal["dbos"] = Field(
        default="dbos",
        description="What runs queued runs, continuations and intake: `dbos` (DBOS workflows on the same database), "
        "the only engine since the polling queue was retired (issue 12); kept so existing settings still load.",
    )
    worker_threads: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Jobs the in-process DBOS worker of `orderops serve` runs at once (0: only `orderops worker`).",
    )

    # Slack for operators (api/slack). Unset signing secret or bot token: no Slack routes are mounted.
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="Signing secret of the Slack app; requests are verified against it."
    )
    slack_bot_token: SecretStr | None = Field(default=None, description="Bot token (xoxb-...) for the Web API.")
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Base URL of the Slack Web API (tests point it at a fake)."
    )
    slack_approvers: dict[str, list[str] | SlackPerson] = Field(
        default_factory=dict,
        description='Slack user id -> the OrderOps person and roles, as JSON: {"U0123": {"person": "amir", '
        '"roles": ["approver"]}}. The person is the name their API keys carry, so one human is one approver '
        'whichever way they come in. The short form {"U0456": ["operator"]} acts as its own person '
        "`slack:U0456`. Users not listed may do nothing through Slack.",
    )
    slack_approval_channel: str | None = Field(
        default=None, description="Channel for approval cards of runs not started from a Slack conversation."
    )
    slack_link_base_url: str = Field(
        default="http://127.0.0.1:8080", description="Public base URL of this server, for console links in Slack."
    )

    @property
    def slack_configured(self) -> bool:
        return self.slack_signing_secret is not None and self.slack_bot_token is not None

    # E-mail inbox (purchase orders by mail): an IMAP mailbox, or a local Maildir / folder of .eml files.
    imap_host: str | None = Field(default=None, description="IMAP server; unset: no IMAP polling.")
    imap_port: int | None = Field(default=None, ge=1, le=65535, description="Default: 993 with SSL, else 143.")
    imap_user: str | None = None
    imap_password: SecretStr | None = None
    imap_ssl: bool = Field(default=True, description="Implicit TLS (IMAPS); false: plain IMAP, see imap_starttls.")
    imap_starttls: bool = Field(default=False, description="Without imap_ssl: upgrade with STARTTLS.")
    imap_folder: str = "INBOX"
    imap_processed_folder: str = Field(
        default="OrderOps/Processed", description="Where handled mail is moved ('/' = the server's separator)."
    )
    maildir_path: Path | None = Field(
        default=None, description="A Maildir (new/ cur/ tmp/) or a plain folder of .eml files to watch."
    )
    inbox_poll_interval_s: float = Field(default=60.0, gt=0, description="Seconds between inbox polls.")

    # Parsing received documents (intake.sandbox): a child process per document, killed at the limits.
    intake_parse_seconds: float = Field(
        default=30.0, gt=0, description="Wall time one document's parse may take; the parser is then killed."
    )
    intake_parse_memory_mb: int = Field(
        default=1024, ge=128, description="Address space (MiB) of the child process that parses one document."
    )
    intake_parse_isolated: bool = Field(
        default=True, description="Parse in a capped child process; false only where processes cannot be forked."
    )
    order_risk_hold: float | None = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Order risk (core.risk, 0..1) at or above which intake holds an order it would create and "
        "sends it to review with the score's reasons. Unset: intake does not score orders.",
    )

    # Tracing (core.tracing): OpenTelemetry spans of runs, tool calls and model calls; ids and counts only.
    traces_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="Where spans go: `none` (off), `console` (stdout), `otlp` (OTLP/HTTP, configured by the standard "
        "OTEL_EXPORTER_OTLP_* variables; needs the `opentelemetry-exporter-otlp-proto-http` package).",
    )
    allow_third_party_tracing: bool = Field(
        default=False,
        description="Start even when LANGSMITH_TRACING / LANGCHAIN_TRACING_V2 is on: such tracing sends prompts and "
        "personal data to a hosted service past the audit trail's redaction, so it is refused by default.",
    )

    # Approvals by e-mail (services.approval_mail): signed single-use links, reminders, escalation, expiry.
    smtp_host: str | None = Field(default=None, description="SMTP server for approval e-mails; unset: none are sent.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP connection with STARTTLS.")
    mail_from: str = Field(default="orderops@localhost", description="Sender address of OrderOps' e-mails.")
    mail_max_attempts: int = Field(
        default=5, ge=1, le=50, description="Delivery attempts of one e-mail before it goes to the dead letters."
    )
    approval_email_approvers: dict[str, SlackPerson] = Field(
        default_factory=dict,
        description='E-mail address -> the OrderOps person and roles, as JSON: {"amir@example.com": {"person": '
        '"amir", "roles": ["approver"]}}; they get every new approval request by e-mail.',
    )
    approval_email_escalation: dict[str, SlackPerson] = Field(
        default_factory=dict,
        description="The second group (same form), mailed when nobody answered within approval_escalate_after_minutes.",
    )
    approval_remind_after_minutes: float = Field(
        default=60.0, gt=0, description="A request still unanswered this long after it was mailed is reminded once."
    )
    approval_escalate_after_minutes: float = Field(
        default=120.0, gt=0, description="A request still unanswered this long after it was mailed is escalated."
    )
    approval_link_key: SecretStr | None = Field(
        default=None,
        description="Key that signs approval links (any text). Default: a random key kept in "
        "<home>/approval-links.key; every process serving links needs the same key.",
    )
    approval_link_base_url: str | None = Field(
        default=None, description="Public base URL in approval links; unset: slack_link_base_url."
    )

    @property
    def resolved_database_url(self) -> str:
        """The URL to connect to: ``database_url`` if set, else the SQLite file under ``home``."""
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{(self.home / 'orderops.db').as_posix()}"

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)


def normalize_database_url(url: str) -> str:
    """Accept the common ``postgres://`` and ``postgresql://`` spellings and use psycopg 3 for them.

    Users paste URLs from Heroku-style environments; SQLAlchemy would otherwise pick psycopg2,
    which we do not ship.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
