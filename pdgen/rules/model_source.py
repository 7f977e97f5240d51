"""model-source: a download names what it downloads the way its source spells it, and an
object-store endpoint is one aws s3 can use.

- oss:// and s3:// URIs for oss and s3; org/name repository ids for hf and modelscope.
- oss needs its regional endpoint; pdgen turns oss-<region>[-internal].aliyuncs.com into
  OSS's S3-compatible endpoint with https:// and the region (pdgen/endpoints.py).
- revision applies to hf and modelscope only.
- a Hugging Face download of a gated family (meta-llama/*, google/gemma*, mistralai/Mistral-Large*,
  ...) without credentialsSecret is a warning: the download Job would get HTTP 401.

PASS::

    source: {download: {from: oss, uri: oss://models/qwen7b, endpoint: oss-cn-beijing-internal.aliyuncs.com,
                        storage: {size: 40Gi}}}

FAIL::

    source: {download: {from: oss, uri: s3://models/qwen7b, storage: {size: 40Gi}}}
    # -> an oss download reads oss://bucket/prefix, and it needs the bucket's regional endpoint

Source: Hugging Face model cards of the gated families ("You need to agree to share your contact
information to access this model"); huggingface_hub reads HF_TOKEN, which the download Job gets
from credentialsSecret (envFrom). botocore rejects an endpoint URL without a scheme ("Invalid endpoint"); Alibaba Cloud
OSS docs, "Accessing OSS with the AWS SDK" (endpoint https://s3.oss-{region}.aliyuncs.com,
virtual-hosted style).
"""

from __future__ import annotations

import re

from pdgen import endpoints
from pdgen.findings import Level

ID = "model-source"
LEVEL = Level.ERROR
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# Hugging Face repositories that need an accepted licence and a token (by org/name prefix).
GATED = ("meta-llama/", "google/gemma", "mistralai/Mistral-Large", "mistralai/Codestral", "mistralai/Ministral",
         "mistralai/Mixtral-8x22B-Instruct", "CohereForAI/", "CohereLabs/", "tiiuae/falcon-180B")


def check(ctx):
    d = ctx.spec["model"]["source"].get("download")
    if not d:
        return
    path = ("spec", "model", "source", "download")
    kind, uri = d["from"], d["uri"]
    if kind in ("oss", "s3"):
        if not uri.startswith(f"{kind}://") or len(uri) <= len(kind) + 3:
            yield path + ("uri",), f"an {kind} download reads {kind}://bucket/prefix, not {uri!r}"
        if kind == "oss" and "endpoint" not in d:
            yield path + ("from",), ("an oss download needs the bucket's regional endpoint, e.g. "
                                     "endpoint: oss-cn-beijing-internal.aliyuncs.com")
        if "endpoint" in d:
            try:
                endpoints.object_store(kind, d["endpoint"])
            except endpoints.EndpointError as exc:
                yield path + ("endpoint",), str(exc)
        if "revision" in d:
            yield path + ("revision",), f"revision applies to hf and modelscope, not {kind}", Level.WARNING
    else:
        if not _REPO.match(uri):
            yield path + ("uri",), f"a {kind} download names a repository as org/name, not {uri!r}"
        if "endpoint" in d:
            yield path + ("endpoint",), f"endpoint applies to oss and s3, not {kind}", Level.WARNING
        if kind == "hf" and uri.startswith(GATED) and "credentialsSecret" not in d:
            yield path + ("uri",), (f"{uri} is gated on Hugging Face: without a token the download Job gets HTTP 401; "
                                    "set credentialsSecret to a Secret with HF_TOKEN (after accepting the model's "
                                    "licence on its page)"), Level.WARNING
