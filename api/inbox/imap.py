"""The IMAP poller: new mail in one folder -> stored documents -> intake -> the processed folder.

Messages are fetched by UID, newest cursor first: ``inbox_cursors`` keeps the highest UID finished
(stored, dispatched *and* moved) per mailbox and UIDVALIDITY, and advances only after the move, so
a poller killed mid-batch sees the unmoved messages again on restart; their Message-IDs are known,
so they are only moved. Fetching never sets ``\\Seen`` (a person reading the mailbox still sees
what is new to them).

IDLE: :meth:`ImapPoller.run` can wait with IMAP IDLE (``idle=True``) instead of sleeping, which
wakes it as soon as mail arrives; polling stays the default because every server supports it.

What this module must never do: move or flag a message whose bytes are not stored and recorded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imap_tools import AND, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.mailbox import BaseMailBox
from imap_tools.message import MailMessage

from api.inbox.ingest import Hook, Ingestor, PollReport
from core.clock import Clock
from core.db.engine import Database
from core.db.tables_inbox import InboxCursorRow
from core.errors import ConfigurationError
from core.settings import Settings

__all__ = ["ImapConfig", "ImapPoller", "PollReport", "connect"]

log = logging.getLogger("orderops.inbox.imap")


@dataclass(frozen=True)
class ImapConfig:
    host: str
    user: str
    password: str
    port: int | None = None
    ssl: bool = True
    starttls: bool = False
    folder: str = "INBOX"
    processed_folder: str = "OrderOps/Processed"
    timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ImapConfig:
        if not settings.imap_host or not settings.imap_user or settings.imap_password is None:
            raise ConfigurationError(
                "IMAP needs ORDEROPS_IMAP_HOST, ORDEROPS_IMAP_USER and ORDEROPS_IMAP_PASSWORD "
                "(or use ORDEROPS_MAILDIR_PATH for a local Maildir)"
            )
        return cls(host=settings.imap_host, port=settings.imap_port, user=settings.imap_user,
                   password=settings.imap_password.get_secret_value(), ssl=settings.imap_ssl,
                   starttls=settings.imap_starttls, folder=settings.imap_folder,
                   processed_folder=settings.imap_processed_folder)  # fmt: skip

    @property
    def resolved_port(self) -> int:
        return self.port or (993 if self.ssl else 143)

    @property
    def mailbox_key(self) -> str:
        return f"imap://{self.user}@{self.host}:{self.resolved_port}/{self.folder}"


def connect(cfg: ImapConfig) -> BaseMailBox:
    """A logged-in mailbox: implicit TLS, STARTTLS or plain, as configured."""
    box: BaseMailBox
    try:
        if cfg.ssl:
            box = MailBox(cfg.host, cfg.resolved_port, timeout=cfg.timeout_s)
        elif cfg.starttls:
            box = MailBoxStartTls(cfg.host, cfg.resolved_port, timeout=cfg.timeout_s)
        else:
            box = MailBoxUnencrypted(cfg.host, cfg.resolved_port, timeout=cfg.timeout_s)
        box.login(cfg.user, cfg.password, initial_folder=None)
    except Exception as exc:
        raise ConfigurationError(f"cannot log in to IMAP {cfg.mailbox_key}: {exc}", host=cfg.host) from exc
    return box


class RawMailMessage(MailMessage):
    """A fetched message that also keeps the server's bytes as they are: the document store keeps
    what was received, not what Python's e-mail package would write back."""

    def __init__(self, fetch_data: list[Any]) -> None:
        super().__init__(fetch_data)
        self.raw: bytes = self._get_message_data_parts(fetch_data)[0] or self.obj.as_bytes()


