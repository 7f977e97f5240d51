"""The offline schemas an installed pdgen carries (pdgen/data/offline-schemas.tar.xz): the
archive names no directory of the machine that built it, and once unpacked every $ref is an
absolute file URL (kubeconform compiles local refs only then) to a file that is there."""

from __future__ import annotations

import lzma
import pathlib
import re
import tarfile
from urllib.parse import urlparse

from pdgen import tools
from tests.conftest import ROOT

ARCHIVE = ROOT / "pdgen" / "data" / tools.BUNDLED_SCHEMAS


def test_the_archive_names_no_directory_of_the_build_machine():
    data = lzma.decompress(ARCHIVE.read_bytes())
    assert str(ROOT).encode() not in data
    assert b'"file://' in data and data.count(b'"file://') == data.count(b'"' + tools.SCHEMA_ROOT_TOKEN.encode())


def test_unpacked_refs_point_at_the_unpacked_files(tmp_path, monkeypatch):
    monkeypatch.setenv("PDGEN_CACHE_DIR", str(tmp_path / "cache"))
    root = tools._bundled_schemas()
    assert root is not None and root.is_dir() and root.parent == tmp_path / "cache"
    with tarfile.open(ARCHIVE, "r:xz") as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == names
    refs = set()
    for path in root.rglob("*.json"):
        refs.update(re.findall(r'"\$ref": "(file://[^"#]+)', path.read_text()))
    assert refs
    for ref in refs:
        target = pathlib.Path(urlparse(ref).path)
        assert target.is_file() and root in target.parents, ref
