"""Write tools that change the network itself rather than orders: a node's capacity or backlog, a
carrier's status, a node's stock. Scenarios stage incidents on the live twin with them
(:mod:`services.scenarios`), through the gateway like any write: simulated, judged by policy
(no rule allows them, so the default parks each for an approver), audited, executed once and
compensable.

Each takes absolute or signed values (a capacity, not a factor; a delta of stock, not "all of it"):
the call a person approves is then exactly what executes, and its compensation is exact. Turning a
scenario's "capacity x 0.5" into a number is the scenario's business, read from the twin when it
is applied.

Kept apart from :mod:`tools.write` (which lists these in ``WRITE_TOOLS``) because that module is
about orders; this one must not import it (it imports this one).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from core.domain import CarrierStatus, Node
from guardrails.calls import CallFacts, RiskClass
from tools.base import Compensation, Preview, PreviewItem, ToolArgs, ToolEnv, WriteResult, WriteTool

__all__ = [
    "TWIN_WRITE_TOOLS",
    "AddNodeBacklog",
    "AdjustStock",
    "SetCarrierStatus",
    "SetNodeCapacity",
    "TransferInventory",
]


def _no_order_facts() -> CallFacts:
    """Facts of a call that touches no order: the policy judges it by its tool and risk alone."""
    return CallFacts(
        order_count=0,
        order_value=Decimal(0),
        cost_delta=Decimal(0),
        max_tier=None,
        carriers=(),
        target_node_id=None,
        target_node_status=None,
        hazmat=False,
        hazmat_by_air=False,
        cold_chain=False,
        ship_to_states=frozenset(),
    )


def _one(tool: str, summary: str, item: PreviewItem) -> Preview:
    return Preview(tool=tool, summary=summary, items=[item], facts=_no_order_facts())


class _WholeCall(WriteTool[Any]):
    """A call on one thing (a node, a carrier): approved whole, never narrowed to a subset."""

    def items(self, args: Any) -> list[str]:
        return []

    def restrict(self, args: Any, subset: Sequence[str]) -> Any:
        return args


def _backlog_days(node: Node, backlog: int | None = None, capacity: int | None = None) -> float:
    cap = capacity if capacity is not None else node.daily_capacity
    return round((backlog if backlog is not None else node.backlog) / cap, 2) if cap else float("inf")


# --- node capacity ----------------------------------------------------------------------------------


class SetNodeCapacityArgs(ToolArgs):
    node_id: str = Field(min_length=1, description="The fulfilment node, e.g. DC-DALLAS.")
    daily_capacity: int = Field(ge=1, le=10_000_000, description="Orders a day the node can pick and ship.")
    reason: str = Field(default="", max_length=500, description="Why, in a sentence, for the audit trail.")


class SetNodeCapacity(_WholeCall):
    """Set how many orders a day a node can pick and ship (a line down, a staffing cut, extra
    shifts). Its backlog then takes more or fewer days to clear, which pushes ship dates."""

    name: ClassVar[str] = "set_node_capacity"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_HIGH
    args_model: ClassVar[type[ToolArgs]] = SetNodeCapacityArgs

    def simulate(self, env: ToolEnv, args: SetNodeCapacityArgs) -> Preview:
        node = env.adapters.wms.get_node(args.node_id)
        same = node.daily_capacity == args.daily_capacity
        reason = f"{node.id} already picks {node.daily_capacity} orders a day" if same else ""
        item = PreviewItem(
            id=node.id,
            ok=not same,
            reason=reason,
            before={"daily_capacity": node.daily_capacity, "backlog_days": _backlog_days(node)},
            after={}
            if same
            else {
                "daily_capacity": args.daily_capacity,
                "backlog_days": _backlog_days(node, capacity=args.daily_capacity),
            },
        )
        summary = (
            f"nothing to change: {reason}"
            if same
            else f"set {node.id} capacity to {args.daily_capacity}/day (was {node.daily_capacity}); backlog "
            f"{_backlog_days(node)} -> {_backlog_days(node, capacity=args.daily_capacity)} days"
        )
        return _one(self.name, summary, item)

    def execute(self, env: ToolEnv, args: SetNodeCapacityArgs) -> WriteResult:
        node = env.adapters.wms.get_node(args.node_id)
        if node.daily_capacity == args.daily_capacity:
            return WriteResult(tool=self.name, skipped={node.id: "capacity unchanged"})
        env.adapters.wms.set_daily_capacity(node.id, args.daily_capacity)
        return WriteResult(
            tool=self.name,
            done=[node.id],
            details={"previous": node.daily_capacity, "daily_capacity": args.daily_capacity},
        )

    def compensation(self, args: SetNodeCapacityArgs, result: WriteResult) -> Compensation | None:
        previous = result.details.get("previous")
        if not result.done or previous is None:
            return None
        return Compensation(
            self.name, {"node_id": args.node_id, "daily_capacity": previous, "reason": "undo capacity change"}
        )


# --- node backlog -----------------------------------------------------------------------------------


class AddNodeBacklogArgs(ToolArgs):
    added: dict[str, int] = Field(
        min_length=1,
        max_length=500,
        description="Node id -> orders of work to add to its backlog (negative: take off, never below 0).",
    )
    reason: str = Field(default="", max_length=500, description="Why, in a sentence, for the audit trail.")

    @field_validator("added")
    @classmethod
    def _no_zero(cls, value: dict[str, int]) -> dict[str, int]:
        if any(v == 0 for v in value.values()):
            raise ValueError("every node needs a non-zero amount of work to add")
        return dict(sorted(value.items()))


class AddNodeBacklog(_WholeCall):
    """Add (or take off) queued work at nodes: a demand surge that lands on them, or work cleared.
    More backlog takes more days to clear at the node's capacity, which pushes ship dates."""

    name: ClassVar[str] = "add_node_backlog"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_HIGH
    args_model: ClassVar[type[ToolArgs]] = AddNodeBacklogArgs

    def simulate(self, env: ToolEnv, args: AddNodeBacklogArgs) -> Preview:
        items = []
        for node_id, delta in args.added.items():
            node = env.adapters.wms.get_node(node_id)
            after = max(node.backlog + delta, 0)
            items.append(
                PreviewItem(
                    id=node.id,
                    ok=True,
                    before={"backlog": node.backlog, "backlog_days": _backlog_days(node)},
                    after={"backlog": after, "backlog_days": _backlog_days(node, backlog=after)},
                )
            )
        total = sum(args.added.values())
        return Preview(
            tool=self.name,
            summary=f"{'add' if total >= 0 else 'take off'} {abs(total)} orders of backlog at {len(items)} node(s)",
            items=items,
            facts=_no_order_facts(),
        )

    def execute(self, env: ToolEnv, args: AddNodeBacklogArgs) -> WriteResult:
        applied: dict[str, int] = {}
        for node_id, delta in args.added.items():
            node = env.adapters.wms.get_node(node_id)
            after = max(node.backlog + delta, 0)
            env.adapters.wms.set_backlog(node.id, after)
            applied[node.id] = after - node.backlog
        return WriteResult(tool=self.name, done=sorted(applied), details={"applied": applied})

    def compensation(self, args: AddNodeBacklogArgs, result: WriteResult) -> Compensation | None:
        applied: dict[str, int] = {k: -v for k, v in result.details.get("applied", {}).items() if v}
        if not applied:
            return None
        return Compensation(self.name, {"added": applied, "reason": "undo backlog change"})


