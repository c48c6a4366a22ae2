"""Write tools: the changes an agent may propose on sets of orders.

Each simulates on the twin first (:class:`~tools.base.Preview`), so the approval card, the policy
facts and the post-execution verification all start from the same prediction. None of these
functions checks policy: the gateway does, before ``execute`` is ever reached.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import ClassVar

from pydantic import Field

from core.domain import (
    REROUTABLE_STATUSES,
    RESERVING_STATUSES,
    Node,
    NodeStatus,
    Order,
    OrderCreate,
    OrderLine,
    OrderStatus,
    ServiceLevel,
    check_transition,
)
from core.errors import InvalidTransition, NotFound, ValidationFailed
from guardrails.calls import TIER_RANK, CallFacts, CarrierUse, RiskClass, digest_arguments
from tools.adapters.protocols import Notification, OrderFilter
from tools.base import (
    MAX_BATCH,
    Compensation,
    OrderSetArgs,
    Preview,
    PreviewItem,
    ToolArgs,
    ToolEnv,
    WriteResult,
    WriteTool,
)
from tools.customers import CreateCustomer
from tools.twin import Fulfilment, TwinView, order_value
from tools.twin_writes import TWIN_WRITE_TOOLS

SPEED = {ServiceLevel.GROUND: 0, ServiceLevel.TWO_DAY: 1, ServiceLevel.OVERNIGHT: 2}


class Incident(ToolArgs):
    """The incident a call answers, as the run knows it, for the twin to price "before" in: the
    systems may not show it yet (an operator reports a closure before anyone marks the node)."""

    closed_node_ids: list[str] = Field(
        default_factory=list, max_length=50, description="Nodes that are closed: nothing ships from them."
    )
    carrier_outages: dict[str, list[str]] = Field(
        default_factory=dict,
        max_length=20,
        description="Carrier id -> two-letter states it is down in (an empty list: everywhere).",
    )


def load_orders(
    env: ToolEnv, order_ids: Sequence[str], incident: Incident | None = None
) -> tuple[list[Order], TwinView]:
    """The orders (with lines) and a twin view prepared for them, with ``incident`` laid over it.
    Unknown ids raise NotFound."""
    if len(set(order_ids)) != len(order_ids):
        raise ValidationFailed("order_ids contains duplicates", order_ids=len(order_ids))
    orders = env.adapters.oms.get_orders(order_ids)
    view = TwinView.load(env.adapters, env.clock)
    if incident is not None:
        view.assume(closed_node_ids=incident.closed_node_ids, carrier_outages=incident.carrier_outages)
    view.prepare(orders)
    return orders, view


def call_facts(
    orders: Sequence[Order],
    view: TwinView,
    *,
    cost_delta: Decimal = Decimal(0),
    service_by_order: Mapping[str, str | None] | None = None,
    target_node_id: str | None = None,
) -> CallFacts:
    """Policy facts of a call on ``orders``. ``service_by_order`` is the carrier service each order
    would ship with *after* the call (None for calls that ship nothing, e.g. a hold): it decides
    which carriers the call uses and whether any single order would send hazmat goods by air."""
    tiers = [view.tier(o) for o in orders]
    shipping = {oid: sid for oid, sid in (service_by_order or {}).items() if sid in view.services}
    services = [view.services[s] for s in dict.fromkeys(shipping.values()) if s is not None]
    return CallFacts(
        order_count=len(orders),
        order_value=order_value(orders),
        cost_delta=cost_delta,
        max_tier=max(tiers, key=lambda t: TIER_RANK[t]) if tiers else None,
        carriers=tuple(CarrierUse(carrier_id=s.carrier_id, service_id=s.id, air=s.air) for s in services),
        target_node_id=target_node_id,
        target_node_status=view.nodes[target_node_id].status if target_node_id in view.nodes else None,
        hazmat=any(view.hazmat(o) for o in orders),
        hazmat_by_air=any(
            view.hazmat(o) and (sid := shipping.get(o.id)) is not None and view.services[sid].air for o in orders
        ),
        cold_chain=any(view.cold_chain(o) for o in orders),
        ship_to_states=frozenset(view.addresses[o.ship_to_id].state for o in orders),
    )


def _fulfilment_fields(f: Fulfilment) -> dict[str, object]:
    fields: dict[str, object] = {
        "node_id": f.node_id,
        "service_id": f.quote.carrier_service_id if f.quote else None,
        "cost": str(f.cost),
        "eta": f.eta.isoformat() if f.eta else None,
    }
    if not f.available:
        fields["unavailable"] = f.reason or "cannot ship"
    return fields


def _preview(
    tool: str,
    summary: Callable[[int, int], str],
    items: list[PreviewItem],
    facts: CallFacts,
    inventory_moved: dict[str, int] | None = None,
) -> Preview:
    ok = [i for i in items if i.ok]
    return Preview(
        tool=tool,
        summary=summary(len(ok), len(items) - len(ok)),
        items=items,
        cost_delta=sum((i.cost_delta for i in ok), Decimal(0)),
        late_before=sum(i.late_before for i in items),
        late_after=sum(i.late_after if i.ok else i.late_before for i in items),
        inventory_moved=dict(sorted((inventory_moved or {}).items())),
        facts=facts,
    )


# --- reroute ----------------------------------------------------------------------------------------


_INCIDENT_HELP = (
    "The incident as you know it (closed nodes, carriers down) when the systems may not show it yet: "
    "the preview's 'before' is priced in it."
)


class RerouteArgs(OrderSetArgs):
    to_node_id: str = Field(min_length=1, description="Node to fulfil the orders from instead.")
    incident: Incident | None = Field(default=None, description=_INCIDENT_HELP)


def _reroute_refusal(o: Order, target: Node, atp: dict[str, dict[str, int]]) -> str:
    """Why ``o`` cannot move to ``target`` ("" when it can): a closed node, a status past moving, the
    node it is at, or (for an allocated order, whose stock must be reserved there) too little stock,
    per SKU as the OMS reserves it: two lines of one SKU need their sum."""
    if target.status is NodeStatus.CLOSED:
        return f"node {target.id} is closed"
    if o.status not in REROUTABLE_STATUSES:
        return f"order is {o.status.value}; only created or allocated orders can move"
    if o.node_id == target.id:
        return f"order is already at {target.id}"
    need: dict[str, int] = defaultdict(int)
    for ln in o.lines:
        need[ln.sku] += ln.quantity
    short = [(sku, q) for sku, q in need.items() if atp.get(sku, {}).get(target.id, 0) < q]
    if short and o.status is OrderStatus.ALLOCATED:
        sku, q = short[0]
        have = atp.get(sku, {}).get(target.id, 0)
        return f"{target.id} has {have} of {sku} available, order needs {q}"
    return ""


class RerouteOrders(WriteTool[RerouteArgs]):
    """Move unreleased orders (created or allocated) to another fulfilment node. Stock is released
    at the old node and reserved at the new one; orders the new node cannot serve in full are
    skipped with a reason. Use for congested or closed nodes and stockouts."""

    name: ClassVar[str] = "reroute_orders"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_HIGH
    args_model: ClassVar[type[ToolArgs]] = RerouteArgs

    def simulate(self, env: ToolEnv, args: RerouteArgs) -> Preview:
        orders, view = load_orders(env, args.order_ids, args.incident)
        target = view.nodes.get(args.to_node_id)
        if target is None:
            raise NotFound("node", args.to_node_id)
        skus = sorted({ln.sku for o in orders for ln in o.lines})
        atp = {sku: dict(by_node) for sku, by_node in env.adapters.wms.atp(skus, [args.to_node_id]).items()}
        moved: dict[str, int] = defaultdict(int)
        items: list[PreviewItem] = []
        for o in orders:
            before = view.booked(o, o.node_id) if o.node_id else None
            late_before = before is None or view.is_late(o, before)
            reason = _reroute_refusal(o, target, atp)
            if reason:
                items.append(PreviewItem(id=o.id, ok=False, reason=reason, late_before=late_before))
                continue
            if o.status is OrderStatus.ALLOCATED:
                for ln in o.lines:
                    atp[ln.sku][target.id] -= ln.quantity
                    moved[ln.sku] += ln.quantity
            after = view.fulfil(o, target.id)
            items.append(
                PreviewItem(
                    id=o.id,
                    ok=True,
                    before=_fulfilment_fields(before) if before else {"node_id": o.node_id},
                    after=_fulfilment_fields(after),
                    cost_delta=after.cost - (before.cost if before else Decimal(0)),
                    late_before=late_before,
                    late_after=view.is_late(o, after),
                )
            )
        touched = [o for o, i in zip(orders, items, strict=True) if i.ok]
        facts = call_facts(
            touched,
            view,
            cost_delta=sum((i.cost_delta for i in items if i.ok), Decimal(0)),
            service_by_order={i.id: i.after.get("service_id") for i in items if i.ok},
            target_node_id=target.id,
        )
        return _preview(self.name, lambda n, s: f"move {n} orders to {target.id}; {s} cannot move", items, facts, moved)

    def execute(self, env: ToolEnv, args: RerouteArgs) -> WriteResult:
        origins = {o.id: o.node_id for o in env.adapters.oms.get_orders(args.order_ids)}
        res = env.adapters.oms.move_orders(args.order_ids, args.to_node_id)
        return WriteResult(
            tool=self.name,
            done=res.moved,
            skipped=res.skipped,
            details={"units_moved": res.units_moved, "from": {oid: origins[oid] for oid in res.moved}},
        )

    def compensation(self, args: RerouteArgs, result: WriteResult) -> Compensation | None:
        origins: dict[str, str | None] = result.details.get("from", {})
        by_node: dict[str, list[str]] = defaultdict(list)
        for oid, node in origins.items():
            if node:
                by_node[node].append(oid)
        if len(by_node) != 1:
            return None  # orders came from several nodes: see compensations()
        node, ids = next(iter(by_node.items()))
        return Compensation(self.name, {"order_ids": ids, "to_node_id": node, "reason": "undo reroute"})

    def compensations(self, args: RerouteArgs, result: WriteResult) -> list[Compensation]:
        """One reroute back per node the orders came from."""
        origins: dict[str, str | None] = result.details.get("from", {})
        by_node: dict[str, list[str]] = defaultdict(list)
        for oid, node in origins.items():
            if node:
                by_node[node].append(oid)
        return [
            Compensation(self.name, {"order_ids": sorted(ids), "to_node_id": node, "reason": "undo reroute"})
            for node, ids in sorted(by_node.items())
        ]


# --- carrier / service level ------------------------------------------------------------------------


class ChangeCarrierArgs(OrderSetArgs):
    carrier_service_id: str = Field(min_length=1, description="Carrier service to ship with, e.g. PARCELWAY-GROUND.")
    incident: Incident | None = Field(default=None, description=_INCIDENT_HELP)


class ChangeCarrier(WriteTool[ChangeCarrierArgs]):
    """Ship open orders with another carrier service (e.g. away from a carrier in outage). Orders
    already shipped, delivered or cancelled are skipped."""

    name: ClassVar[str] = "change_carrier"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_LOW
    args_model: ClassVar[type[ToolArgs]] = ChangeCarrierArgs

    def simulate(self, env: ToolEnv, args: ChangeCarrierArgs) -> Preview:
        orders, view = load_orders(env, args.order_ids, args.incident)
        if args.carrier_service_id not in view.services:
            raise NotFound("carrier service", args.carrier_service_id)
        items = [self._item(view, o, args.carrier_service_id) for o in orders]
        touched = [o for o, i in zip(orders, items, strict=True) if i.ok]
        facts = call_facts(
            touched,
            view,
            cost_delta=sum((i.cost_delta for i in items if i.ok), Decimal(0)),
            service_by_order={o.id: args.carrier_service_id for o in touched},
        )
        return _preview(
            self.name, lambda n, s: f"ship {n} orders with {args.carrier_service_id}; {s} skipped", items, facts
        )

    @staticmethod
    def _item(view: TwinView, o: Order, service_id: str) -> PreviewItem:
        if o.status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED) or o.node_id is None:
            return PreviewItem(
                id=o.id, ok=False, reason=f"order is {o.status.value}" if o.node_id else "order has no node yet"
            )
        before = view.booked(o, o.node_id)
        after = view.fulfil(o, o.node_id, service_id=service_id)
        if not after.available:
            return PreviewItem(
                id=o.id,
                ok=False,
                reason=after.reason or f"{service_id} cannot take it",
                late_before=view.is_late(o, before),
            )
        return PreviewItem(
            id=o.id,
            ok=True,
            before=_fulfilment_fields(before),
            after=_fulfilment_fields(after),
            cost_delta=after.cost - before.cost,
            late_before=view.is_late(o, before),
            late_after=view.is_late(o, after),
        )

    def execute(self, env: ToolEnv, args: ChangeCarrierArgs) -> WriteResult:
        # Only the orders the simulation accepts change: a service that cannot take an order (an
        # outage on its lane, no rate) must never be set on it behind the preview's back.
        orders, view = load_orders(env, args.order_ids, args.incident)
        if args.carrier_service_id not in view.services:
            raise NotFound("carrier service", args.carrier_service_id)
        items = {o.id: self._item(view, o, args.carrier_service_id) for o in orders}
        ok = [oid for oid, item in items.items() if item.ok]
        result = WriteResult(tool=self.name, skipped={oid: i.reason for oid, i in items.items() if not i.ok})
        if ok:
            res = env.adapters.oms.set_carrier_service(ok, args.carrier_service_id)
            result.done.extend(res.done)
            result.skipped.update(res.skipped)
        previous = {o.id: o.carrier_service_id for o in orders}
        result.details["previous"] = {oid: previous[oid] for oid in result.done}
        return result


class ExpediteArgs(OrderSetArgs):
    service_level: ServiceLevel = Field(default=ServiceLevel.TWO_DAY, description="Faster level to ship with.")


class ExpediteOrders(WriteTool[ExpediteArgs]):
    """Upgrade open orders to a faster service level (two_day or overnight), choosing per order the
    cheapest available service of that level from the order's node. Costs money: check the preview."""

    name: ClassVar[str] = "expedite_orders"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_HIGH
    args_model: ClassVar[type[ToolArgs]] = ExpediteArgs

    def _choices(
        self, env: ToolEnv, args: ExpediteArgs
    ) -> tuple[list[Order], TwinView, list[PreviewItem], dict[str, str]]:
        orders, view = load_orders(env, args.order_ids)
        items: list[PreviewItem] = []
        chosen: dict[str, str] = {}
        for o in orders:
            if o.node_id is None or o.status not in RESERVING_STATUSES | {OrderStatus.CREATED, OrderStatus.HELD}:
                items.append(PreviewItem(id=o.id, ok=False, reason=f"order is {o.status.value}"))
                continue
            if SPEED[o.service_level] >= SPEED[args.service_level]:
                items.append(PreviewItem(id=o.id, ok=False, reason=f"already {o.service_level.value}"))
                continue
            before = view.booked(o, o.node_id)
            fast = o.model_copy(update={"service_level": args.service_level, "carrier_service_id": None})
            after = view.fulfil(fast, o.node_id)
            if not after.available or after.quote is None:
                items.append(PreviewItem(id=o.id, ok=False, reason=after.reason or "no faster service available"))
                continue
            chosen[o.id] = after.quote.carrier_service_id
            items.append(
                PreviewItem(
                    id=o.id,
                    ok=True,
                    before=_fulfilment_fields(before),
                    after=_fulfilment_fields(after),
                    cost_delta=after.cost - before.cost,
                    late_before=view.is_late(o, before),
                    late_after=view.is_late(o, after),
                )
            )
        return orders, view, items, chosen

    def simulate(self, env: ToolEnv, args: ExpediteArgs) -> Preview:
        orders, view, items, chosen = self._choices(env, args)
        touched = [o for o, i in zip(orders, items, strict=True) if i.ok]
        facts = call_facts(
            touched,
            view,
            cost_delta=sum((i.cost_delta for i in items if i.ok), Decimal(0)),
            service_by_order=dict(chosen),
        )
        return _preview(
            self.name, lambda n, s: f"expedite {n} orders to {args.service_level.value}; {s} skipped", items, facts
        )

    def execute(self, env: ToolEnv, args: ExpediteArgs) -> WriteResult:
        _, _, items, chosen = self._choices(env, args)
        by_service: dict[str, list[str]] = defaultdict(list)
        for oid, sid in chosen.items():
            by_service[sid].append(oid)
        result = WriteResult(tool=self.name, skipped={i.id: i.reason for i in items if not i.ok})
        for sid, ids in sorted(by_service.items()):
            res = env.adapters.oms.set_carrier_service(ids, sid)
            result.done.extend(res.done)
            result.skipped.update(res.skipped)
        result.details["services"] = chosen
        return result


