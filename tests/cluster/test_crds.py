"""The CRDs built from schemas/crds/ (tests/cluster/crds.py): their names and subresources, the
structural-schema conversion, and a real kube-apiserver that installs them, accepts every
LeaderWorkerSet and DynamoGraphDeployment the charts render with fieldValidation=Strict, and
rejects broken ones naming the field."""

from __future__ import annotations

import copy
import glob
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.cluster.controlplane import ApiError, ControlPlane
from tests.cluster.crds import (
    DEFAULT_DEFINITIONS,
    QUANTITY_PATTERN,
    ROOT,
    SchemaConversionError,
    crd_objects,
    plural,
    schema_files,
    structural,
)

CUSTOM_KINDS = ("LeaderWorkerSet", "DynamoGraphDeployment")
STRICT_DRY_RUN = {"dryRun": "All", "fieldValidation": "Strict"}



@pytest.fixture(scope="module")
def crds() -> dict[str, dict]:
    if not DEFAULT_DEFINITIONS.is_file():
        pytest.fail(f"{DEFAULT_DEFINITIONS} missing: run `make setup`")
    return {c["spec"]["names"]["kind"]: c for c in crd_objects()}


# ---------------------------------------------------------------------------------------
# the CRD objects
# ---------------------------------------------------------------------------------------


def test_every_schema_file_is_a_served_version(crds):
    files = schema_files()
    assert len(files) >= 2
    by_group_plural = {(c["spec"]["group"], c["spec"]["names"]["plural"]): c for c in crds.values()}
    for path in files:
        schema = json.loads(path.read_text())
        kind = schema["properties"]["kind"]["enum"][0]
        group, version = schema["properties"]["apiVersion"]["enum"][0].split("/")
        assert path.parent.name == group and path.stem == f"{kind.lower()}_{version}"
        crd = by_group_plural[(group, plural(kind))]
        assert crd["metadata"]["name"] == f"{plural(kind)}.{group}"
        assert crd["spec"]["scope"] == "Namespaced"
        assert crd["spec"]["names"] == {
            **{"kind": kind, "listKind": f"{kind}List", "plural": plural(kind), "singular": kind.lower()},
            **({"shortNames": crd["spec"]["names"]["shortNames"]} if "shortNames" in crd["spec"]["names"] else {}),
        }
        versions = {v["name"]: v for v in crd["spec"]["versions"]}
        assert versions[version]["served"] is True
        assert versions[version]["subresources"]["status"] == {}
    for crd in crds.values():
        assert sum(v["storage"] for v in crd["spec"]["versions"]) == 1
    assert sum(len(c["spec"]["versions"]) for c in crds.values()) == len(files)


def test_names_and_scale(crds):
    lws, dgd = crds["LeaderWorkerSet"], crds["DynamoGraphDeployment"]
    assert lws["metadata"]["name"] == "leaderworkersets.leaderworkerset.x-k8s.io"
    assert lws["spec"]["names"] == {
        "kind": "LeaderWorkerSet",
        "listKind": "LeaderWorkerSetList",
        "plural": "leaderworkersets",
        "singular": "leaderworkerset",
        "shortNames": ["lws"],
    }
    (v1,) = lws["spec"]["versions"]
    assert (v1["name"], v1["served"], v1["storage"]) == ("v1", True, True)
    assert v1["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.hpaPodSelector",
        },
    }
    assert dgd["metadata"]["name"] == "dynamographdeployments.nvidia.com"
    assert dgd["spec"]["names"]["plural"] == "dynamographdeployments"
    (v1alpha1,) = dgd["spec"]["versions"]
    assert v1alpha1["name"] == "v1alpha1"
    assert v1alpha1["subresources"] == {"status": {}}


