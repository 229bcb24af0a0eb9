"""The KPI dashboard: the nightly snapshot of its figures (`snapshot`), reading snapshots
back (`selectors`), its charts as small classes chosen from `CHARTS` by slug (`charts`),
their SVG geometry (`svg`) and the page with its CSV exports (`views`, mounted by
`operations.urls`)."""

from .charts import CHARTS, KPI_CHARTS, Chart, KpiColumn, KpiTable, kpi_table, kpi_tier_names
from .selectors import TREND_DAYS, KpiPoint, kpi_latest, kpi_series
from .snapshot import kpi_snapshot_compute, kpi_snapshot_counts

__all__ = [
    "CHARTS",
    "KPI_CHARTS",
    "TREND_DAYS",
    "Chart",
    "KpiColumn",
    "KpiPoint",
    "KpiTable",
    "kpi_latest",
    "kpi_series",
    "kpi_snapshot_compute",
    "kpi_snapshot_counts",
    "kpi_table",
    "kpi_tier_names",
]