# --- carrier status ---------------------------------------------------------------------------------


class SetCarrierStatusArgs(ToolArgs):
    carrier_id: str = Field(min_length=1, description="The carrier, e.g. RDG.")
    status: CarrierStatus = Field(description="operational, degraded or outage.")
    outage_states: list[str] = Field(
        default_factory=list,
        max_length=60,
        description="Two-letter states the outage or degradation is in (empty: everywhere).",
    )
    reason: str = Field(default="", max_length=500, description="Why, in a sentence, for the audit trail.")

    @field_validator("outage_states")
    @classmethod
    def _states(cls, value: list[str]) -> list[str]:
        states = sorted({s.strip().upper() for s in value})
        bad = [s for s in states if len(s) != 2 or not s.isalpha()]
        if bad:
            raise ValueError(f"not two-letter state codes: {bad}")
        return states


class SetCarrierStatus(_WholeCall):
    """Set a carrier's status (operational, degraded, outage), scoped to states. Orders it cannot
    take on a lane in outage become unavailable (late) until moved to another carrier."""

    name: ClassVar[str] = "set_carrier_status"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_HIGH
    args_model: ClassVar[type[ToolArgs]] = SetCarrierStatusArgs

    def simulate(self, env: ToolEnv, args: SetCarrierStatusArgs) -> Preview:
        carrier = env.adapters.carriers.get_carrier(args.carrier_id)
        states = [] if args.status is CarrierStatus.OPERATIONAL else args.outage_states
        same = carrier.status is args.status and list(carrier.outage_states) == states
        reason = f"{carrier.id} is already {carrier.status.value}" if same else ""
        item = PreviewItem(
            id=carrier.id,
            ok=not same,
            reason=reason,
            before={"status": carrier.status.value, "outage_states": list(carrier.outage_states)},
            after={} if same else {"status": args.status.value, "outage_states": states},
        )
        where = f" in {', '.join(states)}" if states else ""
        summary = f"nothing to change: {reason}" if same else f"mark {carrier.id} {args.status.value}{where}"
        return _one(self.name, summary, item)

    def execute(self, env: ToolEnv, args: SetCarrierStatusArgs) -> WriteResult:
        carrier = env.adapters.carriers.get_carrier(args.carrier_id)
        env.adapters.carriers.set_carrier_status(carrier.id, args.status, outage_states=args.outage_states)
        return WriteResult(
            tool=self.name,
            done=[carrier.id],
            details={"previous": {"status": carrier.status.value, "outage_states": list(carrier.outage_states)}},
        )

    def compensation(self, args: SetCarrierStatusArgs, result: WriteResult) -> Compensation | None:
        previous = result.details.get("previous")
        if not result.done or not previous:
            return None
        return Compensation(
            self.name, {"carrier_id": args.carrier_id, **previous, "reason": "undo carrier status change"}
        )


