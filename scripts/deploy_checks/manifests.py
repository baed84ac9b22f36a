"""Checks of the kustomize builds that kubernetes-validate cannot make: the pod security
profile, the probes and ports the service needs, replicas and rollout strategy, the per-pod
instance id, selectors that match, the configuration file, the custom resources (the changelog
KafkaTopic among them), and the rules and dashboard inside them."""

import json
import os

import yaml

from .kube import load_build
from .report import Report

try:
    import tomllib  # Python 3.11+
except ImportError:
    tomllib = None

DEFAULT_TOML = "config/default.toml"
INPUT_TOPICS = {"customs.trade.monthly", "freight.trains.monthly", "fx.rates.monthly"}
# The state: <group_id>-cells-changelog of the production group `silkroute` (cross-checked
# against each overlay's configuration).
CHANGELOG = "silkroute-cells-changelog"
TOPICS = INPUT_TOPICS | {"silkroute.indicators", "silkroute.dlq", CHANGELOG}
COMPACTED = {"silkroute.indicators", CHANGELOG}
# Kafka's default max.message.bytes, for topics that do not set it.
KAFKA_MAX_MESSAGE_BYTES = 1048588
# Production runs several instances (correct since the state is in the changelog); with KEDA
# the autoscaler owns the count (None: replicas must not be set).
EXPECTED_REPLICAS = {"overlays_dev": 1, "overlays_production": 3, "overlays_production-keda": None}
TOPICS_BUILD = "overlays_production_kafka-topics"
METRICS_PORT = 9464
NONROOT_UID = 65532  # distroless `nonroot`
SHUTDOWN_TIMEOUT_S = 20


def has_key(table, path):
    node = table
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def toml_paths(table, prefix=()):
    """Every key path of a TOML table, except inside the librdkafka pass-through map."""
    for k, v in table.items():
        p = prefix + (k,)
        if p[:2] == ("kafka", "librdkafka"):
            continue
        if isinstance(v, dict):
            yield from toml_paths(v, p)
        else:
            yield p


def as_int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def labels(obj):
    return obj["metadata"].get("labels", {})


def is_dashboard(cm):
    return labels(cm).get("grafana_dashboard") == "1"