# --- split ------------------------------------------------------------------------------------------


class SplitArgs(ToolArgs):
    order_id: str = Field(min_length=1)
    line_nos: list[int] = Field(min_length=1, description="Line numbers to ship from the other node.")
    to_node_id: str = Field(min_length=1, description="Node to ship those lines from.")
    reason: str = Field(default="", max_length=500)


def _split_refusal(env: ToolEnv, o: Order, target: Node, moved: dict[str, int], staying: list[OrderLine]) -> str:
    """Why the lines cannot be split off to ``target`` ("" when they can); an allocated order needs
    the moving units available there."""
    if o.status not in REROUTABLE_STATUSES:
        return f"order is {o.status.value}; only created or allocated orders can be split"
    if target.status is NodeStatus.CLOSED:
        return f"node {target.id} is closed"
    if not staying:
        return "every line would move: that is a reroute"
    if o.node_id == target.id or o.node_id is None:
        return f"order is at {o.node_id or 'no node'}; split to another node"
    if o.status is not OrderStatus.ALLOCATED:
        return ""
    atp = env.adapters.wms.atp(sorted(moved), [target.id])
    short = [(k, q) for k, q in moved.items() if atp.get(k, {}).get(target.id, 0) < q]
    if short:
        sku, q = short[0]
        return f"{target.id} has {atp.get(sku, {}).get(target.id, 0)} of {sku} available, needs {q}"
    return ""