class ImapPoller:
    """Polls one IMAP folder. ``open_box`` is injected so tests (and other auth: XOAUTH2) can swap it."""

    def __init__(
        self,
        cfg: ImapConfig,
        ingestor: Ingestor,
        db: Database,
        clock: Clock,
        *,
        open_box: Callable[[ImapConfig], BaseMailBox] = connect,
        batch_size: int = 50,
        after_dispatch: Hook | None = None,
    ) -> None:
        self.cfg = cfg
        self.ingestor = ingestor
        self.db = db
        self.clock = clock
        self.open_box = open_box
        self.batch_size = batch_size
        self.after_dispatch = after_dispatch

    # --- cursor -----------------------------------------------------------------------------------
    def last_uid(self, uidvalidity: int) -> int:
        with self.db.begin() as s:
            row = s.get(InboxCursorRow, (self.cfg.mailbox_key, uidvalidity))
            return 0 if row is None else row.last_uid

    def _advance(self, uidvalidity: int, uid: int) -> None:
        with self.db.begin() as s:
            row = s.get(InboxCursorRow, (self.cfg.mailbox_key, uidvalidity))
            if row is None:
                s.add(InboxCursorRow(mailbox=self.cfg.mailbox_key, uidvalidity=uidvalidity, last_uid=uid,
                                     updated_at=self.clock.now()))  # fmt: skip
            elif uid > row.last_uid:
                row.last_uid = uid
                row.updated_at = self.clock.now()

    # --- folders ----------------------------------------------------------------------------------
    def processed_folder(self, box: BaseMailBox) -> str:
        """The processed folder in the server's hierarchy separator, created when missing."""
        delim = "/"
        for info in box.folder.list("", "%"):
            if info.delim:
                delim = info.delim
                break
        name = self.cfg.processed_folder.replace("/", delim)
        if not box.folder.exists(name):
            # Parents first: some servers (Maildir++ layouts) do not create them implicitly.
            parts = name.split(delim)
            for i in range(1, len(parts) + 1):
                part = delim.join(parts[:i])
                if not box.folder.exists(part):
                    box.folder.create(part)
        return name

    # --- polling ----------------------------------------------------------------------------------
    def poll_once(self, box: BaseMailBox | None = None) -> PollReport:
        """Handle every message newer than the cursor; returns what happened."""
        if box is not None:
            return self._poll(box)
        own = self.open_box(self.cfg)
        try:
            return self._poll(own)
        finally:
            _logout(own)

    def _poll(self, box: BaseMailBox) -> PollReport:
        report = PollReport()
        target = self.processed_folder(box)
        box.email_message_class = RawMailMessage
        box.folder.set(self.cfg.folder)
        uidvalidity = int(box.folder.status(self.cfg.folder, ["UIDVALIDITY"])["UIDVALIDITY"])
        while True:
            last = self.last_uid(uidvalidity)
            # ``N:*`` always matches the highest UID even when it is below N: filter again here.
            uids = sorted(int(u) for u in box.uids(AND(uid=f"{last + 1}:*")) if int(u) > last)
            if not uids:
                return report
            batch = uids[: self.batch_size]
            msgs = box.fetch(uid_list=[str(u) for u in batch], mark_seen=False, bulk=True)
            by_uid = {int(m.uid): m for m in msgs if m.uid}
            for uid in batch:
                msg = by_uid.get(uid)
                if msg is None:  # expunged by someone else meanwhile
                    self._advance(uidvalidity, uid)
                    continue
                raw = msg.raw if isinstance(msg, RawMailMessage) else msg.obj.as_bytes()
                out = self.ingestor.ingest(raw, source="imap", mailbox=self.cfg.mailbox_key,
                                           locator=f"{uidvalidity}:{uid}")  # fmt: skip
                report.add(out)
                if self.after_dispatch is not None:
                    self.after_dispatch(str(uid), out)
                box.move([str(uid)], target)
                self.ingestor.mark_moved(out.message_id)
                report.moved += 1
                self._advance(uidvalidity, uid)

    def run(self, *, interval_s: float = 60.0, stop: threading.Event | None = None, idle: bool = False,
            on_report: Callable[[PollReport], Any] | None = None) -> None:  # fmt: skip
        """Poll until ``stop`` is set; connection errors are logged and retried after ``interval_s``."""
        stop = stop or threading.Event()
        while not stop.is_set():
            box: BaseMailBox | None = None
            try:
                box = self.open_box(self.cfg)
                while not stop.is_set():
                    report = self._poll(box)
                    if on_report is not None:
                        on_report(report)
                    if idle:
                        box.idle.wait(timeout=int(max(1, interval_s)))
                    elif stop.wait(interval_s):
                        break
            except Exception:
                log.exception("polling %s failed; retrying in %.0fs", self.cfg.mailbox_key, interval_s)
                stop.wait(interval_s)
            finally:
                if box is not None:
                    _logout(box)


def _logout(box: BaseMailBox) -> None:
    try:
        box.logout()
    except Exception:  # the connection may already be gone; nothing to save
        log.debug("IMAP logout failed", exc_info=True)
