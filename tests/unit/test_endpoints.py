"""External infra endpoints in every accepted form reach each consumer in its own form
(operator issue, defect 4: a URL rendered as http://http://..., nats://nats://...,
mooncakestore://http:50051/, and mc.infra.svc:60051 lost its port)."""

from __future__ import annotations

import pytest
import yaml

from pdgen import endpoints
from tests.charts.helpers import container, find, render

FORMS = {
    "etcd": [("etcd.infra.svc", "http://etcd.infra.svc:2379"), ("etcd.infra.svc:32379", "http://etcd.infra.svc:32379"),
             ("http://etcd.infra.svc:32379", "http://etcd.infra.svc:32379"),
             ("https://etcd.infra.svc:2379/", "https://etcd.infra.svc:2379"),
             ("10.0.0.5:2379", "http://10.0.0.5:2379")],
    "nats": [("nats.infra", "nats://nats.infra:4222"), ("nats.infra:14222", "nats://nats.infra:14222"),
             ("nats://nats.infra:14222", "nats://nats.infra:14222"),
             ("tls://nats.infra:4443", "tls://nats.infra:4443")],
    "mooncakeMaster": [("mc.infra.svc", "mc.infra.svc:50051"), ("mc.infra.svc:60051", "mc.infra.svc:60051"),
                       ("[fd00::1]:60051", "[fd00::1]:60051")],
}


@pytest.mark.parametrize("service,raw,want", [(s, r, w) for s, forms in FORMS.items() for r, w in forms])
def test_parse_accepts_every_documented_form(service, raw, want):
    e = endpoints.parse(raw, service)
    assert (f"{e.scheme}://{e.address}" if e.scheme else e.address) == want


@pytest.mark.parametrize("service,raw,message", [
    ("etcd", "nats://etcd:2379", "etcd is reached with http:// or https://, not nats://"),
    ("nats", "http://nats:4222", "not http://"),
    ("mooncakeMaster", "http://mc:50051", "no scheme (host:port)"),
    ("etcd", "etcd:2379/v3", "is not host:port"),
    ("etcd", "etcd:99999", "outside 1-65535"),
    ("etcd", "", "is not host:port"),
])
def test_parse_rejects_what_no_client_can_use(service, raw, message):
    with pytest.raises(endpoints.EndpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        endpoints.parse(raw, service)


@pytest.mark.parametrize("raw,want", FORMS["etcd"])
def test_dynamo_etcd_endpoints_in_every_form(raw, want):
    values = {"infra": {"etcd": {"enabled": False, "endpoint": raw}}}
    env = {e["name"]: e.get("value") for e in container(find(render("dynamo", values), "Deployment",
                                                                "demo-frontend"))["env"]}
    assert env["ETCD_ENDPOINTS"] == want


@pytest.mark.parametrize("raw,want", FORMS["nats"])
def test_dynamo_nats_server_in_every_form(raw, want):
    values = {"infra": {"nats": {"enabled": False, "endpoint": raw}}}
    env = {e["name"]: e.get("value") for e in container(find(render("dynamo", values), "Deployment",
                                                                "demo-frontend"))["env"]}
    assert env["NATS_SERVER"] == want


@pytest.mark.parametrize("raw,want", FORMS["mooncakeMaster"])
def test_lmcache_master_address_in_every_form(raw, want):
    values = {"variant": {"connector": "lmcache"}, "infra": {"mooncakeMaster": {"endpoint": raw}}}
    lm = yaml.safe_load(find(render("vllm-mooncake", values), "ConfigMap", "demo-kv-config")["data"]["lmcache.yaml"])
    assert lm["remote_url"] == f"mooncakestore://{want}/"
    assert lm["extra_config"]["master_server_address"] == want
    assert lm["extra_config"]["metadata_server"] == f"http://{want.rsplit(':', 1)[0]}:8080/metadata"


@pytest.mark.parametrize("raw,want", FORMS["etcd"])
def test_datasystem_and_v0_etcd_addresses_in_every_form(raw, want):
    address = want.split("://", 1)[1]
    values = {"infra": {"etcd": {"enabled": False, "endpoint": raw}}}
    ds = container(find(render("ascend-yuanrong", values), "DaemonSet", "demo-datasystem"))
    assert f"-etcd_address={address}" in ds["args"]
    v0 = {"variant": {"connector": "v0-etcd"}, "image": {"repository": "my/vllm", "tag": "v0.6.2"},
          "infra": {"etcd": {"endpoint": raw}, "mooncakeMaster": {"enabled": True}}}
    import json
    config = json.loads(find(render("vllm-mooncake", v0), "ConfigMap", "demo-kv-config")["data"]["mooncake.json"])
    assert config["metadata_server"] == f"etcd://{address}"


@pytest.mark.parametrize("raw,url,region", [
    ("oss-cn-beijing-internal.aliyuncs.com", "https://s3.oss-cn-beijing-internal.aliyuncs.com", "cn-beijing"),
    ("https://oss-cn-hangzhou.aliyuncs.com/", "https://s3.oss-cn-hangzhou.aliyuncs.com", "cn-hangzhou"),
    ("s3.oss-ap-southeast-1.aliyuncs.com", "https://s3.oss-ap-southeast-1.aliyuncs.com", "ap-southeast-1"),
])
def test_an_oss_endpoint_becomes_the_s3_compatible_one_with_its_region(raw, url, region):
    """Operator issue, defect 5: botocore refuses an endpoint without a scheme ("Invalid
    endpoint"); OSS's S3 API is s3.oss-<region>[-internal].aliyuncs.com, virtual-hosted style."""
    store = endpoints.object_store("oss", raw)
    assert (store.url, store.region, store.addressing) == (url, region, "virtual")


def test_an_s3_endpoint_gets_a_scheme_and_a_bad_one_is_refused():
    assert endpoints.object_store("s3", "minio.storage:9000").url == "https://minio.storage:9000"
    assert endpoints.object_store("s3", "http://minio.storage:9000").url == "http://minio.storage:9000"
    with pytest.raises(endpoints.EndpointError, match="not an OSS endpoint"):
        endpoints.object_store("oss", "minio.storage")
    with pytest.raises(endpoints.EndpointError, match="http:// or https://"):
        endpoints.object_store("s3", "ftp://x")


def test_the_compiled_values_carry_the_normalised_endpoint(tmp_path):
    from pdgen.validate import check_file
    from tests.conftest import FIXTURES
    result = check_file(str(FIXTURES / "rules" / "model-source" / "pass.yaml"))
    d = result.values["model"]["source"]["download"]
    assert (d["endpoint"], d["region"], d["addressingStyle"]) == (
        "https://s3.oss-cn-beijing-internal.aliyuncs.com", "cn-beijing", "virtual")
