#!/usr/bin/env python3
"""Turns the shipped Kubernetes manifests into what `podman kube play` (podman 4.3) can run.

podman plays Pods, not StatefulSets or Jobs, and this machine runs it without systemd. Every
field rewritten here is one podman 4.3 cannot honour; everything else is played as shipped:
  kind StatefulSet/Job   -> a Pod from .spec.template (labels and containers unchanged)
  volumeClaimTemplates   -> persistentVolumeClaim volumes (podman named volumes), claim names
                            <template>-<statefulset>-0 as Kubernetes names them, with a prefix
  native sidecars        -> initContainers with restartPolicy Always hang podman: they become
                            ordinary containers (started with the main ones, not before)
  fsGroup                -> ignored by podman: supplementalGroups [fsGroup] plus a first, root
                            init container doing what the kubelet does to each volume (group
                            fsGroup, setgid, group rwx)
  ports                  -> podman publishes them on the host, and the test's pods have no
                            network but loopback (--network none): dropped
  probes                 -> podman turns them into healthchecks run by systemd timers, which
                            this machine does not have: dropped (the test checks /healthz itself)
  restartPolicy          -> OnFailure for a StatefulSet's pod (podman's Always hangs kube play)
  secretKeyRef env       -> a literal test value (no Secret objects in podman 4.3 kube play)
  postgres:15-bookworm   -> the local walvault-postgres15 image, with a command doing what the
                            official image's entrypoint does (initdb with POSTGRES_INITDB_ARGS
                            into an empty PGDATA, local connections trusted) and then postgres
                            with the shipped args
  walvault image         -> the tag just built
  serviceAccountName, automountServiceAccountToken: dropped (no API server)
Usage: kube_to_podman.py MANIFEST --pod NAME --claim-prefix P --image IMG --pg-image IMG
                         [--env CONTAINER:NAME=VALUE ...] > pod.yaml
"""
import argparse
import copy
import sys

import yaml

POSTGRES_ENTRYPOINT = r"""set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  /usr/lib/postgresql/15/bin/initdb --pgdata="$PGDATA" --username=postgres --auth-local=trust \
    --auth-host=scram-sha-256 --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") ${POSTGRES_INITDB_ARGS:-}
fi
exec /usr/lib/postgresql/15/bin/postgres -D "$PGDATA" -c unix_socket_directories=/var/run/postgresql \
  -c listen_addresses=127.0.0.1 "$@"
"""


def volume_mounts_of(spec):
    """Every mount path of every volume a pod spec mounts, first one per volume."""
    paths = {}
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        for m in c.get("volumeMounts", []):
            paths.setdefault(m["name"], m["mountPath"])
    return paths


def convert(doc, args):
    kind = doc["kind"]
    if kind not in ("StatefulSet", "Job"):
        raise SystemExit(f"kube_to_podman: cannot convert a {kind}")
    spec = copy.deepcopy(doc["spec"]["template"]["spec"])
    claims = {}
    if kind == "StatefulSet":
        for t in doc["spec"].get("volumeClaimTemplates", []):
            name = t["metadata"]["name"]
            claims[name] = f"{args.claim_prefix}{name}-{doc['metadata']['name']}-0"
            spec.setdefault("volumes", []).append({"name": name, "persistentVolumeClaim": {"claimName": claims[name]}})
        spec["restartPolicy"] = "OnFailure"
    for v in spec.get("volumes", []):
        pvc = v.get("persistentVolumeClaim")
        if pvc and not pvc["claimName"].startswith(args.claim_prefix):
            pvc["claimName"] = args.claim_prefix + pvc["claimName"]

    natives = [c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    spec["initContainers"] = [c for c in spec.get("initContainers", []) if c.get("restartPolicy") != "Always"]
    for c in natives:
        del c["restartPolicy"]
    spec["containers"] = natives + spec["containers"]

    security = spec.setdefault("securityContext", {})
    fs_group = security.pop("fsGroup", None)
    security.pop("fsGroupChangePolicy", None)
    if fs_group is not None:
        security["supplementalGroups"] = sorted(set(security.get("supplementalGroups", [])) | {fs_group})
        mounts = {name: path for name, path in volume_mounts_of(spec).items()
                  if not any(v["name"] == name and ("configMap" in v or "secret" in v) for v in spec.get("volumes", []))}
        script = "".join(f"chgrp {fs_group} {p} && chmod g+rwxs {p} && " for p in mounts.values()) + "true"
        spec["initContainers"].insert(0, {
            "name": "fsgroup", "image": args.pg_image, "command": ["bash", "-c", script],
            "securityContext": {"runAsUser": 0, "runAsGroup": 0},
            "volumeMounts": [{"name": n, "mountPath": p} for n, p in mounts.items()]})

    for c in spec["initContainers"] + spec["containers"]:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            c.pop(probe, None)
        c.pop("ports", None)
        if c["image"].startswith("postgres:"):
            c["image"] = args.pg_image
            c["command"] = ["bash", "-c", POSTGRES_ENTRYPOINT, "postgres"]
        elif "/walvault:" in c["image"]:
            c["image"] = args.image
        for e in c.get("env", []):
            if "secretKeyRef" in e.get("valueFrom", {}):
                e.pop("valueFrom")
                e["value"] = "podman-test-password"
        for extra in args.env:
            container, _, assignment = extra.partition(":")
            name, _, value = assignment.partition("=")
            if c["name"] == container:
                c["env"] = [e for e in c.get("env", []) if e["name"] != name] + [{"name": name, "value": value}]
    spec.pop("serviceAccountName", None)
    spec.pop("automountServiceAccountToken", None)
    labels = dict(doc["spec"]["template"].get("metadata", {}).get("labels", {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": args.pod, "labels": labels}, "spec": spec}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("manifest")
    parser.add_argument("--pod", required=True)
    parser.add_argument("--claim-prefix", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--pg-image", required=True)
    parser.add_argument("--env", action="append", default=[])
    args = parser.parse_args()
    with open(args.manifest) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    pods = [convert(d, args) for d in docs if d["kind"] in ("StatefulSet", "Job")]
    if len(pods) != 1:
        raise SystemExit(f"kube_to_podman: {args.manifest} holds {len(pods)} StatefulSets/Jobs, not one")
    yaml.safe_dump(pods[0], sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