class SplitShipment(WriteTool[SplitArgs]):
    """Ship some lines of an unreleased order from another node (a split shipment), e.g. when the
    order's node is out of one SKU. The rest stays. Two parcels cost more: check the preview."""

    name: ClassVar[str] = "split_shipment"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_HIGH
    args_model: ClassVar[type[ToolArgs]] = SplitArgs

    def items(self, args: SplitArgs) -> list[str]:
        return []  # one order: approve it whole

    def simulate(self, env: ToolEnv, args: SplitArgs) -> Preview:
        orders, view = load_orders(env, [args.order_id])
        o = orders[0]
        target = view.nodes.get(args.to_node_id)
        if target is None:
            raise NotFound("node", args.to_node_id)
        by_no = {ln.line_no: ln for ln in o.lines}
        missing = [n for n in args.line_nos if n not in by_no]
        if missing:
            raise NotFound("order line", f"{o.id}/{missing[0]}")
        moving = [by_no[n] for n in dict.fromkeys(args.line_nos)]
        staying = [ln for ln in o.lines if ln.line_no not in set(args.line_nos)]
        moved: dict[str, int] = defaultdict(int)
        for ln in moving:
            moved[ln.sku] += ln.quantity
        reason = _split_refusal(env, o, target, moved, staying)
        before = view.booked(o, o.node_id) if o.node_id else None
        late_before = before is None or view.is_late(o, before)
        if reason or before is None or o.node_id is None:
            item = PreviewItem(id=o.id, ok=False, reason=reason or "order has no node", late_before=late_before)
            return _preview(self.name, lambda n, s: f"split nothing: {item.reason}", [item], call_facts([], view))

        def part(lines: list[OrderLine]) -> Order:
            weight = sum(view.products[ln.sku].weight_kg * ln.quantity for ln in lines)
            return o.model_copy(update={"lines": tuple(lines), "weight_kg": round(weight, 3)})

        stay_f = view.fulfil(part(staying), o.node_id)
        move_f = view.fulfil(part(moving), target.id)
        etas = [e for e in (stay_f.eta, move_f.eta) if e is not None]
        eta_after = max(etas) if len(etas) == 2 else None
        item = PreviewItem(
            id=o.id,
            ok=True,
            before=_fulfilment_fields(before),
            after={
                "node_id": f"{o.node_id}+{target.id}",
                "cost": str(stay_f.cost + move_f.cost),
                "eta": eta_after.isoformat() if eta_after else None,
                "lines_moved": [ln.line_no for ln in moving],
            },
            cost_delta=stay_f.cost + move_f.cost - before.cost,
            late_before=late_before,
            late_after=eta_after is None or eta_after > o.promised_date,
        )
        facts = call_facts(
            [o],
            view,
            cost_delta=item.cost_delta,
            target_node_id=target.id,
            service_by_order={o.id: move_f.quote.carrier_service_id if move_f.quote else o.carrier_service_id},
        )
        return _preview(
            self.name,
            lambda n, s: f"ship lines {[ln.line_no for ln in moving]} of {o.id} from {target.id}",
            [item],
            facts,
            moved if o.status is OrderStatus.ALLOCATED else {},
        )

    def execute(self, env: ToolEnv, args: SplitArgs) -> WriteResult:
        new = env.adapters.oms.split_order(args.order_id, args.line_nos, args.to_node_id)
        return WriteResult(tool=self.name, done=[args.order_id, new.id], details={"new_order_id": new.id})


