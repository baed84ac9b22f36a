#!/usr/bin/env python3
"""Evaluate every query of the Grafana dashboard and every rule expression against a live
Prometheus, and fail when a dashboard query has no data or any expression is rejected.

    scripts/prom_live_check.py --prometheus http://127.0.0.1:9090 \\
        --dashboard deploy/grafana/silkroute.json \\
        --rules deploy/prometheus/silkroute-rules.yml \\
        --var area=XJ --var port=khorgos [--wait 120]

What counts:
  * dashboard panel targets: an error, or an empty result, fails (use --allow-empty REGEX for
    panels that may legitimately be empty);
  * alert and recording rule expressions, and dashboard annotation queries: only an error
    fails; an empty result just means "not firing";
  * metric names the expressions use that Prometheus has no series of at all are reported
    (they fail only with --require-metrics).

Dashboard variables: `--var NAME=VALUE` (repeat a name for several values) sets a variable.
Any other variable is resolved the way Grafana would: a custom or constant variable takes
its current value, a query variable (`label_values(...)`) is asked of Prometheus and takes
its "All" value (allValue, or every value as a regex alternation) when it has one, else its
current or first value. Grafana's own variables: $__rate_interval -> 5m, $__interval -> 1m,
$__range -> 1h (see --rate-interval, --interval, --range).

Without a server:
  --list                 print every expression after substitution, and exit
  --list-metrics         print the metric names the expressions use, one per line
  --write-rules FILE     write the dashboard expressions as a recording-rule file, so that
                         `promtool check rules FILE` checks their syntax offline

Needs PyYAML (python3-yaml). Exit status: 0 all good, 1 a check failed, 2 bad arguments or files.
"""

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

# ----------------------------------------------------------------------------- rule files


def parse_rules(text):
    """(kind, name, expr) of the alert and recording rules in a Prometheus rule file, or in
    PrometheusRule objects (the same groups under `spec:`), one or several YAML documents."""
    out = []
    for doc in yaml.safe_load_all(text):
        if not isinstance(doc, dict):
            continue
        groups = doc.get("groups") if "groups" in doc else (doc.get("spec") or {}).get("groups")
        for group in groups or []:
            for r in group.get("rules") or []:
                if "expr" not in r:
                    continue
                kind = "alert" if "alert" in r else "record" if "record" in r else None
                if kind:
                    out.append((kind, str(r[kind]), str(r["expr"]).strip()))
    return out


# ----------------------------------------------------------------------------- dashboards

BUILTINS_DEFAULT = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
}


def walk_panels(panels):
    for p in panels or []:
        yield p
        # Collapsed rows keep their panels inside.
        yield from walk_panels(p.get("panels"))


def _is_prometheus_target(panel, target):
    ds = target.get("datasource") or panel.get("datasource")
    if isinstance(ds, dict):
        t = ds.get("type")
        return t in (None, "prometheus")
    return True


def dashboard_queries(dash):
    """(kind, name, expr) for every visible Prometheus target and annotation of a dashboard."""
    out = []
    for p in walk_panels(dash.get("panels")):
        for t in p.get("targets") or []:
            if t.get("hide") or not t.get("expr") or not _is_prometheus_target(p, t):
                continue
            out.append(("panel", "%s [%s]" % (p.get("title") or "panel %s" % p.get("id"), t.get("refId", "?")), t["expr"]))
    for a in (dash.get("annotations") or {}).get("list") or []:
        if a.get("expr") and a.get("enable", True):
            out.append(("annotation", a.get("name", "annotation"), a["expr"]))
    return out


_REGEX_SPECIAL = set("\\^$*+?.()|{}[]")


def _regex_escape(value):
    # Grafana's Prometheus escaping for values placed in a regex matcher: the backslash is
    # doubled again because the regex sits in a double-quoted PromQL string.
    return "".join("\\\\" + c if c in _REGEX_SPECIAL else c for c in value)


class Value:
    """A variable's value: a list of strings, or a raw replacement (an "All" value)."""

    def __init__(self, values=None, raw=None, multi=False):
        self.values = list(values or [])
        self.raw = raw
        self.multi = multi

    def render(self, fmt=None):
        if self.raw is not None:
            return self.raw
        vals = self.values
        if fmt == "raw":
            return ",".join(vals)
        if fmt == "csv":
            return ",".join(vals)
        if fmt == "pipe":
            return "|".join(vals)
        if fmt in ("regex",) or self.multi or len(vals) > 1:
            esc = [_regex_escape(v) for v in vals]
            return esc[0] if len(esc) == 1 else "(" + "|".join(esc) + ")"
        return vals[0] if vals else ""


