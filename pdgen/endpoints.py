"""External infra endpoints: parsed once, here, into scheme, host and port; every consumer
then writes its own form (ETCD_ENDPOINTS=http://h:p, NATS_SERVER=nats://h:p,
metadata_server etcd://h:p, -etcd_address=h:p, master_server_address h:p)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# service -> (default scheme, accepted schemes, default port). etcd clients speak http(s);
# NATS clients nats:// or tls://; a Mooncake master has no scheme (a bare RPC address).
SERVICES = {
    "etcd": ("http", ("http", "https"), 2379),
    "nats": ("nats", ("nats", "tls"), 4222),
    "mooncakeMaster": ("", ("",), 50051),
}
_FORM = re.compile(r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*"
                   r"[A-Za-z0-9])?)(?::(?P<port>[0-9]{1,5}))?/?$")


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class EndpointError(ValueError):
    pass


def parse(text: str, service: str) -> Endpoint:
    """"host", "host:port" or "scheme://host[:port][/]" for ``service``."""
    default_scheme, schemes, default_port = SERVICES[service]
    m = _FORM.match(text.strip())
    if not m:
        raise EndpointError(f"{text!r} is not host:port or scheme://host:port")
    scheme = m.group("scheme") or default_scheme
    if scheme not in schemes:
        accepted = " or ".join(f"{s}://" for s in schemes if s) or "no scheme (host:port)"
        raise EndpointError(f"{service} is reached with {accepted}, not {scheme}://")
    port = int(m.group("port") or default_port)
    if not 1 <= port <= 65535:
        raise EndpointError(f"port {port} is outside 1-65535")
    return Endpoint(scheme, m.group("host"), port)


@dataclass(frozen=True)
class ObjectStore:
    url: str          # what aws s3 --endpoint-url gets
    region: str       # AWS_DEFAULT_REGION ("" when the endpoint does not say)
    addressing: str   # s3.addressing_style: virtual or auto


# oss-<region>[-internal].aliyuncs.com or s3.oss-<region>[-internal].aliyuncs.com
_OSS = re.compile(r"^(?:s3\.)?oss-(?P<region>[a-z0-9-]+?)(?P<internal>-internal)?\.aliyuncs\.com$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")


def object_store(kind: str, text: str) -> ObjectStore:
    """The endpoint of an s3 or oss download as aws s3 needs it. botocore rejects an endpoint
    without a scheme ("Invalid endpoint"), so https:// is added. OSS's S3-compatible API lives
    on s3.oss-<region>[-internal].aliyuncs.com, takes virtual-hosted-style requests only and
    signs with the region id (help.aliyun.com, "Accessing OSS with the AWS SDK")."""
    raw = text.strip().rstrip("/")
    scheme, _, rest = raw.rpartition("://")
    if scheme and scheme not in ("http", "https"):
        raise EndpointError(f"an object-store endpoint is http:// or https://, not {scheme}://")
    if not _HOST.match(rest):
        raise EndpointError(f"{text!r} is not a host name or http(s)://host URL")
    scheme = scheme or "https"
    host = rest.split(":", 1)[0]
    m = _OSS.match(host)
    if kind == "oss":
        if not m:
            raise EndpointError(f"{host} is not an OSS endpoint (oss-<region>[-internal].aliyuncs.com)")
        region, internal = m.group("region"), m.group("internal") or ""
        return ObjectStore(f"{scheme}://s3.oss-{region}{internal}.aliyuncs.com", region, "virtual")
    return ObjectStore(f"{scheme}://{rest}", "", "auto")