def _nodes(schema, path="$"):
    """Every schema node of a structural schema, with a readable path."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}[*]")
    if "items" in schema:
        yield from _nodes(schema["items"], f"{path}[]")


def test_schemas_are_structural(crds):
    for crd in crds.values():
        text = json.dumps(crd)
        for word in ('"$ref"', '"$schema"', '"$id"', '"$defs"', '"const"', '"examples"', '"patternProperties"',
                     "K8S_DEFINITIONS", '"x-kubernetes-patch-strategy"', '"x-kubernetes-group-version-kind"'):
            assert word not in text, (crd["metadata"]["name"], word)
        for version in crd["spec"]["versions"]:
            root = version["schema"]["openAPIV3Schema"]
            props = root["properties"]
            assert props["apiVersion"] == {"type": "string"} and props["kind"] == {"type": "string"}
            assert props["metadata"] == {"type": "object"}
            assert props["status"]["type"] == "object"
            for path, node in _nodes(root):
                assert node.get("additionalProperties") is not False, path
                assert not ("properties" in node and "additionalProperties" in node), path
                assert isinstance(node.get("type", ""), str), path
                assert (
                    "type" in node or node.get("x-kubernetes-int-or-string") or
                    node.get("x-kubernetes-preserve-unknown-fields")
                ), path  # fmt: skip


def test_pod_template_is_inlined(crds):
    spec = crds["LeaderWorkerSet"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    template = spec["properties"]["leaderWorkerTemplate"]["properties"]["workerTemplate"]
    container = template["properties"]["spec"]["properties"]["containers"]["items"]
    assert container["required"] == ["name"]
    assert container["properties"]["image"] == {**container["properties"]["image"], "type": "string", "nullable": True}
    ports = container["properties"]["ports"]
    assert ports["x-kubernetes-list-type"] == "map" and "nullable" not in ports["items"]
    assert ports["items"]["properties"]["protocol"]["default"] == "TCP"
    cpu = container["properties"]["resources"]["properties"]["limits"]["additionalProperties"]
    assert cpu == {"x-kubernetes-int-or-string": True, "pattern": QUANTITY_PATTERN, "nullable": True}
    port = container["properties"]["readinessProbe"]["properties"]["httpGet"]["properties"]["port"]
    assert port["x-kubernetes-int-or-string"] is True and port["nullable"] is True and "type" not in port
    surge = spec["properties"]["rolloutStrategy"]["properties"]["rollingUpdateConfiguration"]["properties"]["maxSurge"]
    assert surge == {"x-kubernetes-int-or-string": True}


def test_deterministic_and_unshared(crds):
    objects = crd_objects()
    assert json.dumps(crd_objects()) == json.dumps(objects)
    seen: set[int] = set()  # no dict or list shared by two places (YAML would get &id anchors)
    stack: list = [objects]
    while stack:
        node = stack.pop()
        if isinstance(node, (dict, list)):
            assert id(node) not in seen
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)


DEFINITIONS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "Node": {
            "type": ["object", "null"],
            "properties": {
                "name": {"type": ["string", "null"]},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            },
        },
        "IOS": {"oneOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]},
    },
}  # fmt: skip


LOCAL = {"type": "object", "additionalProperties": True, "properties": {"a": {"type": "string"}}}


def _root(**props):
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "x",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "example.com/v1"},
            "kind": {"enum": ["Thing"]},
            "metadata": {"$ref": "K8S_DEFINITIONS#/$defs/Node"},
            "spec": {"type": "object", "additionalProperties": False, "properties": props},
        },
    }


def test_conversion_rules():
    out = structural(
        _root(
            tree={"$ref": "K8S_DEFINITIONS#/$defs/Node", "description": "mine"},
            ios={"$ref": "K8S_DEFINITIONS#/$defs/IOS"},
            either={"type": ["integer", "string"]},
            mode={"const": "fast", "examples": ["fast"]},
            free={"type": "object"},
            anything={"description": "no type"},
            labels={"type": "object", "patternProperties": {"^a": {"type": "string"}}},
            count={"type": "integer", "exclusiveMinimum": 0},
            local={"$ref": "#/$defs/Local"},
            tags={"type": "array", "uniqueItems": True, "items": {"type": "string"}},
        )
        | {"$defs": {"Local": LOCAL}},
        DEFINITIONS,
    )
    assert set(out) == {"type", "properties"}
    assert out["properties"]["metadata"] == {"type": "object"}
    assert out["properties"]["status"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    spec = out["properties"]["spec"]["properties"]
    tree = spec["tree"]
    assert tree["description"] == "mine" and tree["type"] == "object" and tree["nullable"] is True
    assert tree["properties"]["name"] == {"type": "string", "nullable": True}
    assert tree["properties"]["children"]["items"] == {
        "x-kubernetes-preserve-unknown-fields": True, "type": "object", "nullable": True,
    }  # fmt: skip  # the recursion is cut
    assert spec["ios"] == {"x-kubernetes-int-or-string": True, "nullable": True}
    assert spec["either"] == {"x-kubernetes-int-or-string": True}
    assert spec["mode"] == {"enum": ["fast"], "x-kubernetes-preserve-unknown-fields": True}
    assert spec["free"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert spec["anything"] == {"description": "no type", "x-kubernetes-preserve-unknown-fields": True}
    assert spec["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert spec["count"] == {"type": "integer", "minimum": 0, "exclusiveMinimum": True}
    assert spec["local"] == {
        "type": "object", "properties": {"a": {"type": "string"}}, "x-kubernetes-preserve-unknown-fields": True,
    }  # fmt: skip
    assert spec["tags"]["x-kubernetes-list-type"] == "set"


@pytest.mark.parametrize(
    "prop, message",
    [
        ({"type": "string", "if": {"minLength": 1}}, "no apiextensions/v1 equivalent"),
        ({"type": ["string", "boolean"]}, "type union"),
        ({"$ref": "K8S_DEFINITIONS#/$defs/Missing"}, "unresolvable"),
        ({"$ref": "https://example.com/x.json"}, "no remote refs"),
        ({"type": "array", "items": [{"type": "string"}]}, "no tuples"),
    ],
)
def test_conversion_refuses(prop, message):
    with pytest.raises(SchemaConversionError, match=message):
        structural(_root(bad=prop), DEFINITIONS)


# ---------------------------------------------------------------------------------------
# a real API server
# ---------------------------------------------------------------------------------------


def _custom_objects(manifests: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(manifests) if d and d.get("kind") in CUSTOM_KINDS]


def _render_custom_objects() -> dict[str, dict]:
    """Every LeaderWorkerSet and DynamoGraphDeployment that examples/ and the charts' CI
    values render, keyed by where it came from."""
    from pdgen import render
    from tests.charts.helpers import ci_values, render_text, scenarios

    objects: dict[str, dict] = {}
    for item in render.render_files(sorted(glob.glob(str(ROOT / "examples" / "*.yaml")))):
        assert item.ok, item.result
        for obj in _custom_objects(item.manifests):
            objects[f"example {item.name}: {obj['kind']}/{obj['metadata']['name']}"] = obj
    with ThreadPoolExecutor(max_workers=4) as pool:
        jobs = [(chart, ci, pool.submit(render_text, chart, ci_values(chart, ci))) for chart, ci in scenarios()]
        for chart, ci, job in jobs:
            for obj in _custom_objects(job.result()):
                objects[f"{chart} {ci or 'defaults'}: {obj['kind']}/{obj['metadata']['name']}"] = obj
    kinds = {obj["kind"] for obj in objects.values()}
    assert kinds == set(CUSTOM_KINDS), f"the renders no longer give both kinds: {sorted(objects)}"
    return objects


@pytest.fixture(scope="module")
def _rendering():
    """Render (helm, in the background) while the control plane starts."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(_render_custom_objects)


