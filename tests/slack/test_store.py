"""The Slack bookkeeping tables on both backends: a delivery key counts as new exactly once."""

from __future__ import annotations

from api.slack.store import SlackStore
from core.db import Database


def test_a_delivery_is_new_once_and_cards_keep_their_place(db: Database) -> None:
    store = SlackStore(db)
    assert store.first_time("event:Ev1", "event")
    assert not store.first_time("event:Ev1", "event")
    assert store.first_time("event:Ev2", "event")
    assert store.seen_count() == 2
    store.add_card(approval_id="apr_1", run_id="run_1", channel="C1", ts="1.0001", status="pending")
    store.set_card_status("apr_1", "approved:1")
    (card,) = store.cards_of_run("run_1")
    assert (card.channel, card.ts, card.status) == ("C1", "1.0001", "approved:1")
    assert store.card("apr_2") is None
    store.add_thread(run_id="run_1", channel="C1", thread_ts="1.0001", user_id="U1")
    thread = store.thread("run_1")
    assert thread is not None
    assert thread.user_id == "U1"
