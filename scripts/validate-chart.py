#!/usr/bin/env python3
"""Lints the Helm chart, renders it with several sets of values, and validates every rendered
manifest (and the chart's CRD) against the Kubernetes 1.32 schemas, strictly: no cluster and no
helm binary needed. Run with the venv scripts/setup.sh makes:

    ~/.cache/weir/venv/bin/python scripts/validate-chart.py charts/weir

The Rust test operator/tests/chart.rs runs it. Besides schema validity it checks what the
operator relies on (probes, POD_NAME, the run arguments, the RBAC rules), and that invalid
values are refused at render time. Prints one line per check and exits non-zero on any failure.
"""

import sys
from pathlib import Path

import helm_python
import kubernetes_validate
import yaml

KUBE_VERSION = "1.32.0"
RELEASE, NAMESPACE = "weir", "weir-system"

# Values sets to render, each with checks of its own below.
VALUE_SETS = {
    "defaults": {},
    "namespaced": {
        "watchNamespaces": ["team-a", "team-b"],
        "replicas": 1,
        "logFormat": "text",
        "logLevel": "debug",
        "extraArgs": ["--some-flag=1"],
        "extraEnv": [{"name": "EXTRA", "value": "1"}],
        "serviceAccount": {"create": False, "name": "weir-sa"},
        "metricsService": {"enabled": False},
        "image": {"tag": "dev", "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "registry"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "podAnnotations": {"example.com/team": "streaming"},
        "priorityClassName": "system-cluster-critical",
        "port": 9090,
    },
    "no-rbac": {"rbac": {"create": False}, "replicas": 3},
}

# Values the chart must refuse, with a word the error must contain.
INVALID_VALUES = {
    "unknown log format": ({"logFormat": "xml"}, "logFormat"),
    "existing service account without a name": (
        {"serviceAccount": {"create": False}},
        "serviceAccount.name",
    ),
}

OPERATOR_RULES = {
    ("weir.dev", "flinkjobs"): {"get", "list", "watch", "update", "patch"},
    ("weir.dev", "flinkjobs/status"): {"get", "update", "patch"},
    ("weir.dev", "flinkjobs/finalizers"): {"update"},
    ("", "configmaps"): {"create", "patch", "delete", "list", "watch"},
    ("", "services"): {"create", "patch", "delete", "list", "watch"},
    ("", "secrets"): {"get"},
    ("apps", "deployments"): {"create", "patch", "delete", "list", "watch"},
    ("apps", "statefulsets"): {"create", "patch", "delete", "list", "watch"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "events"): {"create", "patch"},
}

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def validate(doc, origin):
    """Validates one manifest against the Kubernetes schemas, strictly."""
    name = f"{origin}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    try:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        check(True, f"{name} is a valid {KUBE_VERSION} manifest")
    except kubernetes_validate.ValidationError as e:
        check(False, f"{name}: {e.message} at {'.'.join(map(str, e.path))}")
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as e:
        check(False, f"{name}: no schema to validate against: {e}")


def allowed(docs, kind, namespace=None):
    """(apiGroup, resource) -> verbs granted by the roles of `kind` (in `namespace`)."""
    grants = {}
    for doc in docs:
        if doc["kind"] != kind or (namespace and doc["metadata"].get("namespace") != namespace):
            continue
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


def grants_cover(grants, required):
    return all(verbs <= grants.get(key, set()) for key, verbs in required.items())


def container(docs):
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    return deployment, deployment["spec"]["template"]["spec"]["containers"][0]


def check_common(label, docs):
    deployment, operator = container(docs)
    probes = (operator["livenessProbe"]["httpGet"]["path"], operator["readinessProbe"]["httpGet"]["path"])
    check(probes == ("/healthz", "/readyz"), f"{label}: liveness /healthz, readiness /readyz")
    env = {e["name"]: e for e in operator["env"]}
    pod_name = env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    check(pod_name == "metadata.name", f"{label}: POD_NAME from the downward API")
    check(operator["args"][0] == "run", f"{label}: the container runs `weir-operator run`")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    check(selector.items() <= labels.items(), f"{label}: the selector matches the pod labels")
    return deployment, operator, env


def check_defaults(docs):
    deployment, operator, env = check_common("defaults", docs)
    check(deployment["spec"]["replicas"] == 2, "defaults: two replicas")
    args = operator["args"]
    check("--lease-namespace=$(POD_NAMESPACE)" in args, "defaults: the Lease in the pod's namespace")
    check("--log-format=json" in args, "defaults: JSON logs")
    check(not any(a.startswith("--watch-namespaces") for a in args), "defaults: all namespaces")
    check(grants_cover(allowed(docs, "ClusterRole"), OPERATOR_RULES), "defaults: the ClusterRole grants what the operator does")
    lease = allowed(docs, "Role", NAMESPACE).get(("coordination.k8s.io", "leases"), set())
    check({"get", "create", "update"} <= lease, "defaults: the leader Role grants the Lease")
    kinds = sorted(d["kind"] for d in docs)
    expected = ["ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"]
    check(kinds == expected, f"defaults: renders {expected} (got {kinds})")
    service = next(d for d in docs if d["kind"] == "Service")
    check(service["spec"]["ports"][0]["targetPort"] == "http", "defaults: the Service targets the metrics port")


def check_namespaced(docs):
    deployment, operator, env = check_common("namespaced", docs)
    args = operator["args"]
    check("--watch-namespaces=team-a,team-b" in args, "namespaced: --watch-namespaces lists both")
    check("--log-format=text" in args and "--some-flag=1" in args, "namespaced: log format and extra args")
    check("--health-addr=0.0.0.0:9090" in args, "namespaced: the health port follows `port`")
    check(env.get("WEIR_LOG", {}).get("value") == "debug", "namespaced: WEIR_LOG from logLevel")
    check(operator["image"].endswith(":dev"), "namespaced: the image tag")
    kinds = {d["kind"] for d in docs}
    check(not kinds & {"ClusterRole", "ClusterRoleBinding", "ServiceAccount", "Service"}, "namespaced: nothing cluster-wide, no ServiceAccount, no Service")
    for ns in ["team-a", "team-b"]:
        check(grants_cover(allowed(docs, "Role", ns), OPERATOR_RULES), f"namespaced: the Role in {ns} grants what the operator does")
    spec = deployment["spec"]["template"]["spec"]
    check(spec["serviceAccountName"] == "weir-sa", "namespaced: the existing ServiceAccount")


def check_no_rbac(docs):
    check_common("no-rbac", docs)
    kinds = {d["kind"] for d in docs}
    check(not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}, "no-rbac: no roles")


CHECKS = {"defaults": check_defaults, "namespaced": check_namespaced, "no-rbac": check_no_rbac}


def main(chart_dir):
    chart_dir = Path(chart_dir)
    report = helm_python.lint(str(chart_dir), strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = report["errors"] + [
        f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2
    ]
    check(not problems, f"helm lint --strict: {problems or 'clean'}")

    crd = yaml.safe_load((chart_dir / "crds" / "flinkjob.yaml").read_text())
    validate(crd, "crds/flinkjob.yaml")

    with helm_python.Chart.load(str(chart_dir)) as chart:
        for label, values in VALUE_SETS.items():
            rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
            docs = []
            for path, text in sorted(rendered.items()):
                if not path.endswith(".yaml"):
                    continue
                docs += [d for d in yaml.safe_load_all(text) if d]
            for doc in docs:
                validate(doc, label)
            CHECKS[label](docs)
        for label, (values, word) in INVALID_VALUES.items():
            try:
                chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
                check(False, f"refuses {label}")
            except helm_python.HelmError as e:
                check(word in str(e), f"refuses {label} ({str(e).strip()[:120]})")

    print(f"{len(failures)} failed" if failures else "chart: all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "charts/weir"))