@pytest.fixture(scope="module")
def rendered(_rendering) -> dict[str, dict]:
    return _rendering.result()


@pytest.fixture(scope="module")
def control_plane(cluster, _rendering):
    """The session's control plane, whose fixture installed these CRDs (conftest.py)."""
    return cluster.cp


def _collection(obj: dict, namespace: str = "default") -> str:
    group_version = obj["apiVersion"]
    resource = plural(obj["kind"])
    return f"/apis/{group_version}/namespaces/{namespace}/{resource}"


def _dry_run_create(cp: ControlPlane, obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"]["namespace"] = "default"
    return cp.api("POST", _collection(obj), obj, query=STRICT_DRY_RUN)


def test_crds_are_served_with_scale(control_plane):
    resources = {r["name"] for r in control_plane.get("/apis/leaderworkerset.x-k8s.io/v1")["resources"]}
    assert {"leaderworkersets", "leaderworkersets/status", "leaderworkersets/scale"} <= resources
    resources = {r["name"] for r in control_plane.get("/apis/nvidia.com/v1alpha1")["resources"]}
    assert {"dynamographdeployments", "dynamographdeployments/status"} <= resources


def test_rendered_objects_are_accepted(control_plane, rendered):
    refused = {}
    for where, obj in rendered.items():
        try:
            created = _dry_run_create(control_plane, obj)
        except ApiError as e:
            refused[where] = e.body[:3000]
            continue
        assert created["kind"] == obj["kind"] and created["metadata"]["name"] == obj["metadata"]["name"]
        assert created["spec"].keys() == obj["spec"].keys(), where  # nothing pruned
    assert not refused, json.dumps(refused, indent=2)


def _first(rendered: dict[str, dict], kind: str) -> dict:
    return copy.deepcopy(next(o for o in rendered.values() if o["kind"] == kind))


def _worker_container(obj):
    return obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]


