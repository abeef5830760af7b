"""Old path of :mod:`hpctune.reporting`: the report moved there (layout, figures, page)."""

from .reporting.figures import (
    LOWER_IS_BETTER,
    STATUS_COLORS,
    draw_fit_seconds,
    draw_map,
    draw_params,
    draw_score_vs_n_train,
    draw_status_map,
)
from .reporting.layout import LAT_NAMES, LON_NAMES, CellLayout, cell_layout
from .reporting.page import (
    REPORT_DIR,
    Figure,
    Report,
    draw_all,
    page_context,
    render_index,
    write_report,
)

Layout = CellLayout

__all__ = [
    "LAT_NAMES",
    "LON_NAMES",
    "LOWER_IS_BETTER",
    "REPORT_DIR",
    "STATUS_COLORS",
    "CellLayout",
    "Figure",
    "Layout",
    "Report",
    "cell_layout",
    "draw_all",
    "draw_fit_seconds",
    "draw_map",
    "draw_params",
    "draw_score_vs_n_train",
    "draw_status_map",
    "page_context",
    "render_index",
    "write_report",
]