def substitute(expr, variables):
    """Replaces $name, ${name}, ${name:format} and [[name]] with the variables' values."""
    names = sorted(variables, key=len, reverse=True)
    if not names:
        return expr
    alt = "|".join(re.escape(n) for n in names)
    pattern = re.compile(
        r"\$\{(%s)(?::(\w+))?\}|\[\[(%s)(?::(\w+))?\]\]|\$(%s)(?![A-Za-z0-9_])" % (alt, alt, alt)
    )

    def repl(m):
        name = m.group(1) or m.group(3) or m.group(5)
        fmt = m.group(2) or m.group(4)
        return variables[name].render(fmt)

    return pattern.sub(repl, expr)


def _current_values(var):
    cur = var.get("current") or {}
    v = cur.get("value")
    if v is None or v == "" or v == []:
        return []
    return v if isinstance(v, list) else [v]


def _all_value(var, values):
    if var.get("allValue"):
        return Value(raw=var["allValue"])
    return Value(values=values, multi=True)


_LABEL_VALUES = re.compile(r"^\s*label_values\s*\(\s*(?:(.*?)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.S)


def _var_query(var):
    q = var.get("query")
    if isinstance(q, dict):
        q = q.get("query")
    return q or var.get("definition") or ""


def resolve_variables(dash, cli_vars, builtins, prom=None, log=print):
    """Values for every dashboard variable (see the module docstring)."""
    variables = {k: Value(values=[v]) for k, v in builtins.items()}
    for var in (dash.get("templating") or {}).get("list") or []:
        name, vtype = var.get("name"), var.get("type")
        if not name:
            continue
        multi = bool(var.get("multi") or var.get("includeAll"))
        if name in cli_vars:
            variables[name] = Value(values=cli_vars[name], multi=multi)
            continue
        if vtype == "datasource":
            variables[name] = Value(values=["prometheus"])
            continue
        current = _current_values(var)
        if vtype in ("custom", "constant", "textbox", "interval"):
            opts = [o.get("value") for o in var.get("options") or [] if o.get("value") is not None]
            if current == ["$__all"] and var.get("includeAll"):
                variables[name] = _all_value(var, opts)
            elif current:
                variables[name] = Value(values=current, multi=multi)
            elif opts:
                variables[name] = Value(values=opts[:1], multi=multi)
            else:
                q = _var_query(var)
                first = q.split(",")[0].strip() if vtype == "custom" else q
                variables[name] = Value(values=[first], multi=multi)
            continue
        if vtype != "query":
            variables[name] = Value(values=current or [""], multi=multi)
            continue
        # A query variable.
        query = substitute(_var_query(var), variables)
        if prom is None:
            # Offline: the "All" value, else the saved current value, else a placeholder.
            if var.get("includeAll"):
                variables[name] = _all_value(var, current if current and current != ["$__all"] else ["x"])
            else:
                variables[name] = Value(values=current or ["%s_value" % name], multi=multi)
            continue
        m = _LABEL_VALUES.match(query)
        values = []
        if m:
            match, label = m.group(1), m.group(2)
            params = [("match[]", match)] if match else []
            try:
                values = prom.get("/api/v1/label/%s/values" % label, params)
            except PromError as e:
                log("warning: variable %s: %s" % (name, e))
        else:
            log("warning: variable %s: only label_values(...) queries are resolved; got %r" % (name, query))
        values = sorted(set(values))
        if var.get("includeAll"):
            variables[name] = _all_value(var, values)
        elif [v for v in current if v in values]:
            variables[name] = Value(values=[v for v in current if v in values], multi=multi)
        elif values:
            variables[name] = Value(values=values[:1], multi=multi)
        else:
            log("warning: variable %s has no value in Prometheus (%s)" % (name, query))
            variables[name] = Value(values=[""], multi=multi)
    return variables


# ----------------------------------------------------------------------------- PromQL names

_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "inf", "nan", "start", "end", "atan2",
}