def _first_service(obj):
    return next(iter(obj["spec"]["services"].values()))


def _set(path: list, value):
    def edit(obj):
        node = obj
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


BROKEN = [
    # (kind, edit, the field the message must name, HTTP status)
    pytest.param(
        "LeaderWorkerSet",
        lambda o: _worker_container(o).update(imagePullPolice="Always"),
        'unknown field "spec.leaderWorkerTemplate.workerTemplate.spec.containers[0].imagePullPolice"',
        400,
        id="lws-unknown-container-field",
    ),
    pytest.param(
        "LeaderWorkerSet",
        _set(["spec", "leaderWorkerTemplate", "size"], "two"),
        "spec.leaderWorkerTemplate.size in body must be of type integer",
        422,
        id="lws-size-not-integer",
    ),
    pytest.param(
        "LeaderWorkerSet",
        _set(["spec", "leaderWorkerTemplate", "restartPolicy"], "Sometimes"),
        'spec.leaderWorkerTemplate.restartPolicy: Unsupported value: "Sometimes"',
        422,
        id="lws-restart-policy-enum",
    ),
    pytest.param(
        "LeaderWorkerSet",
        lambda o: o["spec"]["leaderWorkerTemplate"].pop("workerTemplate"),
        "spec.leaderWorkerTemplate.workerTemplate: Required value",
        422,
        id="lws-missing-worker-template",
    ),
    pytest.param(
        "LeaderWorkerSet",
        lambda o: _worker_container(o).update(resources={"limits": {"cpu": "lots"}}),
        'spec.leaderWorkerTemplate.workerTemplate.spec.containers[0].resources.limits.cpu: Invalid value: "lots"',
        422,
        id="lws-bad-quantity",
    ),
    pytest.param(
        "LeaderWorkerSet",
        lambda o: o["spec"].update(replicaCount=2),
        'unknown field "spec.replicaCount"',
        400,
        id="lws-unknown-spec-field",
    ),
    pytest.param(
        "DynamoGraphDeployment",
        lambda o: _first_service(o).update(replica=1),
        'unknown field "spec.services.{service}.replica"',
        400,
        id="dgd-unknown-service-field",
    ),
    pytest.param(
        "DynamoGraphDeployment",
        lambda o: _first_service(o).update(replicas="one"),
        "spec.services.{service}.replicas: Invalid value",
        422,
        id="dgd-replicas-not-integer",
    ),
]


@pytest.mark.parametrize("kind, edit, field, status", BROKEN)
def test_broken_objects_are_rejected(control_plane, rendered, kind, edit, field, status):
    obj = _first(rendered, kind)
    service = next(iter(obj["spec"]["services"]), None) if kind == "DynamoGraphDeployment" else None
    edit(obj)
    with pytest.raises(ApiError) as info:
        _dry_run_create(control_plane, obj)
    assert info.value.status == status, info.value.body
    assert field.format(service=service) in json.loads(info.value.body)["message"], info.value.body


def test_scale_subresource(control_plane, rendered):
    """The HPA scales a LeaderWorkerSet through /scale: spec.replicas, status.replicas and
    status.hpaPodSelector (status is free-form, so it is kept)."""
    lws = _first(rendered, "LeaderWorkerSet")
    lws["metadata"] = {"name": "scale-test", "namespace": "default"}
    lws["spec"]["replicas"] = 1
    base = _collection(lws)
    control_plane.api("POST", base, lws, query={"fieldValidation": "Strict"})
    try:
        status = {"status": {"replicas": 1, "hpaPodSelector": "leaderworkerset.sigs.k8s.io/name=scale-test"}}
        control_plane.api("PATCH", f"{base}/scale-test/status", status, content_type="application/merge-patch+json")
        scale = control_plane.get(f"{base}/scale-test/scale")
        assert scale["kind"] == "Scale"
        assert scale["spec"]["replicas"] == 1 and scale["status"]["replicas"] == 1
        assert scale["status"]["selector"] == "leaderworkerset.sigs.k8s.io/name=scale-test"
        control_plane.api(
            "PATCH", f"{base}/scale-test/scale", {"spec": {"replicas": 3}}, content_type="application/merge-patch+json"
        )
        assert control_plane.get(f"{base}/scale-test")["spec"]["replicas"] == 3
    finally:
        control_plane.api("DELETE", f"{base}/scale-test")
