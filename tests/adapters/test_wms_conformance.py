"""WMS conformance: nodes, load, inventory, ATP and stock adjustments."""

from __future__ import annotations

import pytest

from core.domain import NodeStatus
from core.errors import InsufficientInventory, NotFound, ValidationFailed
from tests.adapters.support import assert_invariants, snapshot
from tests.factories import SmallNetwork
from tools.adapters.protocols import Adapters


def test_nodes_and_statuses(adapters: Adapters, network: SmallNetwork) -> None:
    wms = adapters.wms
    assert [n.id for n in wms.list_nodes()] == ["DC-CA", "DC-GA", "DC-NJ", "DC-TX"]
    assert [n.id for n in wms.list_nodes(statuses=[NodeStatus.CLOSED])] == [network.node_closed]
    node = wms.set_node_status(network.node_ca, NodeStatus.CONGESTED)
    assert node.status is NodeStatus.CONGESTED
    assert wms.get_node(network.node_ca).status is NodeStatus.CONGESTED
    assert wms.set_backlog(network.node_ca, 125).backlog_days == 2.5
    with pytest.raises(NotFound):
        wms.get_node("NOPE")
    before = snapshot(adapters)
    with pytest.raises(ValidationFailed):
        wms.set_backlog(network.node_ca, -1)
    with pytest.raises(NotFound):
        wms.set_node_status("NOPE", NodeStatus.OPEN)
    assert snapshot(adapters) == before


def test_node_load_counts_open_and_unreleased(adapters: Adapters, network: SmallNetwork) -> None:
    adapters.wms.set_backlog(network.node_nj, 50)
    loads = {load.node_id: load for load in adapters.wms.node_load()}
    nj, ga = loads[network.node_nj], loads[network.node_ga]
    assert (nj.open_orders, nj.unreleased_orders) == (2, 2)  # the shipped order is not open
    assert (ga.open_orders, ga.unreleased_orders) == (2, 0)  # released + held
    assert nj.backlog_days == 0.5
    assert nj.utilisation == 0.5
    assert [load.node_id for load in adapters.wms.node_load([network.node_ga])] == [network.node_ga]
    with pytest.raises(NotFound):
        adapters.wms.node_load(["NOPE"])


def test_atp_and_inventory(adapters: Adapters, network: SmallNetwork) -> None:
    atp = adapters.wms.atp(["SKU-005", "SKU-006", "SKU-003"])
    assert atp["SKU-005"] == {"DC-GA": 5, "DC-NJ": 19}  # one shipped from NJ
    assert atp["SKU-006"] == {"DC-GA": 8, "DC-TX": 10}  # two held (still reserved) at GA
    assert atp["SKU-003"]["DC-NJ"] == 95
    assert adapters.wms.atp(["SKU-005"], [network.node_ca]) == {"SKU-005": {}}
    with pytest.raises(NotFound):
        adapters.wms.atp(["SKU-005", "SKU-NOPE"])
    with pytest.raises(NotFound):
        adapters.wms.atp(["SKU-005"], ["NOPE"])
    with pytest.raises(ValidationFailed):
        adapters.wms.atp([])
    positions = adapters.wms.inventory(node_ids=[network.node_ga], skus=["SKU-006"])
    assert [(p.on_hand, p.reserved, p.atp) for p in positions] == [(10, 2, 8)]


def test_adjust_on_hand_never_below_reserved(adapters: Adapters, network: SmallNetwork) -> None:
    wms = adapters.wms
    assert wms.adjust_on_hand(network.node_ga, "SKU-006", 5).on_hand == 15
    assert wms.adjust_on_hand(network.node_ga, "SKU-006", -13).on_hand == 2  # exactly the reserved 2
    new = wms.adjust_on_hand(network.node_ca, "SKU-005", 4)  # first receipt creates the position
    assert (new.on_hand, new.reserved) == (4, 0)
    before = snapshot(adapters)
    with pytest.raises(InsufficientInventory):
        wms.adjust_on_hand(network.node_ga, "SKU-006", -1)
    with pytest.raises(InsufficientInventory):
        wms.adjust_on_hand(network.node_nj, "SKU-006", -1)  # nothing there
    with pytest.raises(NotFound):
        wms.adjust_on_hand("NOPE", "SKU-001", 1)
    with pytest.raises(NotFound):
        wms.adjust_on_hand(network.node_nj, "SKU-NOPE", 1)
    with pytest.raises(ValidationFailed):
        wms.adjust_on_hand(network.node_nj, "SKU-001", 0)
    assert snapshot(adapters) == before
    assert_invariants(adapters)


def test_transfer_moves_both_legs_or_neither(adapters: Adapters, network: SmallNetwork) -> None:
    wms = adapters.wms
    src, dst = wms.transfer_on_hand(network.node_ga, network.node_ca, "SKU-006", 3)
    assert (src.node_id, src.on_hand, src.reserved) == (network.node_ga, 7, 2)
    assert (dst.node_id, dst.sku, dst.on_hand) == (network.node_ca, "SKU-006", 3)  # a new position
    before = snapshot(adapters)
    with pytest.raises(InsufficientInventory):
        wms.transfer_on_hand(network.node_ga, network.node_ca, "SKU-006", 6)  # would take reserved stock
    with pytest.raises(NotFound):
        wms.transfer_on_hand(network.node_ga, "NOPE", "SKU-006", 1)
    with pytest.raises(NotFound):
        wms.transfer_on_hand(network.node_ga, network.node_ca, "SKU-NOPE", 1)
    with pytest.raises(ValidationFailed):
        wms.transfer_on_hand(network.node_ga, network.node_ga, "SKU-006", 1)
    with pytest.raises(ValidationFailed):
        wms.transfer_on_hand(network.node_ga, network.node_ca, "SKU-006", 0)
    assert snapshot(adapters) == before
    assert_invariants(adapters)