# --- lifecycle --------------------------------------------------------------------------------------


class _Transition(WriteTool[OrderSetArgs]):
    """A lifecycle change on a set of orders; each order goes to :meth:`target_for` it."""

    args_model: ClassVar[type[ToolArgs]] = OrderSetArgs
    verb: ClassVar[str]

    def target_for(self, o: Order) -> OrderStatus | None:
        """Where this tool sends ``o``; None when the tool does not apply to it at all."""
        raise NotImplementedError

    def _allowed(self, o: Order) -> str:
        """Empty if the lifecycle allows the change, else the reason the order is skipped."""
        target = self.target_for(o)
        try:
            if target is None:
                raise InvalidTransition(o.id)
            check_transition(o.id, o.status, target, o.held_from)
        except InvalidTransition:
            return f"order is {o.status.value}; cannot {self.verb}"
        return ""

    def _target(self, o: Order) -> OrderStatus:
        target = self.target_for(o)
        assert target is not None, "only called for orders _allowed accepted"
        return target

    def simulate(self, env: ToolEnv, args: OrderSetArgs) -> Preview:
        orders, view = load_orders(env, args.order_ids)
        items = []
        for o in orders:
            reason = self._allowed(o)
            items.append(
                PreviewItem(
                    id=o.id,
                    ok=not reason,
                    reason=reason,
                    before={"status": o.status.value},
                    after={} if reason else {"status": self._target(o).value},
                )
            )
        touched = [o for o, i in zip(orders, items, strict=True) if i.ok]
        released: dict[str, int] = defaultdict(int)
        if isinstance(self, CancelOrders):
            for o in touched:
                if o.status in RESERVING_STATUSES or o.held_from in RESERVING_STATUSES:
                    for ln in o.lines:
                        released[ln.sku] -= ln.quantity
        facts = call_facts(touched, view)
        return _preview(self.name, lambda n, s: f"{self.verb} {n} orders; {s} cannot", items, facts, released)

    def execute(self, env: ToolEnv, args: OrderSetArgs) -> WriteResult:
        orders = env.adapters.oms.get_orders(args.order_ids)
        groups: dict[OrderStatus, list[str]] = defaultdict(list)
        skipped: dict[str, str] = {}
        for o in orders:
            reason = self._allowed(o)
            if reason:
                skipped[o.id] = reason
            else:
                groups[self._target(o)].append(o.id)
        result = WriteResult(tool=self.name, skipped=skipped)
        for target, ids in groups.items():
            res = env.adapters.oms.transition(ids, target)
            result.done.extend(res.done)
            result.skipped.update(res.skipped)
        return result


