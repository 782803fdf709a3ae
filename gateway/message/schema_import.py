"""``tiss-gateway schemas import``: install an official ANS schema set from a zip or a folder."""

import json
import re
import shutil
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import schemas as shipped
from gateway.message.schema_registry import (
    IMPORT_RECORD,
    SchemaSet,
    SchemaSetError,
    compile_offline,
    sha256_file,
)
from gateway.message.services import MENSAGEM_TISS

_ROOT_NAME = re.compile(r"^tissV(\d)_(\d\d)_(\d\d)\.xsd$")
MAX_ZIP_MEMBER = 20 * 1024 * 1024
KEPT_SUFFIXES = (".xsd", ".wsdl")


def import_schema_set(source: Path, home: Path, *, force: bool = False,
                      valid_from: str | None = None) -> SchemaSet:
    """Copy the set into ``home/schemas/<version>``, check it compiles offline, record SHA-256s.

    A version listed in the ANS manifest must match its official hashes unless ``force``.
    """
    with tempfile.TemporaryDirectory(prefix="tiss-schemas-") as tmp:
        staging = Path(tmp)
        _collect(source, staging)
        version = _version_of(staging)
        official = shipped.manifest()["versions"].get(version)
        hashes = {p.name: sha256_file(p) for p in sorted(staging.iterdir())}
        if official:
            _check_official(version, official["files"], hashes, force)
        schema_set = SchemaSet(
            version, staging, f"importado de {source.resolve()}",
            valid_from or (official or {}).get("valid_from"),
            {n: h for n, h in hashes.items() if n.endswith(".xsd")},
            official=bool(official) and _matches(official["files"], hashes))
        for kind in (MENSAGEM_TISS, "loteGuiasWS"):
            compile_offline(staging, schema_set.root_file(kind))
        target = home / "schemas" / version
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(staging, target)
        schema_set.directory = target
        record = {
            "version": version, "origin": schema_set.origin, "valid_from": schema_set.valid_from,
            "official": schema_set.official, "files": schema_set.expected,
            "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (target / IMPORT_RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False),
                                            encoding="utf-8")
        return schema_set


def _collect(source: Path, staging: Path) -> None:
    if source.is_dir():
        for path in source.rglob("*"):
            if path.is_file() and path.suffix.lower() in KEPT_SUFFIXES:
                shutil.copyfile(path, staging / path.name)
    elif zipfile.is_zipfile(source):
        _extract_zip(source, staging)
    else:
        raise SchemaSetError(f"{source}: não é uma pasta nem um arquivo zip")


def _extract_zip(source: Path, staging: Path) -> None:
    # Only the base name of each member is used, so no member can escape the staging folder.
    with zipfile.ZipFile(source) as archive:
        for info in archive.infolist():
            name = Path(info.filename).name
            if info.is_dir() or not name.lower().endswith(KEPT_SUFFIXES):
                continue
            if info.file_size > MAX_ZIP_MEMBER:
                raise SchemaSetError(f"{info.filename}: maior que {MAX_ZIP_MEMBER} bytes")
            with archive.open(info) as member, open(staging / name, "wb") as out:
                shutil.copyfileobj(member, out)


def _version_of(staging: Path) -> str:
    versions = {m.groups() for p in staging.iterdir() if (m := _ROOT_NAME.match(p.name))}
    if len(versions) != 1:
        raise SchemaSetError("o conjunto deve conter exatamente um tissVX_YY_ZZ.xsd "
                             f"(encontrados: {len(versions)})")
    major, minor, patch = versions.pop()
    version = f"{major}.{minor}.{patch}"
    tag = version.replace(".", "_")
    missing = [n for n in (f"tissV{tag}.xsd", f"tissWebServicesV{tag}.xsd")
               if not (staging / n).is_file()]
    if missing:
        raise SchemaSetError(f"faltam arquivos do conjunto {version}: {', '.join(missing)}")
    return version


def _matches(expected: dict[str, str], hashes: dict[str, str]) -> bool:
    return all(hashes.get(name) == digest for name, digest in expected.items())


def _check_official(version: str, expected: dict[str, str], hashes: dict[str, str],
                    force: bool) -> None:
    wrong = [n for n, h in expected.items() if hashes.get(n) != h]
    if wrong and not force:
        raise SchemaSetError(
            f"o conjunto {version} difere do oficial da ANS em: {', '.join(sorted(wrong))} "
            "(use --force para importar mesmo assim)")