def metric_names(expr):
    """Metric names an expression selects (a lexical approximation, good for PromQL as written
    in dashboards and rules)."""
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    s = re.sub(r"#[^\n]*", " ", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = []
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        word = m.group(0)
        if word.lower() in _KEYWORDS:
            continue
        if m.start() > 0 and (s[m.start() - 1].isdigit() or s[m.start() - 1] == "."):
            continue  # part of a number or a duration (1e3, 5m)
        if re.match(r"\s*\(", s[m.end():]):
            continue  # a function or an aggregation
        if word not in names:
            names.append(word)
    return names


# ----------------------------------------------------------------------------- Prometheus API


class PromError(Exception):
    pass


class Prometheus:
    def __init__(self, base, timeout):
        self.base = base.rstrip("/")
        self.timeout = timeout

    def get(self, path, params):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except Exception:
                raise PromError("HTTP %s from %s" % (e.code, path)) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise PromError("cannot query %s: %s" % (self.base, e)) from None
        if body.get("status") != "success":
            raise PromError("%s: %s" % (body.get("errorType", "error"), body.get("error", "unknown error")))
        return body.get("data")

    def query(self, expr):
        """(number of series or samples, resultType)."""
        data = self.get("/api/v1/query", [("query", expr)])
        rtype = data.get("resultType")
        result = data.get("result")
        if rtype in ("vector", "matrix"):
            return len(result), rtype
        return 1, rtype  # scalar or string: always a value


# ----------------------------------------------------------------------------- main


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Check a Grafana dashboard's queries and Prometheus rule expressions against a live Prometheus.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    ap.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus base URL (default %(default)s)")
    ap.add_argument("--dashboard", action="append", default=[], help="Grafana dashboard JSON (repeatable)")
    ap.add_argument("--rules", action="append", default=[], help="Prometheus rule file or PrometheusRule YAML (repeatable)")
    ap.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="dashboard variable value (repeat a name for several values)")
    ap.add_argument("--rate-interval", default=BUILTINS_DEFAULT["__rate_interval"], help="value of $__rate_interval (default %(default)s)")
    ap.add_argument("--interval", default=BUILTINS_DEFAULT["__interval"], help="value of $__interval (default %(default)s)")
    ap.add_argument("--range", default=BUILTINS_DEFAULT["__range"], help="value of $__range (default %(default)s)")
    ap.add_argument("--allow-empty", action="append", default=[], metavar="REGEX", help="dashboard queries whose name matches may return no data")
    ap.add_argument("--require-metrics", action="store_true", help="fail when an expression uses a metric Prometheus has no series of")
    ap.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="retry failing dashboard queries for up to this long (data appears only after a few scrapes)")
    ap.add_argument("--timeout", type=float, default=10, help="HTTP timeout per request, seconds (default %(default)s)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print each expression under its row")
    ap.add_argument("--list", action="store_true", help="print the substituted expressions and exit (no server needed)")
    ap.add_argument("--list-metrics", action="store_true", help="print the metric names the expressions use and exit (no server needed)")
    ap.add_argument("--write-rules", metavar="FILE", help="write the dashboard expressions as a recording-rule file for `promtool check rules` and exit")
    args = ap.parse_args(argv)
    if not args.dashboard and not args.rules:
        ap.error("give at least one --dashboard or --rules file")
    cli_vars = {}
    for item in args.var:
        if "=" not in item:
            ap.error("--var wants NAME=VALUE, got %r" % item)
        k, v = item.split("=", 1)
        cli_vars.setdefault(k.strip(), []).append(v)
    args.cli_vars = cli_vars
    return args


def load_queries(args, prom, log):
    """(kind, source, name, expr) for every dashboard query and rule, substituted."""
    builtins = {
        "__rate_interval": args.rate_interval,
        "__interval": args.interval,
        "__interval_ms": str(_duration_ms(args.interval)),
        "__range": args.range,
        "__range_s": str(_duration_ms(args.range) // 1000),
        "__range_ms": str(_duration_ms(args.range)),
    }
    queries = []
    for path in args.dashboard:
        try:
            with open(path, encoding="utf-8") as f:
                dash = json.load(f)
        except (OSError, ValueError) as e:
            raise SystemExit("error: cannot read dashboard %s: %s" % (path, e)) from None
        variables = resolve_variables(dash, args.cli_vars, builtins, prom, log)
        unknown = set(args.cli_vars) - set(variables)
        if unknown:
            log("warning: %s: no variable named %s" % (path, ", ".join(sorted(unknown))))
        for kind, name, expr in dashboard_queries(dash):
            text = substitute(expr, variables)
            left = re.findall(r"\$\{?[A-Za-z_]\w*|\[\[\w+", text)
            if left:
                log("warning: %s: %s still contains %s" % (path, name, ", ".join(sorted(set(left)))))
            queries.append((kind, path, name, text))
    for path in args.rules:
        try:
            with open(path, encoding="utf-8") as f:
                rules = parse_rules(f.read())
        except (OSError, yaml.YAMLError) as e:
            raise SystemExit("error: cannot read rules %s: %s" % (path, e)) from None
        if not rules:
            raise SystemExit("error: no rules found in %s" % path)
        for kind, name, expr in rules:
            queries.append((kind, path, name, expr))
    return queries


def used_metrics(queries):
    """The metric names the queries use, each once, in order of first use."""
    names = []
    for q in queries:
        names.extend(n for n in metric_names(q[3]) if n not in names)
    return names


def _duration_ms(text):
    units = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000, "w": 604800000, "y": 31536000000}
    total = 0
    for num, unit in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text):
        total += int(num) * units[unit]
    return total


