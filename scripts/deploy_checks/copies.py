"""The PrometheusRule object in the monitoring component is generated from the Prometheus rule
file: the rule file indented under `spec:`, so its comments survive and the two can be compared
byte for byte. `check-deploy.sh --fix` writes it; the check fails while the two differ."""

import difflib

RULES = "deploy/prometheus/silkroute-rules.yml"
RULE_COPY = "deploy/kubernetes/components/monitoring/prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/silkroute-rules.yml by `scripts/check-deploy.sh --fix`.
# Do not edit: change the rule file (and its tests), then regenerate.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: silkroute
  labels:
    app.kubernetes.io/name: silkroute
    app.kubernetes.io/component: indicator-engine
spec:
"""


def render_prometheusrule(rules_text):
    """The PrometheusRule for a rule file: every non-empty line indented by two spaces."""
    lines = rules_text.splitlines(keepends=True)
    return HEADER + "".join("  " + ln if ln.strip("\n") else ln for ln in lines)


def _read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def fix(rules=RULES, copy=RULE_COPY):
    with open(copy, "w", encoding="utf-8", newline="") as f:
        f.write(render_prometheusrule(_read(rules)))
    print("wrote %s" % copy)
    return 0


def check(rules=RULES, copy=RULE_COPY):
    want = render_prometheusrule(_read(rules))
    have = _read(copy)
    if have == want:
        print("%s matches %s" % (copy, rules))
        return 0
    print("%s differs from what %s gives (run scripts/check-deploy.sh --fix):" % (copy, rules))
    diff = difflib.unified_diff(
        have.splitlines(keepends=True), want.splitlines(keepends=True), copy, "-"
    )
    print("".join(list(diff)[:40]), end="")
    return 1