# --- stock ------------------------------------------------------------------------------------------


class AdjustStockArgs(ToolArgs):
    node_id: str = Field(min_length=1, description="The node holding the stock.")
    sku: str = Field(min_length=1, description="The product.")
    delta: int = Field(description="Units to add (a receipt) or take off (a write-down; never below reserved).")
    reason: str = Field(default="", max_length=500, description="Why, in a sentence, for the audit trail.")

    @field_validator("delta")
    @classmethod
    def _non_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("delta must not be 0: nothing to adjust")
        return value


class AdjustStock(_WholeCall):
    """Receive stock at a node (delta > 0) or take stock off what it can promise (delta < 0: late
    inbound, damage, a count correction). Never below what open orders have reserved."""

    name: ClassVar[str] = "adjust_stock"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_HIGH
    args_model: ClassVar[type[ToolArgs]] = AdjustStockArgs

    def simulate(self, env: ToolEnv, args: AdjustStockArgs) -> Preview:
        env.adapters.wms.get_node(args.node_id)  # NotFound for an unknown node
        env.adapters.oms.get_product(args.sku)
        found = env.adapters.wms.inventory(node_ids=[args.node_id], skus=[args.sku])
        on_hand, reserved = (found[0].on_hand, found[0].reserved) if found else (0, 0)
        after = on_hand + args.delta
        reason = (
            f"{args.node_id} has {on_hand} of {args.sku} with {reserved} reserved: at most {on_hand - reserved} "
            "can come off"
            if after < reserved
            else ""
        )
        item = PreviewItem(
            id=f"{args.node_id}/{args.sku}",
            ok=not reason,
            reason=reason,
            before={"on_hand": on_hand, "atp": on_hand - reserved},
            after={} if reason else {"on_hand": after, "atp": after - reserved},
        )
        verb = "receive" if args.delta > 0 else "take off"
        summary = f"cannot adjust: {reason}" if reason else f"{verb} {abs(args.delta)} of {args.sku} at {args.node_id}"
        preview = _one(self.name, summary, item)
        if not reason:
            preview.inventory_moved = {args.sku: args.delta}
        return preview

    def execute(self, env: ToolEnv, args: AdjustStockArgs) -> WriteResult:
        pos = env.adapters.wms.adjust_on_hand(args.node_id, args.sku, args.delta)
        return WriteResult(
            tool=self.name,
            done=[f"{args.node_id}/{args.sku}"],
            details={"delta": args.delta, "on_hand": pos.on_hand},
        )

    def compensation(self, args: AdjustStockArgs, result: WriteResult) -> Compensation | None:
        if not result.done:
            return None
        return Compensation(
            self.name,
            {"node_id": args.node_id, "sku": args.sku, "delta": -args.delta, "reason": "undo stock adjustment"},
        )