class HoldOrders(_Transition):
    """Put open orders (created, allocated or released) on hold; stock stays reserved. Use for
    orders that fail a compliance check or need a person to look at them."""

    name: ClassVar[str] = "hold_orders"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_LOW
    verb: ClassVar[str] = "hold"

    def target_for(self, o: Order) -> OrderStatus | None:
        return OrderStatus.HELD

    def compensation(self, args: OrderSetArgs, result: WriteResult) -> Compensation | None:
        return Compensation("release_holds", {"order_ids": result.done, "reason": "undo hold"})


class ReleaseHolds(_Transition):
    """Release held orders: each returns to the status it was held from."""

    name: ClassVar[str] = "release_holds"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_LOW
    verb: ClassVar[str] = "release the hold of"

    def target_for(self, o: Order) -> OrderStatus | None:
        # only a held order can be released, and it goes back where it was held from
        return (o.held_from or OrderStatus.CREATED) if o.status is OrderStatus.HELD else None

    def compensation(self, args: OrderSetArgs, result: WriteResult) -> Compensation | None:
        return Compensation("hold_orders", {"order_ids": result.done, "reason": "undo release"})


class CancelOrders(_Transition):
    """Cancel open orders that have not been picked; their reserved stock is freed. Cannot be undone."""

    name: ClassVar[str] = "cancel_orders"
    risk: ClassVar[RiskClass] = RiskClass.DESTRUCTIVE
    verb: ClassVar[str] = "cancel"

    def target_for(self, o: Order) -> OrderStatus | None:
        return OrderStatus.CANCELLED


