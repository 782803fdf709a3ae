"""Installing and building the client stacks of tests/process/test_interop.py.

Debian packages are installed with apt-get when a tool is missing (as root, else ``sudo -n``), as
tests/browser.py does for Chromium; :class:`StackUnavailable` says why one cannot be (the test
skips with that reason). Java: ``wsimport`` on the served WSDLs and ``javac`` of its output with
TissClient.java take ~20 s per version, so the classes are kept in a temporary folder keyed by the
WSDLs (their address left out) and the client's source: once per machine and version.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.debian import PackagesUnavailable, apt_install

HERE = Path(__file__).resolve().parent
PHP_CLIENT = HERE / "php_client.php"
JAVA_CLIENT = HERE / "TissClient.java"
JAXWS_RUNTIME = Path("/usr/share/java/jaxws-rt.jar")  # its manifest's Class-Path names the rest
JAVA_CACHE = Path(tempfile.gettempdir()) / "tiss-interop-java"
# Java packages of the two generated services (binding files), so TissClient.java names no version.
JAVA_SERVICES = {"tissLoteGuias": "tiss.lote", "tissSolicitacaoStatusProtocolo": "tiss.status"}


_APT = threading.Lock()  # the Java build installs from a thread while PHP's test may: one apt at a time


class StackUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Tool:
    """A tool the tests run and the Debian packages that provide it."""

    name: str
    check: tuple[str, ...]  # a command that exits 0 when the tool works
    packages: tuple[str, ...]


PHP = Tool("PHP SoapClient", ("php", "-r", "exit(class_exists('SoapClient') ? 0 : 1);"),
           ("php-cli", "php-soap"))
JAVA = Tool("JAX-WS", ("sh", "-c", f"command -v wsimport && command -v javac && test -f {JAXWS_RUNTIME}"),
            ("default-jdk-headless", "jaxws"))


def _works(tool: Tool) -> bool:
    try:
        return subprocess.run(tool.check, capture_output=True, timeout=60, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure(tool: Tool) -> None:
    """``tool`` works, installed with apt-get first if it did not."""
    with _APT:
        if not _works(tool):
            _install(tool)


def _install(tool: Tool) -> None:
    try:
        apt_install(tool.packages)
    except PackagesUnavailable as exc:
        raise StackUnavailable(f"{tool.name}: {exc}") from exc
    if not _works(tool):
        raise StackUnavailable(f"{tool.name}: {' '.join(tool.packages)} instalados, mas "
                               f"{' '.join(tool.check)} falha")


# --- Java -----------------------------------------------------------------------------------------


def java_classes(base_url: str, version_path: str) -> Path:
    """The compiled JAX-WS client of one version (wsimport classes + TissClient), built once."""
    ensure(JAVA)
    wsdls = {name: f"{base_url}/tiss/{version_path}/{name}?wsdl" for name in JAVA_SERVICES}
    key = hashlib.sha256(JAVA_CLIENT.read_bytes())
    for url in wsdls.values():
        served = requests.get(url, timeout=30)
        served.raise_for_status()
        key.update(served.content.replace(base_url.encode(), b"http://gateway"))
    target = JAVA_CACHE / f"{version_path}-{key.hexdigest()[:16]}"
    if (target / "TissClient.class").is_file():
        return target
    JAVA_CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=JAVA_CACHE))
    try:
        _build(work, wsdls)
        try:
            (work / "classes").rename(target)
        except OSError:  # another session built it meanwhile
            if not (target / "TissClient.class").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _build(work: Path, wsdls: dict[str, str]) -> None:
    sources, classes = work / "src", work / "classes"
    sources.mkdir()
    classes.mkdir()
    for name, url in wsdls.items():
        binding = work / f"{name}.xjb"
        binding.write_text(f'<bindings xmlns="http://java.sun.com/xml/ns/jaxws" wsdlLocation="{url}">'
                           f'<package name="{JAVA_SERVICES[name]}"/></bindings>', encoding="utf-8")
        _run(["wsimport", "-Xnocompile", "-quiet", "-s", str(sources), "-d", str(classes), "-b", str(binding),
              url], "wsimport")
    files = [str(p) for p in sources.rglob("*.java")] + [str(JAVA_CLIENT)]
    _run(["javac", "-nowarn", "-encoding", "UTF-8", "-cp", str(JAXWS_RUNTIME), "-d", str(classes), *files],
         "javac")


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} terminou com {done.returncode}:\n{(done.stdout + done.stderr)[-4000:]}")


def run_java(classes: Path, plan: dict[str, str], work: Path) -> dict[str, str]:
    """Run TissClient with ``plan`` (a properties file); its ``key=value`` lines."""
    path = work / "plan.properties"
    path.write_text("".join(f"{k}={_escape(v)}\n" for k, v in plan.items()), encoding="utf-8")
    done = subprocess.run(["java", "-cp", f"{classes}{os.pathsep}{JAXWS_RUNTIME}", "TissClient", str(path)],
                          capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        raise AssertionError(f"TissClient terminou com {done.returncode}:\n{done.stdout}\n"
                             f"{done.stderr[-6000:]}")
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def _escape(value: str) -> str:
    return re.sub(r"[\\:=#!]", lambda m: "\\" + m.group(0), value)


# --- PHP ------------------------------------------------------------------------------------------


def run_php(plan_path: Path) -> str:
    ensure(PHP)
    done = subprocess.run(["php", str(PHP_CLIENT), str(plan_path)], capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise AssertionError(f"php terminou com {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}")
    return done.stdout
