"""Runs one check of scripts/check-deploy.sh by name (see the package docstring)."""

import argparse
import sys

from . import binary, copies, dashboard, kube, manifests, service_config


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m deploy_checks", description=__doc__)
    sub = ap.add_subparsers(dest="check", required=True)

    p = sub.add_parser("copies", help="the PrometheusRule generated from the rule file")
    p.add_argument("--fix", action="store_true", help="write it instead of comparing")
    p.add_argument("--rules", default=copies.RULES)
    p.add_argument("--copy", default=copies.RULE_COPY)

    p = sub.add_parser("validate", help="kubernetes-validate --strict on every build")
    p.add_argument("--kubernetes-version", required=True)
    p.add_argument("build_dir")
    p.add_argument("names", nargs="*")

    p = sub.add_parser("manifests", help="what kubernetes-validate cannot check")
    p.add_argument("--rules", required=True)
    p.add_argument("--dashboard", required=True)
    p.add_argument("build_dir")
    p.add_argument("names", nargs="*")

    p = sub.add_parser("dashboard", help="the Grafana dashboard's structure")
    p.add_argument("path")

    p = sub.add_parser("metric-names", help="every metric used is one silkroute exports")
    p.add_argument("--dashboard", required=True)
    p.add_argument("--rules", required=True)

    p = sub.add_parser("config", help="each build's configuration, loaded by the binary")
    p.add_argument("build_dir")
    p.add_argument("names", nargs="*")

    p = sub.add_parser("binary-libs", help="the release binary's shared libraries")
    p.add_argument("path", nargs="?", default=binary.RELEASE)

    a = ap.parse_args(argv)
    if a.check == "copies":
        return copies.fix(a.rules, a.copy) if a.fix else copies.check(a.rules, a.copy)
    if a.check == "validate":
        return kube.validate(a.build_dir, a.names, a.kubernetes_version)
    if a.check == "manifests":
        return manifests.check(a.build_dir, a.names, a.rules, a.dashboard)
    if a.check == "dashboard":
        return dashboard.check_structure(a.path)
    if a.check == "metric-names":
        return dashboard.check_metric_names(a.dashboard, a.rules)
    if a.check == "config":
        return service_config.check(a.build_dir, a.names)
    return binary.check(a.path)


if __name__ == "__main__":
    sys.exit(main())
