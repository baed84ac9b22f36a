"""The checks of scripts/check-deploy.sh that are programs rather than tool calls.

Each module is one check, a function that returns a `Report` (or an exit status), and
`__main__` runs one check by name:

    PYTHONPATH=scripts python3 -m deploy_checks CHECK ARGS...     (see --help)

  copies.py          the PrometheusRule generated from the Prometheus rule file (--fix writes it)
  kube.py            kubernetes-validate over each kustomize build; reading a build
  manifests.py       what kubernetes-validate cannot see: security profile, probes, replicas,
                     instance id, configuration, topics, custom resources
  dashboard.py       the Grafana dashboard's structure, and the metric names it and the rules use
  service_config.py  each build's configuration, loaded by the real silkroute binary
  binary.py          the release binary links only what the distroless image has

Exit status of every check: 0 passed, 1 failed, 3 skipped (nothing to check), 2 bad arguments.
"""
