#!/usr/bin/env python3
"""Checks rendered gust manifests offline (called by scripts/k8s-check).

For each rendered overlay (a multi-document YAML file from `kubectl kustomize`):
1. Kubernetes' own kinds are validated against the Kubernetes schemas of
   KUBERNETES_VERSION in strict mode (kubernetes-validate); KEDA's kinds
   against deploy/k8s/schemas/keda.schema.json; any other kind fails.
2. gust's invariants hold (see `invariants`).

`--self-test` breaks each invariant in a copy of the first overlay and fails
unless every break is reported: the check can fail.

Exit status: 0 when everything passed, 1 otherwise.
"""

import copy
import json
import re
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.32.0"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
KEDA_SCHEMA = Path(__file__).resolve().parent.parent / "deploy/k8s/schemas/keda.schema.json"

# gust's defaults (shared/src/settings.rs) for settings a manifest may leave out.
DEFAULTS = {
    "GUST__AMQP__NAMESPACE": "gust",
    "GUST__WORKER__QUEUES": "default",
    "GUST__WORKER__CONCURRENCY": "16",
    "GUST__WORKER__SHUTDOWN_GRACE": "30s",
    "GUST__WORKER__KILL_GRACE": "5s",
    "GUST__HEALTH__BIND": "",
}
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def seconds(text):
    """A humantime duration ("120s", "2m30s") in seconds; ValueError when it is not one."""
    parts = re.findall(r"(\d+)\s*([a-z]+)", text)
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s+", "", text):
        raise ValueError(f"`{text}` is not a duration")
    total = 0.0
    for number, unit in parts:
        if unit not in DURATION_UNITS:
            raise ValueError(f"`{text}`: unknown unit {unit}")
        total += int(number) * DURATION_UNITS[unit]
    return total


def name_of(doc):
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def validate_schemas(docs):
    """Failures of the schema validation of every document."""
    keda = json.loads(KEDA_SCHEMA.read_text())
    failures = []
    for doc in docs:
        try:
            if doc.get("kind") in KEDA_KINDS:
                schema = {key: value for key, value in keda.items() if key != "oneOf"}
                jsonschema.validate(doc, {**schema, "$ref": f"#/$defs/{doc['kind']}"})
            else:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except jsonschema.ValidationError as e:
            where = "/".join(str(p) for p in e.absolute_path)
            failures.append(f"{name_of(doc)}: schema: {e.message} (at {where or 'top'})")
        except kubernetes_validate.SchemaNotFoundError:
            failures.append(f"{name_of(doc)}: no schema for {doc.get('apiVersion')} {doc.get('kind')}")
    return failures


def pod_spec(doc):
    if doc.get("kind") in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        return doc["spec"]["template"]["spec"]
    return None


def containers(spec):
    return spec.get("initContainers", []) + spec.get("containers", [])