# --- notify -----------------------------------------------------------------------------------------


class NotifyArgs(OrderSetArgs):
    subject: str = Field(min_length=1, max_length=300)
    message: str = Field(min_length=1, max_length=2000, description="What to tell the customer, in plain words.")


class NotifyCustomers(WriteTool[NotifyArgs]):
    """Tell customers about their orders (a delay, a reroute, a hold): one message per customer
    listing their orders, queued for delivery to the address on file. Cannot be unsent."""

    name: ClassVar[str] = "notify_customer"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_LOW
    args_model: ClassVar[type[ToolArgs]] = NotifyArgs

    def simulate(self, env: ToolEnv, args: NotifyArgs) -> Preview:
        orders, view = load_orders(env, args.order_ids)
        items = [
            PreviewItem(id=o.id, ok=True, after={"customer_id": o.customer_id, "subject": args.subject}) for o in orders
        ]
        customers = len({o.customer_id for o in orders})
        return _preview(
            self.name, lambda n, s: f"notify {customers} customer(s) about {n} orders", items, call_facts(orders, view)
        )

    def execute(self, env: ToolEnv, args: NotifyArgs) -> WriteResult:
        orders = env.adapters.oms.get_orders(args.order_ids)
        by_customer: dict[str, list[Order]] = defaultdict(list)
        for o in orders:
            by_customer[o.customer_id].append(o)
        notes = [
            Notification(
                customer_id=cid,
                order_ids=[o.id for o in mine],
                subject=args.subject,
                body=args.message
                + "\n\nOrders: "
                + ", ".join(f"{o.id}" + (f" (your PO {o.external_ref})" if o.external_ref else "") for o in mine),
            )
            for cid, mine in sorted(by_customer.items())
        ]
        key = digest_arguments(args.model_dump(mode="json"))
        ids = env.adapters.notifier.queue(notes, key=key)
        return WriteResult(tool=self.name, done=[o.id for o in orders], details={"notifications": ids})