# --- transfer between nodes ---------------------------------------------------------------------------


class TransferInventoryArgs(ToolArgs):
    from_node_id: str = Field(min_length=1, description="The node giving the stock.")
    to_node_id: str = Field(min_length=1, description="The node receiving it (the one about to run out).")
    sku: str = Field(min_length=1, description="The product.")
    units: int = Field(ge=1, le=10_000_000, description="Units to move.")
    reason: str = Field(default="", max_length=500, description="Why, in a sentence, for the audit trail.")

    @model_validator(mode="after")
    def _two_nodes(self) -> TransferInventoryArgs:
        if self.from_node_id == self.to_node_id:
            raise ValueError("a transfer needs two different nodes")
        return self


class TransferInventory(_WholeCall):
    """Move units of a SKU from one node's available stock to another node (a stock transfer
    before a projected stock-out). Never takes what the source's open orders have reserved; the
    source must keep stock for its own demand, so move only the shortfall."""

    name: ClassVar[str] = "transfer_inventory"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_HIGH
    args_model: ClassVar[type[ToolArgs]] = TransferInventoryArgs

    def simulate(self, env: ToolEnv, args: TransferInventoryArgs) -> Preview:
        wms = env.adapters.wms
        for node_id in (args.from_node_id, args.to_node_id):
            wms.get_node(node_id)  # NotFound for an unknown node
        env.adapters.oms.get_product(args.sku)
        found = {p.node_id: p for p in wms.inventory(node_ids=[args.from_node_id, args.to_node_id], skus=[args.sku])}
        src, dst = found.get(args.from_node_id), found.get(args.to_node_id)
        src_on, src_res = (src.on_hand, src.reserved) if src else (0, 0)
        dst_on, dst_res = (dst.on_hand, dst.reserved) if dst else (0, 0)
        reason = (
            f"{args.from_node_id} can spare at most {src_on - src_res} of {args.sku} ({src_on} on hand, "
            f"{src_res} reserved)"
            if src_on - args.units < src_res
            else ""
        )
        item = PreviewItem(
            id=f"{args.from_node_id}->{args.to_node_id}/{args.sku}",
            ok=not reason,
            reason=reason,
            before={"from_atp": src_on - src_res, "to_atp": dst_on - dst_res},
            after={}
            if reason
            else {"from_atp": src_on - src_res - args.units, "to_atp": dst_on - dst_res + args.units},
        )
        summary = (
            f"cannot transfer: {reason}"
            if reason
            else f"move {args.units} of {args.sku} from {args.from_node_id} to {args.to_node_id}"
        )
        preview = _one(self.name, summary, item)
        if not reason:
            preview.inventory_moved = {args.sku: args.units}
        return preview

    def execute(self, env: ToolEnv, args: TransferInventoryArgs) -> WriteResult:
        src, dst = env.adapters.wms.transfer_on_hand(args.from_node_id, args.to_node_id, args.sku, args.units)
        return WriteResult(
            tool=self.name,
            done=[f"{args.from_node_id}->{args.to_node_id}/{args.sku}"],
            details={"units": args.units, "from_on_hand": src.on_hand, "to_on_hand": dst.on_hand},
        )

    def compensation(self, args: TransferInventoryArgs, result: WriteResult) -> Compensation | None:
        if not result.done:
            return None
        return Compensation(
            self.name,
            {
                "from_node_id": args.to_node_id,
                "to_node_id": args.from_node_id,
                "sku": args.sku,
                "units": args.units,
                "reason": "undo stock transfer",
            },
        )


TWIN_WRITE_TOOLS: tuple[WriteTool[Any], ...] = (
    SetNodeCapacity(),
    AddNodeBacklog(),
    SetCarrierStatus(),
    AdjustStock(),
    TransferInventory(),
)
