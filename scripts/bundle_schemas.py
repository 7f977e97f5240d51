"""Write pdgen/data/offline-schemas.tar.xz: the offline schemas `pdgen lint` gives kubeconform,
for pdgen's default Kubernetes version, so an installed pdgen (a wheel, no checkout and no
.tools/) lints without a network. Read from what `make setup` built:

  .tools/kubernetes-json-schema/v<version>-local[-strict]/   (scripts/install-tools.sh, from the
                                                             pinned kubernetes-validate wheel)
  .tools/crd-schemas/v<version>/                             (scripts/build_crd_schemas.py)

The schemas' $refs are absolute file URLs (kubeconform compiles a local schema's refs only
then; scripts/install-tools.sh), naming this checkout's .tools/. In the archive that prefix is
the placeholder pdgen.tools.SCHEMA_ROOT_TOKEN, which pdgen.tools puts the unpacked directory in
place of: the archive is the same from any checkout, and works on any machine.

The archive is deterministic (sorted names, mtime 0, uid/gid 0, one xz preset), so `make verify`
catches drift. pdgen.tools unpacks it once into the user's cache (about 10 MB unpacked,
200 KB packed)."""

from __future__ import annotations

import io
import lzma
import pathlib
import sys
import tarfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pdgen.tools import BUNDLED_SCHEMAS, DEFAULT_KUBE_VERSION, SCHEMA_ROOT_TOKEN, tools_dir  # noqa: E402


def members(tools: pathlib.Path, version: str) -> list[tuple[str, pathlib.Path]]:
    dirs = [f"kubernetes-json-schema/v{version}-local", f"kubernetes-json-schema/v{version}-local-strict",
            f"crd-schemas/v{version}"]
    out = []
    for d in dirs:
        base = tools / d
        if not base.is_dir():
            sys.exit(f"bundle_schemas: {base} is missing (run `make setup`)")
        out += [(p.relative_to(tools).as_posix(), p) for p in base.rglob("*") if p.is_file()]
    return sorted(out)


def main() -> None:
    buf = io.BytesIO()
    root = f"file://{tools_dir().resolve()}/".encode()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in members(tools_dir(), DEFAULT_KUBE_VERSION):
            data = path.read_bytes().replace(root, SCHEMA_ROOT_TOKEN.encode())
            if data.count(b'"file://') != data.count(b'"' + SCHEMA_ROOT_TOKEN.encode()):
                sys.exit(f"bundle_schemas: {path} has a file:// $ref outside {root.decode()}")
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    packed = lzma.compress(buf.getvalue(), format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)
    target = ROOT / "pdgen" / "data" / BUNDLED_SCHEMAS
    if not target.exists() or target.read_bytes() != packed:
        target.write_bytes(packed)


if __name__ == "__main__":
    main()