def environment(container, config_maps):
    """The container's environment: envFrom ConfigMaps, then env values (which win)."""
    env = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            env.update(config_maps.get(ref["name"], {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
    return env


def setting(env, key):
    return env.get(key, DEFAULTS[key])


def gust_binary(container):
    command = container.get("command", []) + container.get("args", [])
    return command[0] if command and command[0].startswith("gust-") else None


def split_image(image):
    """(name, tag) of `registry/name:tag`; tag None when there is none or it is a digest."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last or ":" not in last:
        return image, None
    name, tag = image.rsplit(":", 1)
    return name, tag


def check_worker(deployment, container, env, scaled_objects, fail):
    """A worker Deployment: its ScaledObject, its queues and its grace period."""
    name = deployment["metadata"]["name"]
    spec = pod_spec(deployment)
    if "replicas" in deployment["spec"]:
        fail(f"Deployment/{name}: sets replicas, but KEDA owns a worker's replica count")
    namespace = setting(env, "GUST__AMQP__NAMESPACE")
    queues = [q.strip() for q in setting(env, "GUST__WORKER__QUEUES").split(",") if q.strip()]
    expected = {f"{namespace}.q.{q}" for q in queues}
    try:
        shutdown = seconds(setting(env, "GUST__WORKER__SHUTDOWN_GRACE"))
        kill = seconds(setting(env, "GUST__WORKER__KILL_GRACE"))
    except ValueError as e:
        fail(f"Deployment/{name}: {e}")
        shutdown = kill = 0
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace <= shutdown + kill:
        fail(
            f"Deployment/{name}: terminationGracePeriodSeconds {grace} must be above "
            f"GUST__WORKER__SHUTDOWN_GRACE + GUST__WORKER__KILL_GRACE ({shutdown:g}s + {kill:g}s)"
        )
    mine = [so for so in scaled_objects if so["spec"]["scaleTargetRef"]["name"] == name]
    if len(mine) != 1:
        fail(f"Deployment/{name}: {len(mine)} ScaledObjects target it, want exactly 1")
        return
    so = mine[0]
    so_name = name_of(so)
    triggers = so["spec"].get("triggers", [])
    got = {t.get("metadata", {}).get("queueName") for t in triggers}
    if got != expected:
        fail(
            f"{so_name}: scales on {sorted(got, key=str)}, but the worker consumes {sorted(expected)} "
            f"(GUST__WORKER__QUEUES={','.join(queues)}, GUST__AMQP__NAMESPACE={namespace})"
        )
    concurrency = setting(env, "GUST__WORKER__CONCURRENCY")
    for trigger in triggers:
        meta = trigger.get("metadata", {})
        if trigger.get("type") != "rabbitmq" or meta.get("protocol") != "http" or meta.get("mode") != "QueueLength":
            fail(f"{so_name}: a trigger is not rabbitmq/http/QueueLength (http counts unacked messages too)")
        if meta.get("excludeUnacknowledged") == "true":
            fail(f"{so_name}: excludeUnacknowledged would scale busy workers away")
        if meta.get("value") != concurrency:
            fail(f"{so_name}: target value {meta.get('value')} is not the worker's concurrency {concurrency}")
    if so["spec"].get("minReplicaCount", 0) < 1:
        fail(f"{so_name}: minReplicaCount must be at least 1 (custom tasks are sent only to live workers)")
    if so["spec"].get("maxReplicaCount", 100) < so["spec"].get("minReplicaCount", 0):
        fail(f"{so_name}: maxReplicaCount is below minReplicaCount")


def check_ops_probes(name, container, env, fail):
    """The scheduler and the worker probe their ops server on GUST__HEALTH__BIND's port."""
    bind = setting(env, "GUST__HEALTH__BIND")
    if not bind:
        fail(f"{name}: GUST__HEALTH__BIND is empty, so /healthz and /readyz are not served")
        return
    port = int(bind.rsplit(":", 1)[1])
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http = container.get(probe, {}).get("httpGet", {})
        target = ports.get(http.get("port"), http.get("port"))
        if http.get("path") != path or target != port:
            fail(f"{name}: {probe} must GET {path} on port {port} (GUST__HEALTH__BIND), not {http}")


def invariants(docs):
    """Failures of gust's rules for its manifests."""
    failures = []
    fail = failures.append
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d.get("kind") == "ConfigMap"}
    scaled_objects = [d for d in docs if d.get("kind") == "ScaledObject"]
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    pdb_selectors = [d["spec"]["selector"]["matchLabels"] for d in docs if d.get("kind") == "PodDisruptionBudget"]
    gust_tags = {}
    worker_images = []

    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        pod_non_root = spec.get("securityContext", {}).get("runAsNonRoot") is True
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in containers(spec):
            name = f"{name_of(doc)} container {container['name']}"
            context = container.get("securityContext", {})
            if not (pod_non_root or context.get("runAsNonRoot") is True):
                fail(f"{name}: not runAsNonRoot")
            if context.get("readOnlyRootFilesystem") is not True:
                fail(f"{name}: readOnlyRootFilesystem is not true")
            if context.get("allowPrivilegeEscalation") is not False:
                fail(f"{name}: allowPrivilegeEscalation is not false")
            if not any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in container.get("volumeMounts", [])):
                fail(f"{name}: no emptyDir on /tmp (the root filesystem is read-only)")
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources.get(kind, {})):
                    fail(f"{name}: resources.{kind} needs cpu and memory")
            image_name, tag = split_image(container.get("image", ""))
            if tag in (None, "latest"):
                fail(f"{name}: image {container.get('image')} has no fixed tag")
            binary = gust_binary(container)
            if binary is None:
                continue
            env = environment(container, config_maps)
            if binary == "gust-worker" and doc["kind"] == "Deployment":
                worker_images.append((name, tag))
                check_worker(doc, container, env, scaled_objects, fail)
            else:
                gust_tags.setdefault(tag, []).append(name)
            if doc["kind"] == "Deployment":
                if not (container.get("livenessProbe") and container.get("readinessProbe")):
                    fail(f"{name}: needs a livenessProbe and a readinessProbe")
                if binary in ("gust-scheduler", "gust-worker"):
                    check_ops_probes(name, container, env, fail)

    if len(gust_tags) != 1:
        fail(f"gust image tags differ: {gust_tags} (set the one tag in kustomize `images:`)")
    else:
        (tag,) = gust_tags
        for name, worker_tag in worker_images:
            if worker_tag != tag and not str(worker_tag).startswith(f"{tag}-"):
                fail(f"{name}: worker image tag {worker_tag} is neither {tag} nor {tag}-<its release>")
    for deployment in deployments:
        labels = deployment["spec"]["template"]["metadata"].get("labels", {})
        if not any(sel and sel.items() <= labels.items() for sel in pdb_selectors):
            fail(f"{name_of(deployment)}: no PodDisruptionBudget selects its pods")
    names = {d["metadata"]["name"] for d in deployments}
    for so in scaled_objects:
        if so["spec"]["scaleTargetRef"]["name"] not in names:
            fail(f"{name_of(so)}: targets a Deployment that is not there")
    return failures


