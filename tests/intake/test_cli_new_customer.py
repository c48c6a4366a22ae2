"""`orderops review customer`: a new buyer's customer created from the terminal, with the right role."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from api.auth import create_key
from api.cli import run
from core.db import make_database
from tests.intake.test_cli_intake import cli_env, order_count, run_json  # noqa: F401


def _csv(home: Path) -> bytes:
    """A PO in a buyer's own part numbers, the descriptions our product names, no prices."""
    db = make_database(url=f"sqlite:///{home / 'orderops.db'}")
    with db.engine.connect() as conn:
        names = conn.execute(text("select name from products where not hazmat and not cold_chain order by sku limit 2"))
        rows = [f"{k + 1},NEW-{k + 1},{n.replace(',', '')},{5 + k},EA," for k, n in enumerate(names.scalars())]
    db.dispose()
    head = ["PO Number,NB-77", "Order Date,2026-11-23",
            'Ship To,"Northbeam Tools Receiving\n1200 Elm Street, Suite 5\nDenver, CO 80202"', "",
            "Line,Part Number,Description,Qty,UOM,Unit Price"]  # fmt: skip
    return ("\n".join(head + rows) + "\n").encode()


def test_review_customer_needs_an_approver_then_the_order_flows(
    cli_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    (cli_env / "po.csv").write_bytes(_csv(cli_env))
    (doc,) = run_json(capsys, "intake", "po.csv", "--channel", "email", "--sender", "buyer@northbeam-tools.example")
    (o,) = doc["orders"]
    assert o["decision"]["status"] == "queued"
    item_id = o["decision"]["review_item_id"]
    shown = run_json(capsys, "review", "show", item_id)
    assert shown["kind"] == "new_customer"
    proposal = shown["validated"]["new_customer"]
    assert proposal["email_domain"] == "northbeam-tools.example"
    assert proposal["ship_to"]["city"] == "Denver"
    assert {p["customer_part"] for p in proposal["parts"]} == {"NEW-1", "NEW-2"}
    capsys.readouterr()
    assert run(["review", "show", item_id]) == 0
    assert "orderops review customer" in capsys.readouterr().out

    olga = create_key(cli_env, "olga", ["operator"])
    amir = create_key(cli_env, "amir", ["operator", "approver"])
    assert run(["review", "customer", item_id, "colour=red", "--key", amir]) == 2  # bad edit: nothing happens
    parked = run_json(capsys, "review", "customer", item_id, "name=Northbeam Tools", "--key", olga)
    assert parked["status"] == "awaiting_approval"
    assert order_count(cli_env, "NB-77") == 0
    done = run_json(capsys, "review", "customer", item_id, "--key", amir)
    assert done["status"] == "approved"
    assert done["customer_id"] == proposal["customer_id"]
    assert order_count(cli_env, "NB-77") == 1
    db = make_database(url=f"sqlite:///{cli_env / 'orderops.db'}")
    with db.engine.connect() as conn:
        name = conn.execute(text("select name from customers where id = :c"), {"c": done["customer_id"]}).scalar()
    db.dispose()
    assert name == "Northbeam Tools"
