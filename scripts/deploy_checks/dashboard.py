"""The Grafana dashboard: its structure (schema version, uid, the variables the queries need,
a grid without overlaps, the datasource variable on every panel, unique refIds, no undefined
variable), and the metric names it and the alert rules use, each of which silkroute must
export. The PromQL syntax of its queries is checked by promtool (check-deploy.sh)."""

import json
import re
import sys

import prom_live_check

from .report import Report

# What the service exports: shared/contract.md section 5, the extra metrics the service adds,
# the process collector's, and Prometheus's own `up`.
EXPORTED_METRICS = {
    "silkroute_events_consumed_total", "silkroute_events_rejected_total",
    "silkroute_events_ignored_total", "silkroute_indicators_published_total",
    "silkroute_consumer_lag_messages", "silkroute_processing_duration_seconds_bucket",
    "silkroute_processing_duration_seconds_sum", "silkroute_processing_duration_seconds_count",
    "silkroute_last_event_timestamp_seconds", "silkroute_state_cells", "silkroute_build_info",
    "silkroute_trade_ytd_yuan", "silkroute_trade_ytd_yoy_ratio", "silkroute_trade_share_ratio",
    "silkroute_trade_yoy_rank", "silkroute_freight_trains_month", "silkroute_freight_trains_ytd",
    "silkroute_freight_trains_ytd_yoy_ratio", "silkroute_freight_streak_months",
    "silkroute_freight_streak_threshold", "silkroute_rebalances_total",
    "silkroute_produce_errors_total", "silkroute_transactions_total",
    "silkroute_restore_in_progress",
    "process_start_time_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes",
    "process_virtual_memory_bytes", "process_open_fds", "process_max_fds", "process_threads",
    "up",
}
# Dashboard schema versions accepted (Grafana 10 and 11 write about 39).
SCHEMA_MIN, SCHEMA_MAX = 36, 41
GRID_WIDTH = 24
GRAFANA_VARIABLES = {
    "__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms",
}
# Query variables the panels filter on, and the metric whose label values they list.
QUERY_VARIABLES = (("area", "silkroute_trade_ytd_yuan"), ("port", "silkroute_freight_trains_month"))


def _variable_query(v):
    q = v.get("query")
    return q.get("query") if isinstance(q, dict) else q


def check_variables(d, report):
    variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        report.error("needs a variable `datasource` of type datasource for prometheus")
    for need, metric in QUERY_VARIABLES:
        v = variables.get(need)
        q = v and _variable_query(v)
        if not v or v.get("type") != "query" or "label_values(%s" % metric not in (q or ""):
            report.error("needs a query variable `%s` on label_values(%s...)" % (need, metric))
    return variables


def _first_overlap(p, cells):
    """Marks the grid cells panel p covers; the title of a panel it overlaps, else None."""
    g = p.get("gridPos", {})
    for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
        for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
            if (x, y) in cells:
                return cells[(x, y)]
            cells[(x, y)] = p.get("title")
    return None


def check_panel(p, known, report):
    """One panel that is not a row; returns how many queries it has."""
    title = p.get("title")
    if (p.get("datasource") or {}).get("uid") != "${datasource}":
        report.error("panel %r does not use the datasource variable" % title)
    targets = p.get("targets", [])
    refs = [t.get("refId") for t in targets]
    if len(refs) != len(set(refs)) or not refs:
        report.error("panel %r: targets missing or refIds not unique" % title)
    for t in targets:
        if not t.get("expr"):
            report.error("panel %r: a target without expr" % title)
        for var in re.findall(r"\$\{?(\w+)|\[\[(\w+)", t.get("expr", "")):
            name = var[0] or var[1]
            if name not in known:
                report.error("panel %r uses undefined variable $%s" % (title, name))
    return len(targets)


def check_structure(path):
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    report = Report()
    if not SCHEMA_MIN <= d.get("schemaVersion", 0) <= SCHEMA_MAX:
        report.error("schemaVersion %s (expected about 39)" % d.get("schemaVersion"))
    if not d.get("uid"):
        report.error("no uid")
    variables = check_variables(d, report)
    panels = list(prom_live_check.walk_panels(d.get("panels")))
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        report.error("panel ids are not unique")
    cells = {}
    known = set(variables) | GRAFANA_VARIABLES
    n_targets = 0
    for p in panels:
        g = p.get("gridPos", {})
        if g.get("x", 0) + g.get("w", 0) > GRID_WIDTH:
            report.error("panel %r is wider than the grid" % p.get("title"))
        if p.get("type") == "row":
            continue
        other = _first_overlap(p, cells)
        if other is not None:
            report.error("panels %r and %r overlap" % (other, p.get("title")))
        n_targets += check_panel(p, known, report)
    report.note("%s: %d panels, %d queries, variables: %s" % (
        path, len(panels), n_targets, ", ".join(variables)))
    for e in report.errors:
        print("ERROR " + e)
    for n in report.notes:
        print(n)
    return report.status()


def check_metric_names(dashboard_path, rules_path):
    args = prom_live_check.parse_args(["--dashboard", dashboard_path, "--rules", rules_path])
    queries = prom_live_check.load_queries(args, None, lambda msg: print(msg, file=sys.stderr))
    used = prom_live_check.used_metrics(queries)
    print("metrics used: %d" % len(used))
    unknown = sorted(set(used) - EXPORTED_METRICS)
    if unknown:
        print("not exported by silkroute: %s" % "\n".join(unknown))
        return 1
    return 0