# --- create -----------------------------------------------------------------------------------------


class CreateOrderArgs(ToolArgs):
    order: OrderCreate
    order_id: str | None = Field(default=None, description="Id to create it under (idempotent intake).")


class CreateOrder(WriteTool[CreateOrderArgs]):
    """Create an order in the OMS (status created) from a validated purchase order."""

    name: ClassVar[str] = "create_order"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_LOW
    args_model: ClassVar[type[ToolArgs]] = CreateOrderArgs

    def items(self, args: CreateOrderArgs) -> list[str]:
        return []  # one order, not a set: no subset approvals, nothing to narrow

    def simulate(self, env: ToolEnv, args: CreateOrderArgs) -> Preview:
        oms = env.adapters.oms
        customer = oms.get_customer(args.order.customer_id)
        skus = [ln.sku for ln in args.order.lines]
        products = {p.sku: p for p in oms.get_products(skus)}
        prices = oms.prices(customer.id, skus)
        value = sum(
            ((ln.unit_price if ln.unit_price is not None else prices[ln.sku]) * ln.quantity for ln in args.order.lines),
            Decimal(0),
        )
        addresses = oms.addresses(customer.id)
        ship_to = next((a for a in addresses if a.id == args.order.ship_to_id), addresses[0] if addresses else None)
        if ship_to is None or (args.order.ship_to_id and ship_to.id != args.order.ship_to_id):
            raise NotFound("address", args.order.ship_to_id or f"(none for {customer.id})")
        facts = CallFacts(
            order_count=1,
            order_value=value,
            cost_delta=Decimal(0),
            max_tier=customer.tier,
            carriers=(),
            target_node_id=None,
            target_node_status=None,
            hazmat=any(products[s].hazmat for s in skus),
            hazmat_by_air=False,  # a new order has no carrier service yet
            cold_chain=any(products[s].cold_chain for s in skus),
            ship_to_states=frozenset({ship_to.state}),
        )
        item = PreviewItem(
            id=args.order_id or "(new)",
            ok=True,
            after={"customer_id": customer.id, "lines": len(skus), "value": str(value)},
        )
        return _preview(
            self.name, lambda n, s: f"create an order of {len(skus)} lines for {customer.id}", [item], facts
        )

    def execute(self, env: ToolEnv, args: CreateOrderArgs) -> WriteResult:
        order = env.adapters.oms.create_order(args.order, order_id=args.order_id)
        return WriteResult(tool=self.name, done=[order.id], details={"order": order.model_dump(mode="json")})

    def compensation(self, args: CreateOrderArgs, result: WriteResult) -> Compensation | None:
        return Compensation("cancel_orders", {"order_ids": result.done, "reason": "undo create"})


