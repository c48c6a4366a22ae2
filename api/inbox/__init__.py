"""The e-mail inbox for purchase orders: an IMAP poller and a local Maildir / folder watcher.

Both do the same thing per message, in this order, and each step is safe to repeat:

1. store the raw RFC 822 bytes in the :class:`~intake.documents.DocumentStore` (channel ``email``),
2. remember the Message-ID and its document in ``inbox_messages``,
3. dispatch the document: enqueue an ``intake.process`` job, or run the pipeline at once,
4. move the message out of the way (IMAP processed folder, Maildir ``cur/``, ``processed/``).

A poller that dies between two steps loses nothing and doubles nothing when it starts again: a
Message-ID already known is only dispatched again if it never was (both dispatchers are
idempotent) and then moved.
"""

from api.inbox.ingest import (
    DirectDispatcher,
    Dispatcher,
    InboxLedger,
    Ingestor,
    IngestOutcome,
    JobDispatcher,
    PollReport,
    message_key,
)

__all__ = [
    "DirectDispatcher",
    "Dispatcher",
    "InboxLedger",
    "IngestOutcome",
    "Ingestor",
    "JobDispatcher",
    "PollReport",
    "message_key",
]
