"""Locating the external tools: $HELM / $KUBECONFORM, then the project's .tools/bin
(installed by `make setup`), then PATH. A missing tool is one line naming the fix."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

from pdgen.errors import PdgenError, ToolNotFoundError

# The Kubernetes version lint and render check against unless told otherwise.
DEFAULT_KUBE_VERSION = "1.33.0"
# The offline schemas for DEFAULT_KUBE_VERSION, shipped in the package (scripts/bundle_schemas.py),
# for an installed pdgen without a checkout's .tools/.
BUNDLED_SCHEMAS = "offline-schemas.tar.xz"
# In the archive, every $ref's file:// URL starts with this in place of the directory it was
# built in; unpacking writes the directory it unpacks to (scripts/bundle_schemas.py).
SCHEMA_ROOT_TOKEN = "file://@PDGEN_SCHEMA_ROOT@/"

# name -> (environment variable, what `make setup` installs)
TOOLS = {
    "helm": ("HELM", "Helm (3 or 4)"),
    "helm3": ("HELM3", "Helm 3"),
    "helm4": ("HELM4", "Helm 4"),
    "kubeconform": ("KUBECONFORM", "kubeconform"),
}


def tools_dir() -> pathlib.Path:
    """$PDGEN_TOOLS_DIR, else the checkout's .tools (next to the package), else ./.tools."""
    if os.environ.get("PDGEN_TOOLS_DIR"):
        return pathlib.Path(os.environ["PDGEN_TOOLS_DIR"])
    checkout = pathlib.Path(__file__).resolve().parent.parent / ".tools"
    return checkout if checkout.is_dir() else pathlib.Path.cwd() / ".tools"


def find(name: str) -> str:
    env_var, what = TOOLS[name]
    explicit = os.environ.get(env_var)
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise ToolNotFoundError(f"${env_var} is set to {explicit}, which is not an executable file "
                                f"(unset it, or point it at {what})")
    local = tools_dir() / "bin" / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise ToolNotFoundError(f"Executable `{name}` not found (set ${env_var}, or run `make setup` to "
                            f"install {what} into .tools/bin)")


def cache_dir() -> pathlib.Path:
    """pdgen's cache (the compiled schema check, the unpacked offline schemas, pulled charts):
    $PDGEN_CACHE_DIR, else $XDG_CACHE_HOME/pdgen, else ~/.cache/pdgen. Not created here."""
    if os.environ.get("PDGEN_CACHE_DIR"):
        return pathlib.Path(os.environ["PDGEN_CACHE_DIR"])
    return pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "pdgen"


def _bundled_schemas() -> pathlib.Path | None:
    """The package's offline schemas, unpacked once into the user's cache
    (cache_dir()) under the archive's hash; None without one."""
    archive = pathlib.Path(__file__).resolve().parent / "data" / BUNDLED_SCHEMAS
    if not archive.is_file():
        return None
    import hashlib
    import tarfile
    import tempfile

    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    cache = cache_dir()
    target = cache / f"schemas-{digest}"
    if target.is_dir():
        return target
    try:
        cache.mkdir(parents=True, exist_ok=True)
        staging = pathlib.Path(tempfile.mkdtemp(dir=cache, prefix=".schemas-"))
        # kubeconform needs absolute $ref URLs: they name ``target``, where this lands.
        root = f"file://{target.resolve()}/".encode()
        with tarfile.open(archive, "r:xz") as tar:
            for member in tar.getmembers():
                name = pathlib.PurePosixPath(member.name)
                if not member.isfile() or name.is_absolute() or ".." in name.parts:
                    continue  # pdgen's own archive has only plain relative files
                fh = tar.extractfile(member)
                if fh is None:
                    continue
                data = fh.read().replace(SCHEMA_ROOT_TOKEN.encode(), root)
                path = staging.joinpath(*name.parts)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        try:
            os.rename(staging, target)
        except OSError:  # another pdgen unpacked it first
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise PdgenError(f"cannot unpack pdgen's offline schemas into {cache}: {exc} "
                         "(set PDGEN_CACHE_DIR to a writable directory)") from None
    return target


