"""``orderops forecast backtest`` and ``orderops forecast stockouts``: how good the forecasts and
the stock-out warnings are, on a generated history of the configured network.

Mounted by :mod:`api.cli`; the use case is :mod:`services.forecasting`. Both print numbers, change
nothing and need no database: the history is drawn from the network's spec (settings) and a seed.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api import cli_common as cli
from api.cli_common import JsonFlag
from core.history import History, generate_history
from core.netgen import NetworkSpec
from services.forecasting import DEFAULT_Z, history_backtest, stockout_backtest

forecast_app = typer.Typer(help="Demand forecasts and stock-out warnings: backtests.", no_args_is_help=True)

SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the generated history (not of the network).")]
DaysOpt = Annotated[int, typer.Option("--days", min=60, max=1098, help="Days of history to draw.")]
SeriesOpt = Annotated[
    int, typer.Option("--series", min=0, help="Node x SKU series to score, a seeded sample (0: every stocked pair).")
]


def _history(ctx: typer.Context, seed: int, days: int) -> History:
    s = cli.settings_of(ctx)
    spec = NetworkSpec(seed=s.seed, nodes=s.nodes, skus=s.skus, customers=s.customers, orders=s.orders)
    return generate_history(seed, days, spec)


@forecast_app.command("backtest")
def forecast_backtest(
    ctx: typer.Context,
    seed: SeedOpt = 1,
    days: DaysOpt = 180,
    series: SeriesOpt = 0,
    horizon: Annotated[int, typer.Option(min=1, max=56, help="Days forecast from each origin.")] = 14,
    origins: Annotated[int, typer.Option(min=1, max=12, help="Rolling origins, a week apart.")] = 4,
    as_json: JsonFlag = False,
) -> None:
    """MASE per demand class (smooth, erratic, intermittent, lumpy) of the forecasts and of weekly
    seasonal-naive, on a rolling origin over a generated history; relative < 1: the model wins."""
    result = history_backtest(_history(ctx, seed, days), horizon=horizon, origins=origins, max_series=series or None)
    if as_json:
        cli.print_json(result)
        return
    table = Table(title=f"Forecast backtest: {horizon}-day horizon, {origins} origins (MASE)")
    for col in ("class", "series", "windows", "model", "seasonal-naive", "relative"):
        table.add_column(col, justify="right")
    classes = dict(result["classes"])  # type: ignore[call-overload]
    for name, c in [*classes.items(), ("all", result["overall"])]:
        table.add_row(
            name,
            str(c["series"]),
            str(c["windows"]),
            str(c["model_mase"]),
            str(c["seasonal_naive_mase"]),
            str(c["relative"]),
        )
    cli.console.print(table)


@forecast_app.command("stockouts")
def forecast_stockouts(
    ctx: typer.Context,
    seed: SeedOpt = 1,
    days: DaysOpt = 180,
    series: SeriesOpt = 0,
    lead_time: Annotated[int, typer.Option("--lead-time", min=1, max=28, help="Days a warning looks ahead.")] = 7,
    z: Annotated[float, typer.Option("--z", min=0.0, max=4.0, help="Caution: error bands above the mean.")] = DEFAULT_Z,
    as_json: JsonFlag = False,
) -> None:
    """Replay stock-out warnings over the last four weeks of a generated history and score them
    against the stock-outs that happened: precision, recall and lead time."""
    history = _history(ctx, seed, days)
    score = stockout_backtest(history, lead_time_days=lead_time, z=z, max_series=series or None).as_dict()
    if as_json:
        cli.print_json(score)
        return
    table = Table(title="Stock-out warnings, replayed", show_header=False)
    for k, v in score.items():
        table.add_row(k, str(v))
    cli.console.print(table)