# --- node status ------------------------------------------------------------------------------------

IN_PROGRESS = (OrderStatus.RELEASED, OrderStatus.PICKED, OrderStatus.HELD)
"""Orders at a node that no reroute moves: on the floor already, or held for a person."""


class SetNodeStatusArgs(ToolArgs):
    node_id: str = Field(min_length=1, description="The fulfilment node, e.g. DC-DALLAS.")
    status: NodeStatus = Field(description="open, congested or closed.")
    reason: str = Field(default="", max_length=500, description="Why, in a sentence, for the audit trail.")


class SetNodeStatus(WriteTool[SetNodeStatusArgs]):
    """Mark a fulfilment node open, congested or closed. A closed node gets no new orders from
    sourcing and no reroutes; orders already there stay until moved. Put it first in a closure plan."""

    name: ClassVar[str] = "set_node_status"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_HIGH
    args_model: ClassVar[type[ToolArgs]] = SetNodeStatusArgs

    def items(self, args: SetNodeStatusArgs) -> list[str]:
        return []  # one node: approve it whole

    def restrict(self, args: SetNodeStatusArgs, subset: Sequence[str]) -> SetNodeStatusArgs:
        return args

    def simulate(self, env: ToolEnv, args: SetNodeStatusArgs) -> Preview:
        node = env.adapters.wms.get_node(args.node_id)
        # Only the orders that stay whatever else the plan does (released, picked, held): the
        # unreleased ones are the reroutes' business, and listing them here would change this
        # preview (and ask its approver again) as soon as a reroute of the same plan ran first.
        staying = env.adapters.oms.list_orders(
            OrderFilter(node_ids=[node.id], statuses=list(IN_PROGRESS)), limit=MAX_BATCH
        )
        by_status: dict[str, list[str]] = defaultdict(list)
        for o in sorted(staying, key=lambda o: o.id):
            by_status[o.status.value].append(o.id)
        reason = f"node {node.id} is already {node.status.value}" if node.status is args.status else ""
        item = PreviewItem(
            id=node.id,
            ok=not reason,
            reason=reason,
            before={"status": node.status.value},
            after={}
            if reason
            else {"status": args.status.value, "orders_in_progress": dict(sorted(by_status.items()))},
        )
        facts = CallFacts(
            order_count=0,
            order_value=Decimal(0),
            cost_delta=Decimal(0),
            max_tier=None,
            carriers=(),
            target_node_id=None,  # nothing is sent to the node: a closed node may be reopened
            target_node_status=None,
            hazmat=False,
            hazmat_by_air=False,
            cold_chain=False,
            ship_to_states=frozenset(),
        )
        staying_text = f"; {len(staying)} orders in progress there (released, picked or held) stay"

        def summary(n: int, s: int) -> str:
            if reason:
                return f"nothing to change: {reason}"
            return f"mark {node.id} {args.status.value} (was {node.status.value}){staying_text}"

        return _preview(self.name, summary, [item], facts)

    def execute(self, env: ToolEnv, args: SetNodeStatusArgs) -> WriteResult:
        node = env.adapters.wms.get_node(args.node_id)
        if node.status is args.status:
            return WriteResult(tool=self.name, skipped={node.id: f"node {node.id} is already {node.status.value}"})
        env.adapters.wms.set_node_status(node.id, args.status)
        return WriteResult(
            tool=self.name,
            done=[node.id],
            details={"previous": node.status.value, "status": args.status.value},
        )

    def compensation(self, args: SetNodeStatusArgs, result: WriteResult) -> Compensation | None:
        previous = result.details.get("previous")
        if not result.done or previous is None:
            return None
        return Compensation(
            self.name, {"node_id": args.node_id, "status": previous, "reason": "undo node status change"}
        )


WRITE_TOOLS: tuple[WriteTool[ToolArgs], ...] = (  # type: ignore[assignment]  # noqa: RUF005 - mypy needs the +
    RerouteOrders(),
    SplitShipment(),
    ChangeCarrier(),
    ExpediteOrders(),
    HoldOrders(),
    ReleaseHolds(),
    CancelOrders(),
    NotifyCustomers(),
    CreateOrder(),
    SetNodeStatus(),
    CreateCustomer(),
) + TWIN_WRITE_TOOLS  # the last: the network itself (scenarios staged on the twin)