def _schema_root(sub: str) -> pathlib.Path:
    """.tools/<sub> where `make setup` built it, else the schemas shipped with pdgen."""
    local = tools_dir() / sub
    if local.is_dir():
        return local
    bundled = _bundled_schemas()
    if bundled is not None and (bundled / sub).is_dir():
        return bundled / sub
    raise PdgenError(f"offline schemas not found in {local} (run `make setup` in a checkout, or set "
                     "$PDGEN_TOOLS_DIR to a directory that has kubernetes-json-schema/ and crd-schemas/)")


def kubernetes_schema_location() -> str:
    """kubeconform -schema-location template for the offline Kubernetes schemas."""
    root = _schema_root("kubernetes-json-schema")
    return f"{root}/{{{{ .NormalizedKubernetesVersion }}}}-local{{{{ .StrictSuffix }}}}/" \
           "{{ .ResourceKind }}{{ .KindSuffix }}.json"


def crd_schema_location() -> str:
    """kubeconform -schema-location template for the project's custom-resource schemas,
    resolved per Kubernetes version by scripts/build_crd_schemas.py."""
    root = _schema_root("crd-schemas")
    return f"{root}/{{{{ .NormalizedKubernetesVersion }}}}/{{{{ .Group }}}}/" \
           "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}{{ .StrictSuffix }}.json"


def kubernetes_schema_versions() -> list[str]:
    try:
        root = _schema_root("kubernetes-json-schema")
    except PdgenError:
        return []
    return sorted(p.name.removeprefix("v").removesuffix("-local")
                  for p in root.glob("v*-local") if p.is_dir())


def require_schemas(kube_version: str) -> None:
    """A one-line error, before kubeconform runs, when there are no schemas for the version."""
    versions = kubernetes_schema_versions()
    if kube_version.removeprefix("v") not in versions:
        raise PdgenError(f"no offline Kubernetes schemas for {kube_version} (found: {', '.join(versions) or 'none'}; "
                         "an installed pdgen ships " + DEFAULT_KUBE_VERSION + "; `make setup` in a checkout "
                         "installs the versions pinned in pins/versions.env)")


def describe(version: str) -> list[str]:
    """What `pdgen --version` says: pdgen's version, the chart version (and engine release)
    each backend renders, and the external tools found, each with where it is."""
    from pdgen import charts
    from pdgen.backends import BACKENDS

    out = [f"pdgen {version}"]
    for name in sorted(BACKENDS):
        chart = BACKENDS[name].chart
        try:
            meta = charts.chart_meta(chart)
            out.append(f"  chart {chart} {meta['version']} (engine {meta.get('appVersion', '?')})")
        except (PdgenError, OSError) as exc:
            out.append(f"  chart {chart}: {exc}")
    for name in TOOLS:
        try:
            path = find(name)
            label = helm_version(path) if name.startswith("helm") else ""
        except PdgenError as exc:
            out.append(f"  {name}: missing ({exc})")
            continue
        out.append("  " + " ".join(part for part in (name, label, path) if part))
    return out


def report() -> tuple[list[str], bool]:
    """What `pdgen tools` says: each tool's path and version (or why it is missing) and the
    offline Kubernetes schema versions; and whether all of them were found."""
    lines, found = [], True
    for name in TOOLS:
        try:
            path = find(name)
        except PdgenError as exc:
            lines.append(f"{name:<12} missing: {exc}")
            found = False
            continue
        version = helm_version(path) if name.startswith("helm") else ""
        lines.append(f"{name:<12} {path} {version}".rstrip())
    versions = kubernetes_schema_versions()
    lines.append(f"{'k8s schemas':<12} {', '.join(versions) if versions else 'missing (run `make setup`)'}")
    return lines, found and bool(versions)


def helm_version(path: str) -> str:
    proc = subprocess.run([path, "version", "--template", "{{.Version}}"], capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0:
        raise PdgenError(f"`{path} version` failed with exit code {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout.strip()