def check(docs):
    return validate_schemas(docs) + invariants(docs)


def breaks():
    """(what, expected failure, how): each breaks one rule in a copy of the documents."""

    def find(docs, kind, predicate=lambda d: True):
        return next(d for d in docs if d.get("kind") == kind and predicate(d))

    def worker(docs):
        return find(docs, "Deployment", lambda d: "worker" in d["metadata"]["name"])

    def worker_env(docs, key, value):
        env = pod_spec(worker(docs))["containers"][0]["env"]
        env[:] = [e for e in env if e["name"] != key] + [{"name": key, "value": value}]

    def trigger(docs):
        return find(docs, "ScaledObject")["spec"]["triggers"][0]["metadata"]

    def first_container(kind):
        return lambda docs: pod_spec(find(docs, kind))["containers"][0]

    return [
        ("a ScaledObject on another queue", "scales on", lambda d: trigger(d).update(queueName="gust.q.elsewhere")),
        ("a worker on another queue", "but the worker consumes", lambda d: worker_env(d, "GUST__WORKER__QUEUES", "other")),
        ("a short grace period", "terminationGracePeriodSeconds", lambda d: pod_spec(worker(d)).update(terminationGracePeriodSeconds=30)),
        ("a longer shutdown grace", "terminationGracePeriodSeconds", lambda d: worker_env(d, "GUST__WORKER__SHUTDOWN_GRACE", "1h")),
        ("a target value unlike the concurrency", "concurrency", lambda d: trigger(d).update(value="100")),
        ("the amqp protocol", "rabbitmq/http/QueueLength", lambda d: trigger(d).update(protocol="amqp")),
        ("a worker without a ScaledObject", "0 ScaledObjects", lambda d: d.remove(find(d, "ScaledObject"))),
        ("a second image tag", "tags differ", lambda d: first_container("Job")(d).update(image="registry.example.com/gust:9.9")),
        ("a writable root filesystem", "readOnlyRootFilesystem", lambda d: first_container("Deployment")(d)["securityContext"].update(readOnlyRootFilesystem=False)),
        ("a root pod", "runAsNonRoot", lambda d: pod_spec(find(d, "Job"))["securityContext"].update(runAsNonRoot=False)),
        ("no readiness probe", "readinessProbe", lambda d: first_container("Deployment")(d).pop("readinessProbe")),
        ("a probe on the wrong path", "must GET /healthz", lambda d: pod_spec(worker(d))["containers"][0]["livenessProbe"]["httpGet"].update(path="/")),
        ("no memory limit", "resources.limits", lambda d: first_container("Deployment")(d)["resources"]["limits"].pop("memory")),
        ("an unknown Deployment field", "'replicaz' was unexpected", lambda d: worker(d)["spec"].update(replicaz=3)),
        ("an unknown ScaledObject field", "'minReplicas' was unexpected", lambda d: find(d, "ScaledObject")["spec"].update(minReplicas=1)),
        ("an unknown kind", "no schema", lambda d: d.append({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})),
    ]


def self_test(docs):
    """Failures: the breaks of `breaks` that are not reported as expected (on documents that pass)."""
    missed = []
    for what, expected, apply in breaks():
        broken = copy.deepcopy(docs)
        apply(broken)
        caught = [f for f in check(broken) if expected in f]
        print(f"  self-test: {what}: {'caught: ' + caught[0] if caught else 'MISSED'}")
        if not caught:
            missed.append(f"self-test: {what} was not reported as `{expected}`")
    return missed


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def main(argv):
    run_self_test = "--self-test" in argv
    files = [a for a in argv if a != "--self-test"]
    if not files:
        print("usage: k8s_check.py [--self-test] RENDERED.yaml…", file=sys.stderr)
        return 2
    failed = False
    for path in files:
        docs = load(path)
        problems = check(docs)
        for problem in problems:
            print(f"FAIL {path}: {problem}")
        kinds = sorted({d["kind"] for d in docs})
        verdict = "FAILED" if problems else "passed"
        print(f"{path}: {len(docs)} resources ({', '.join(kinds)}) {verdict}: schemas (Kubernetes {KUBERNETES_VERSION} strict, KEDA) and invariants")
        failed |= bool(problems)
    if run_self_test:
        if failed:
            print("self-test skipped: fix the failures above first")
        else:
            missed = self_test(load(files[0]))
            for problem in missed:
                print(f"FAIL {problem}")
            print(f"self-test on {files[0]}: {len(breaks()) - len(missed)}/{len(breaks())} broken rules reported")
            failed |= bool(missed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