class Checker:
    """The checks over all builds; some compare one build with another (the overlays' changelog
    with the KafkaTopics, KEDA's ceiling with the input partitions)."""

    def __init__(self, rules_path, dashboard_path):
        self.report = Report()
        self.rules_path, self.dashboard_path = rules_path, dashboard_path
        with open(rules_path, encoding="utf-8") as f:
            self.rule_groups = yaml.safe_load(f)["groups"]
        with open(dashboard_path, encoding="utf-8") as f:
            self.dashboard = json.load(f)
        self.default_toml = None  # config/default.toml: every key the service accepts
        if tomllib is None:
            self.note("note: Python has no tomllib (3.11+): configuration files not parsed")
        elif os.path.exists(DEFAULT_TOML):
            with open(DEFAULT_TOML, "rb") as f:
                self.default_toml = tomllib.load(f)
        self.topic_specs = {}  # topic -> KafkaTopic spec, from the kafka-topics build
        self.changelog_wanted = {}  # build -> changelog topic it uses, where it creates none
        self.keda_max = {}  # build -> ScaledObject maxReplicaCount

    def err(self, build, msg):
        self.report.err(build, msg)

    def note(self, msg):
        self.report.note(msg)

    # ------------------------------------------------------------------ one build

    def check_build(self, name, objs):
        by_kind = {}
        for o in objs:
            by_kind.setdefault(o["kind"], []).append(o)
        if "Secret" in by_kind:
            self.err(name, "contains a Secret: secret values are never committed (create them "
                           "with kubectl, see docs/operations.md)")
        if name.startswith(TOPICS_BUILD):
            self.check_topics(name, by_kind.get("KafkaTopic", []))
            return
        if self.check_service(name, by_kind):
            self.note("%s: %s" % (name, ", ".join(
                "%d %s" % (len(v), k) for k, v in sorted(by_kind.items()))))

    def check_topics(self, name, kafka_topics):
        topics = {o["spec"].get("topicName", o["metadata"]["name"]): o for o in kafka_topics}
        if set(topics) != TOPICS:
            self.err(name, "KafkaTopics %s, expected %s" % (sorted(topics), sorted(TOPICS)))
        for t, o in topics.items():
            spec = o["spec"]
            if "strimzi.io/cluster" not in labels(o):
                self.err(name, "KafkaTopic %s has no strimzi.io/cluster label" % t)
            if not isinstance(spec.get("partitions"), int) or not isinstance(
                    spec.get("replicas"), int):
                self.err(name, "KafkaTopic %s needs integer partitions and replicas" % t)
            policy = spec.get("config", {}).get("cleanup.policy")
            if (t in COMPACTED) != (policy == "compact"):
                self.err(name, "KafkaTopic %s has cleanup.policy %s" % (t, policy))
            self.topic_specs[t] = spec
        inputs = INPUT_TOPICS & set(self.topic_specs)
        # The changelog is the service's durable state: compacted (checked above) and never
        # deleted by time, and it must take every input event plus its key.
        cl = self.topic_specs.get(CHANGELOG)
        if cl:
            config = cl.get("config", {})
            if as_int(config.get("retention.ms")) != -1:
                self.err(name, "changelog %s must keep its records forever (retention.ms -1), "
                               "has %s" % (CHANGELOG, config.get("retention.ms")))
            for t in inputs:
                mine = as_int(config.get("max.message.bytes", KAFKA_MAX_MESSAGE_BYTES))
                theirs = as_int(self.topic_specs[t].get("config", {}).get(
                    "max.message.bytes", KAFKA_MAX_MESSAGE_BYTES))
                if mine is None or theirs is None or mine <= theirs:
                    self.err(name, "changelog max.message.bytes %s must exceed %s's %s (events "
                                   "are forwarded unchanged, with a key)" % (mine, t, theirs))
        retention = sorted({str(self.topic_specs[t].get("config", {}).get("retention.ms"))
                            for t in inputs})
        self.note("%s: %d KafkaTopics; changelog %s compacted, kept forever; input retention.ms "
                  "%s" % (name, len(topics), CHANGELOG, ", ".join(retention)))

    def check_service(self, name, by_kind):
        """The silkroute Deployment and what goes with it; False when the build is too broken
        to check further."""
        deps = by_kind.get("Deployment", [])
        if len(deps) != 1:
            self.err(name, "expected one Deployment, found %d" % len(deps))
            return False
        dep = deps[0]
        self.check_deployment(name, dep["spec"])
        pod = dep["spec"]["template"]["spec"]
        self.check_pod(name, pod, by_kind.get("ServiceAccount", []))
        c = next((c for c in pod["containers"] if c["name"] == "silkroute"), None)
        if c is None:
            self.err(name, "no container named silkroute")
            return False
        self.check_container(name, c)
        self.check_env(name, {e["name"]: e for e in c.get("env", [])})
        cms = {o["metadata"]["name"]: o for o in by_kind.get("ConfigMap", [])}
        conf = self.check_config(name, pod, c, cms)
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        svcs = by_kind.get("Service", [])
        self.check_service_and_pdb(name, svcs, by_kind.get("PodDisruptionBudget", []), pod_labels)
        self.check_monitoring(name, by_kind, svcs, cms)
        self.check_keda(name, by_kind, dep, conf)
        return True

    def check_deployment(self, name, spec):
        pod_labels = spec["template"]["metadata"]["labels"]
        if spec["selector"]["matchLabels"].items() - pod_labels.items():
            self.err(name, "Deployment selector does not match its pod labels")
        want = EXPECTED_REPLICAS.get(name, "any")
        if want is None and "replicas" in spec:
            self.err(name, "with KEDA the Deployment must not set replicas (the HPA owns them)")
        elif isinstance(want, int) and spec.get("replicas") != want:
            self.err(name, "replicas %s, expected %s" % (spec.get("replicas"), want))
        # Rolling, one pod at a time and no surge pod (every pod holds the whole state): safe
        # since every pod has its own transactional id and restores from the changelog.
        strategy = spec.get("strategy", {})
        rolling = strategy.get("rollingUpdate", {})
        if (strategy.get("type") != "RollingUpdate" or str(rolling.get("maxUnavailable")) != "1"
                or str(rolling.get("maxSurge")) not in ("0", "0%")):
            self.err(name, "strategy must be RollingUpdate with maxUnavailable 1 and maxSurge 0, "
                           "is %s" % strategy)

    def check_pod(self, name, pod, service_accounts):
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != NONROOT_UID:
            self.err(name, "pod must run as non-root user %d" % NONROOT_UID)
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            self.err(name, "pod seccompProfile must be RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            self.err(name, "pod must not mount a service account token")
        if pod.get("enableServiceLinks") is not False:
            self.err(name, "enableServiceLinks must be false (SILKROUTE_* service variables)")
        if pod.get("terminationGracePeriodSeconds", 30) < SHUTDOWN_TIMEOUT_S + 5:
            self.err(name, "terminationGracePeriodSeconds must exceed the %d s shutdown timeout"
                     % SHUTDOWN_TIMEOUT_S)
        sa = pod.get("serviceAccountName")
        sas = [o for o in service_accounts if o["metadata"]["name"] == sa]
        if not sas or sas[0].get("automountServiceAccountToken") is not False:
            self.err(name, "ServiceAccount %s missing or mounts its token" % sa)

    def check_container(self, name, c):
        if c.get("args") != ["run", "--config", "/etc/silkroute/silkroute.toml"]:
            self.err(name, "container args %s" % c.get("args"))
        csc = c.get("securityContext", {})
        for key, value in (("allowPrivilegeEscalation", False), ("readOnlyRootFilesystem", True)):
            if csc.get(key) is not value:
                self.err(name, "container securityContext.%s must be %s" % (key, value))
        caps = csc.get("capabilities", {})
        if caps.get("drop") != ["ALL"] or caps.get("add"):
            self.err(name, "container must drop ALL capabilities and add none")
        ports = {p.get("name"): p for p in c.get("ports", [])}
        if ports.get("metrics", {}).get("containerPort") != METRICS_PORT:
            self.err(name, "container port `metrics` must be %d" % METRICS_PORT)
        for probe, path in (("startupProbe", None), ("readinessProbe", "/readyz"),
                            ("livenessProbe", "/healthz")):
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("port") != "metrics" or (path and get.get("path") != path):
                self.err(name, "%s must be an HTTP GET of %s on port metrics" % (
                    probe, path or "a health path"))
        res = c.get("resources", {})
        requests = res.get("requests", {})
        if not requests.get("cpu") or not requests.get("memory") or not res.get(
                "limits", {}).get("memory"):
            self.err(name, "container needs cpu and memory requests and a memory limit")

    def check_env(self, name, env):
        if env.get("SILKROUTE__LOG__FORMAT", {}).get("value") != "json":
            self.err(name, "SILKROUTE__LOG__FORMAT must be json")
        if "RUST_LOG" not in env:
            self.err(name, "RUST_LOG is not set")
        for var, key in (("SILKROUTE__KAFKA__SASL_USERNAME", "sasl-username"),
                         ("SILKROUTE__KAFKA__SASL_PASSWORD", "sasl-password")):
            ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef", {})
            if ref.get("name") != "silkroute-kafka" or ref.get("key") != key:
                self.err(name, "%s must come from Secret silkroute-kafka key %s" % (var, key))
        # Each pod's own transactional id: kafka.instance_id from the pod name.
        field = env.get("SILKROUTE__KAFKA__INSTANCE_ID", {}).get("valueFrom", {}).get(
            "fieldRef", {}).get("fieldPath")
        if field != "metadata.name":
            self.err(name, "SILKROUTE__KAFKA__INSTANCE_ID must come from the pod name (fieldRef "
                           "metadata.name)")
        if self.default_toml is None:
            return
        for var in env:
            if var.startswith("SILKROUTE__"):
                path = tuple(p.lower() for p in var[len("SILKROUTE__"):].split("__"))
                if not has_key(self.default_toml, path):
                    self.note("note: %s sets %s, which config/default.toml does not list (fine "
                              "only if the service accepts it without a default)" % (
                                  var, ".".join(path)))

    def check_config(self, name, pod, c, cms):
        """The silkroute.toml the pod mounts at /etc/silkroute; returns it parsed ({} when it
        cannot be)."""
        conf = {}
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        mount = next((m for m in c.get("volumeMounts", [])
                      if m["mountPath"] == "/etc/silkroute"), None)
        cm_name = vols.get(mount["name"], {}).get("configMap", {}).get("name") if mount else None
        if cm_name not in cms or "silkroute.toml" not in cms[cm_name].get("data", {}):
            self.err(name, "/etc/silkroute must be a ConfigMap volume holding silkroute.toml")
        elif tomllib is not None:
            try:
                conf = tomllib.loads(cms[cm_name]["data"]["silkroute.toml"])
            except tomllib.TOMLDecodeError as e:
                self.err(name, "silkroute.toml is not valid TOML: %s" % e)
                conf = {}
            self.check_config_keys(name, conf)
        for v in vols.values():
            if v.get("configMap", {}).get("name") not in (None, *cms):
                self.err(name, "volume %s refers to a ConfigMap that is not in the build"
                         % v["name"])
        return conf

    def check_config_keys(self, name, conf):
        if not conf.get("kafka", {}).get("bootstrap_servers"):
            self.err(name, "silkroute.toml sets no kafka.bootstrap_servers")
        if self.default_toml is None:
            self.note("%s: config/default.toml not found, configuration keys not checked against "
                      "it" % name)
        else:
            unknown = [".".join(p) for p in toml_paths(conf) if not has_key(self.default_toml, p)]
            if unknown:
                self.err(name, "silkroute.toml sets keys config/default.toml does not have (the "
                               "service would exit 2): %s" % ", ".join(unknown))
        kafka_conf, topics_conf = conf.get("kafka", {}), conf.get("topics", {})
        if kafka_conf.get("instance_id"):
            self.err(name, "silkroute.toml sets kafka.instance_id: every pod would share one "
                           "transactional id and fence the others (it comes from the pod name)")
        if topics_conf.get("create") is False:
            self.changelog_wanted[name] = topics_conf.get("changelog") or (
                "%s-cells-changelog" % kafka_conf.get("group_id", "silkroute"))

    def check_service_and_pdb(self, name, svcs, pdbs, pod_labels):
        if not svcs or not any(p.get("name") == "metrics" and p.get("port") == METRICS_PORT
                               for p in svcs[0]["spec"].get("ports", [])):
            self.err(name, "Service needs the port `metrics` (%d)" % METRICS_PORT)
        elif svcs[0]["spec"]["selector"].items() - pod_labels.items():
            self.err(name, "Service selector does not match the pods")
        if (not pdbs or pdbs[0]["spec"].get("maxUnavailable") != 1
                or pdbs[0]["spec"]["selector"]["matchLabels"].items() - pod_labels.items()):
            self.err(name, "PodDisruptionBudget must allow maxUnavailable 1 and select the pods")

    def check_monitoring(self, name, by_kind, svcs, cms):
        """The monitoring component: ServiceMonitor, PrometheusRule and dashboard ConfigMap."""
        for sm in by_kind.get("ServiceMonitor", []):
            if svcs and sm["spec"]["selector"]["matchLabels"].items() - labels(svcs[0]).items():
                self.err(name, "ServiceMonitor does not select the Service")
            if [e.get("port") for e in sm["spec"]["endpoints"]] != ["metrics"]:
                self.err(name, "ServiceMonitor must scrape the port `metrics`")
        for pr in by_kind.get("PrometheusRule", []):
            if pr["spec"]["groups"] != self.rule_groups:
                self.err(name, "PrometheusRule groups differ from %s" % self.rules_path)
        for cm in cms.values():
            if is_dashboard(cm) and json.loads(cm["data"]["silkroute.json"]) != self.dashboard:
                self.err(name, "dashboard ConfigMap differs from %s" % self.dashboard_path)
        if "ServiceMonitor" in by_kind and not any(is_dashboard(cm) for cm in cms.values()):
            self.err(name, "monitoring component without the dashboard ConfigMap")

    def check_keda(self, name, by_kind, dep, conf):
        auths = [o["metadata"]["name"] for o in by_kind.get("TriggerAuthentication", [])]
        kafka_conf = conf.get("kafka", {})
        for so in by_kind.get("ScaledObject", []):
            s = so["spec"]
            if s["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
                self.err(name, "ScaledObject does not target the Deployment")
            self.keda_max[name] = s.get("maxReplicaCount", 100)
            if s.get("minReplicaCount", 0) > self.keda_max[name]:
                self.err(name, "ScaledObject minReplicaCount above maxReplicaCount")
            for t in s["triggers"]:
                if t["type"] != "kafka" or not t["metadata"].get("consumerGroup"):
                    self.err(name, "ScaledObject trigger must be kafka with a consumerGroup")
                for key, conf_key in (("consumerGroup", "group_id"),
                                      ("bootstrapServers", "bootstrap_servers")):
                    if conf_key in kafka_conf and t["metadata"].get(key) != kafka_conf[conf_key]:
                        self.err(name, "ScaledObject %s %r differs from kafka.%s %r in "
                                       "silkroute.toml" % (key, t["metadata"].get(key), conf_key,
                                                           kafka_conf[conf_key]))
                ref = t.get("authenticationRef", {}).get("name")
                if ref and ref not in auths:
                    self.err(name, "ScaledObject refers to a missing TriggerAuthentication %s"
                             % ref)

    # ------------------------------------------------------------------ across builds

    def check_across_builds(self):
        """The topics the overlays need exist as KafkaTopics, and KEDA scales no higher than
        the owning input partitions (more instances would sit idle)."""
        if not self.topic_specs:
            self.note("note: no kafka-topics build, topic cross-checks skipped")
            return
        for name, topic in self.changelog_wanted.items():
            if topic not in self.topic_specs:
                self.err(name, "creates no topics (topics.create false) and its changelog %s is "
                               "not a KafkaTopic in kafka-topics/" % topic)
            else:
                self.note("%s: changelog %s is a KafkaTopic" % (name, topic))
        owning = [as_int(self.topic_specs[t].get("partitions"))
                  for t in ("customs.trade.monthly", "freight.trains.monthly")
                  if t in self.topic_specs]
        limit = max([p for p in owning if p] or [6])
        for name, m in self.keda_max.items():
            if m > limit:
                self.err(name, "ScaledObject maxReplicaCount %s above the %s input partitions"
                         % (m, limit))
            else:
                self.note("%s: ScaledObject scales up to %s (input partitions: %s)"
                          % (name, m, limit))


def check(build_dir, names, rules_path, dashboard_path):
    if not names:
        print("nothing was built")
        return 1
    checker = Checker(rules_path, dashboard_path)
    for name in names:
        checker.check_build(name, load_build(build_dir, name))
    checker.check_across_builds()
    checker.report.print()
    return checker.report.status()