def _rule_name(name):
    return re.sub(r"[^A-Za-z0-9_:]", "_", name).strip("_") or "query"


def write_rules(path, queries):
    with open(path, "w", encoding="utf-8") as f:
        f.write("# Generated by scripts/prom_live_check.py --write-rules: dashboard queries as recording\n")
        f.write("# rules, only so that `promtool check rules` parses them.\n")
        f.write("groups:\n  - name: dashboard-queries\n    rules:\n")
        for n, (kind, source, name, expr) in enumerate(queries):
            if kind not in ("panel", "annotation"):
                continue
            f.write("      - record: dashboard:%s:%d\n" % (_rule_name(name), n))
            f.write("        expr: %s\n" % json.dumps(expr))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    offline = args.list or args.list_metrics or args.write_rules
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    prom = None if offline else Prometheus(args.prometheus, args.timeout)

    if offline:
        queries = load_queries(args, None, log)
        if args.write_rules:
            write_rules(args.write_rules, queries)
            print("wrote %d dashboard expressions to %s" % (sum(q[0] in ("panel", "annotation") for q in queries), args.write_rules))
        if args.list_metrics:
            print("\n".join(sorted(used_metrics(queries))))
        if args.list:
            for kind, source, name, expr in queries:
                print("%-10s %s" % (kind, name))
                print("           " + expr.replace("\n", "\n           "))
        return 0

    try:
        info = prom.get("/api/v1/status/buildinfo", [])
        print("Prometheus %s at %s" % (info.get("version", "?"), args.prometheus))
    except PromError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1

    queries = load_queries(args, prom, log)
    allow = [re.compile(r) for r in args.allow_empty]
    deadline = time.monotonic() + args.wait

    def evaluate(q):
        kind, source, name, expr = q
        try:
            n, rtype = prom.query(expr)
        except PromError as e:
            return ("ERROR", str(e), True)
        if kind == "panel":
            if n:
                return ("OK", "%d series" % n if rtype in ("vector", "matrix") else rtype, False)
            if any(r.search(name) for r in allow):
                return ("EMPTY", "no data (allowed)", False)
            return ("NO DATA", "empty result", True)
        if kind == "alert":
            return ("OK", "firing: %d" % n if n else "not firing", False)
        return ("OK", "%d series" % n if n else "empty", False)

    results = [evaluate(q) for q in queries]
    while any(r[2] for r in results) and time.monotonic() < deadline:
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
        results = [evaluate(q) if r[2] else r for q, r in zip(queries, results)]
    # Alerts are judged on the data as it stands now, not as it stood before the first scrape.
    results = [evaluate(q) if q[0] == "alert" else r for q, r in zip(queries, results)]

    # Metric presence: a misspelt or missing metric makes a panel empty or an alert silent.
    missing = []
    for name in used_metrics(queries):
        try:
            n, _ = prom.query("count(%s)" % name if ":" not in name else "count({__name__=%s})" % json.dumps(name))
        except PromError:
            n = 0
        if not n:
            missing.append(name)

    w_kind = max(len("kind"), *(len(q[0]) for q in queries))
    w_name = min(60, max(len("query"), *(len(q[2]) for q in queries)))
    print()
    print("%-*s  %-*s  %-8s  %s" % (w_kind, "kind", w_name, "query", "status", "result"))
    print("%s  %s  %s  %s" % ("-" * w_kind, "-" * w_name, "-" * 8, "-" * 30))
    for q, (status, detail, _) in zip(queries, results):
        name = q[2] if len(q[2]) <= w_name else q[2][: w_name - 1] + "…"
        print("%-*s  %-*s  %-8s  %s" % (w_kind, q[0], w_name, name, status, detail))
        if args.verbose or status in ("ERROR", "NO DATA"):
            print("%s  %s" % (" " * w_kind, q[3].replace("\n", "\n" + " " * (w_kind + 2))))

    failed = [q for q, r in zip(queries, results) if r[2]]
    panels = [r for q, r in zip(queries, results) if q[0] == "panel"]
    rules = [r for q, r in zip(queries, results) if q[0] in ("alert", "record")]
    print()
    print("dashboard queries: %d with data, %d failed" % (sum(not r[2] for r in panels), sum(r[2] for r in panels)))
    print("rule expressions:  %d evaluated, %d errors (%d alerts firing)" % (
        len(rules), sum(r[2] for r in rules), sum(1 for r in rules if r[1].startswith("firing"))))
    if missing:
        print("metrics with no series in Prometheus: %s" % ", ".join(missing))
    ok = not failed and not (missing and args.require_metrics)
    print("RESULT: %s" % ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
