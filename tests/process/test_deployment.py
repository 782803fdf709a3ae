"""docker/, gunicorn.conf.py and gateway.deploy_settings, checked without Docker (none runs here).

1. ``docker/compose.yaml`` is read as ``docker compose config`` would and checked against the
   rest of the repository: keys, builds, dependencies, ports, volumes, the commands (parsed with
   the real ``tiss-gateway`` parser), the environment (variables the code reads), the mounted
   config (loaded by gateway.config) and its operators' endpoints (the simulators' ports).
2. ``docker/Dockerfile`` is parsed (stages, COPY sources, non-root user, healthcheck, entrypoint),
   then its steps are RUN for real: the builder stage's commands in a clean ``python3.11`` venv
   (a wheel of the project, installed with its dependencies from the package index), the runtime
   stage's files and environment, and the compose services started from that install with the
   image's entrypoint and commands (SQLite, or PostgreSQL when TISS_GATEWAY_TEST_PG_DSN is set):
   the image's HEALTHCHECK passes, the WSDL is served, a lote is accepted and the worker
   delivers it to the simulated operator. The install is done once (marked ``slow``).
3. ``gunicorn.conf.py`` resolves (gunicorn ``--print-config``) to what deploy_settings gives
   ``tiss-gateway serve``.
4. ``docker/nginx.conf``, the only published port of the compose file: its limits against the
   gateway's, then the file itself run by a real nginx (installed with apt-get when missing) in
   front of a real gateway: lotes and WSDLs go through, an oversized body stops at nginx.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy.engine import make_url

from gateway import deploy_settings
from gateway.cli import build_parser
from gateway.config import CONFIG_ENV, DATABASE_URL_ENV, Config, Operadora, load_config
from gateway.security import vault
from simulator.profile import PROFILE_KEYS, load_all
from tests.db_fixtures import BACKENDS
from tests.debian import PackagesUnavailable, apt_install
from tests.gateway_process import free_port, free_port_block

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
NGINX_CONF = DOCKER / "nginx.conf"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
EXAMPLE_LOTE = REPO / "gateway" / "examples" / "lote-sp-sadt-4.03.00.xml"

# Every environment variable the image's programs read (a misspelt one in compose would be ignored).
KNOWN_ENV = {CONFIG_ENV, DATABASE_URL_ENV, "TISS_GATEWAY_HOME", "TISS_GATEWAY_MIGRATE", vault.KEY_ENV,
             deploy_settings.BIND_ENV, deploy_settings.WORKERS_ENV, deploy_settings.MAX_REQUESTS_ENV,
             deploy_settings.THREADS_ENV, deploy_settings.HEADER_TIMEOUT_ENV,
             deploy_settings.BODY_TIMEOUT_ENV, deploy_settings.BODY_MIN_RATE_ENV,
             deploy_settings.BODY_MAX_TIMEOUT_ENV,
             deploy_settings.CERTFILE_ENV, deploy_settings.KEYFILE_ENV, deploy_settings.CA_CERTS_ENV,
             deploy_settings.REQUIRE_CLIENT_CERT_ENV, deploy_settings.FORWARDED_ALLOW_IPS_ENV}


# --- reading the Dockerfile -------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    flags: dict[str, str]

    def exec_form(self) -> list[str] | None:
        return json.loads(self.args) if self.args.startswith("[") else None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for pair in shlex.split(instruction.args):
                key, _sep, value = pair.partition("=")
                values[key] = value
        return values


def read_dockerfile(path: Path = DOCKERFILE) -> list[Stage]:
    """The stages of a Dockerfile: continuation lines joined, comments dropped, leading
    ``--flag=value`` options of an instruction taken apart."""
    stages: list[Stage] = []
    logical, pending = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends with a continuation line"
    for line in logical:
        keyword, _sep, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        flags = {}
        while rest.startswith("--"):
            flag, _sep, rest = rest.partition(" ")
            name, _eq, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        if keyword == "FROM":
            parts = rest.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None))
            continue
        assert stages, f"{keyword} before FROM"
        stages[-1].instructions.append(Instruction(keyword, rest, flags))
    return stages


def copies(stage: Stage) -> list[tuple[list[str], str, dict[str, str]]]:
    """(sources, destination, flags) of each COPY."""
    result = []
    for instruction in stage.all("COPY"):
        parts = instruction.exec_form() or shlex.split(instruction.args)
        result.append((parts[:-1], parts[-1], instruction.flags))
    return result


def dockerignore() -> list[str]:
    path = REPO / ".dockerignore"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore matching, as far as these patterns need (``**/`` prefixes, globs)."""
    parts = relative.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            tail = pattern[3:]
            if any(fnmatch.fnmatch("/".join(parts[i:]), tail) or fnmatch.fnmatch(parts[i], tail)
                   for i in range(len(parts))):
                return True
        elif any(fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            return True
    return False


# --- reading compose.yaml --------------------------------------------------------------------------

TOP_LEVEL = {"version", "name", "services", "networks", "volumes", "configs", "secrets", "include"}
SERVICE_KEYS = {"build", "image", "command", "entrypoint", "environment", "env_file", "volumes", "ports",
                "expose", "depends_on", "healthcheck", "restart", "stop_grace_period", "stop_signal",
                "networks", "deploy", "labels", "user", "working_dir", "secrets", "configs", "logging",
                "init", "container_name", "profiles", "ulimits", "tmpfs", "read_only", "cap_drop",
                "security_opt", "shm_size", "extra_hosts", "hostname"}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
DURATION = re.compile(r"(\d+(\.\d+)?(us|ms|s|m|h))+")
PORT = re.compile(r"(?:(?P<ip>[\d.]+|\[[0-9a-fA-F:]+\]):)?(?:(?P<host>\d+):)?(?P<container>\d+)"
                  r"(?:/(tcp|udp))?")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def bind_mounts(service: dict) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts (short syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE_FILE.parent / source).resolve()
    return mounts


def uses_our_image(service: dict) -> bool:
    build = service.get("build")
    if not isinstance(build, dict):
        return False
    return (COMPOSE_FILE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE.resolve()


def argv(service: dict, stages: list[Stage]) -> list[str]:
    """What the container runs after the entrypoint: its command, else the image's CMD."""
    command = service.get("command")
    if command is None:
        return stages[-1].last("CMD").exec_form()
    return shlex.split(command) if isinstance(command, str) else list(command)


def duration_s(text: str) -> float:
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, _f, u in re.findall(r"(\d+(\.\d+)?)(us|ms|s|m|h)", text))


def service_config(service: dict) -> Config:
    """The gateway config a service runs with (its TISS_GATEWAY_CONFIG, from the mounted file)."""
    path = bind_mounts(service)[environment(service)[CONFIG_ENV]]
    return load_config(path)


def simulator_ports(services: dict, stages: list[Stage]) -> dict[tuple[str, int], str]:
    """(service, port) -> registro ANS of each simulated operator a compose service listens for."""
    ports = {}
    for name, service in services.items():
        command = argv(service, stages)
        if command[:2] != ["tiss-gateway", "simulate"]:
            continue
        args = build_parser().parse_args(command[1:])
        keys = list(PROFILE_KEYS) if args.all else args.operators
        admin = int(args.bind.rpartition(":")[2])
        profiles = load_all()
        for index, key in enumerate(keys, 1):
            ports[(name, admin + index)] = profiles[key].registro_ans
    return ports


# --- 1. compose.yaml, as `docker compose config` reads it ---------------------------------------------


def test_compose_top_level_and_services_are_well_formed():
    document = compose()
    assert set(document) - TOP_LEVEL <= {k for k in document if k.startswith("x-")}, set(document) - TOP_LEVEL
    services = document["services"]
    assert {"postgres", "gateway", "worker", "simulators"} <= set(services)
    for name, service in services.items():
        assert set(service) <= SERVICE_KEYS, (name, set(service) - SERVICE_KEYS)
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = COMPOSE_FILE.parent / service["build"]["context"]
            assert context.is_dir() and (context / service["build"]["dockerfile"]).is_file(), name
        assert service.get("restart", "no") in ("no", "always", "unless-stopped", "on-failure"), name
        if "stop_grace_period" in service:
            assert DURATION.fullmatch(service["stop_grace_period"]), name
        for key, value in environment(service).items():
            assert "$" not in value, f"{name}: {key} would be interpolated by compose"


def test_compose_ports_volumes_and_healthchecks():
    document = compose()
    services, published = document["services"], set()
    declared_volumes = set(document.get("volumes") or {})
    for name, service in services.items():
        for port in service.get("ports", []):
            match = PORT.fullmatch(str(port))
            assert match, (name, port)
            host = match["host"] or match["container"]
            assert host not in published, f"{name}: host port {host} published twice"
            published.add(host)
        for volume in service.get("volumes", []):
            source, target, *mode = volume.split(":")
            assert target.startswith("/") and mode in ([], ["ro"], ["rw"]), (name, volume)
            if source.startswith((".", "/")):
                assert (COMPOSE_FILE.parent / source).exists(), (name, source)
            else:
                assert source in declared_volumes, (name, source)
        check = service.get("healthcheck")
        if check:
            assert set(check) <= HEALTHCHECK_KEYS, (name, check)
            if not check.get("disable"):
                assert check["test"][0] in ("CMD", "CMD-SHELL"), name
                for key in ("interval", "timeout", "start_period"):
                    assert key not in check or DURATION.fullmatch(check[key]), (name, key)


def _healthchecked(service: dict, stages: list[Stage]) -> bool:
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable")
    return uses_our_image(service) and stages[-1].last("HEALTHCHECK") is not None


def test_compose_depends_on_existing_healthy_services_without_cycles():
    services, stages = compose()["services"], read_dockerfile()
    graph = {}
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            assert spec["condition"] in CONDITIONS, (name, spec)
            if spec["condition"] == "service_healthy":
                assert _healthchecked(services[target], stages), f"{target} has no healthcheck"
        graph[name] = set(depends)
    order = _start_order(graph)
    assert order.index("postgres") < order.index("gateway") < order.index("worker")


def _start_order(graph: dict[str, set[str]]) -> list[str]:
    order: list[str] = []
    while len(order) < len(graph):
        ready = sorted(n for n, deps in graph.items() if n not in order and deps <= set(order))
        assert ready, f"depends_on cycle among {set(graph) - set(order)}"
        order.extend(ready)
    return order


def test_compose_commands_parse_with_the_real_command_line():
    services, stages = compose()["services"], read_dockerfile()
    for name, service in services.items():
        if not uses_our_image(service):
            continue
        command = argv(service, stages)
        if command[0] == "tiss-gateway":
            build_parser().parse_args(command[1:])  # SystemExit on an unknown option
        else:
            assert command[0] == "gunicorn", (name, command)
            config_file = command[command.index("--config") + 1]
            destinations = {dest for _src, dest, _flags in copies(stages[-1])}
            assert config_file in destinations, f"{config_file} is not copied into the image"
            module, _sep, attribute = command[-1].partition(":")
            assert (REPO / (module.replace(".", "/") + ".py")).is_file() and attribute == "application"
        for key in environment(service):
            if key.startswith("TISS_GATEWAY_"):
                assert key in KNOWN_ENV, f"{name}: {key} is read by nobody"


def test_compose_gateway_and_worker_share_a_config_that_loads_and_the_database():
    document = compose()
    services, stages = document["services"], read_dockerfile()
    postgres = environment(services["postgres"])
    listening = simulator_ports(services, stages)
    for name in ("gateway", "worker"):
        service = services[name]
        env = environment(service)
        assert env[CONFIG_ENV] in bind_mounts(service), f"{name}: the config file is not mounted"
        config = service_config(service)
        assert config.operadoras and config.prestadores
        for operadora in config.operadoras.values():
            assert _routed(operadora, services, listening), operadora
        url = make_url(env[DATABASE_URL_ENV])
        assert url.host in services and url.port == 5432
        assert (url.username, url.password, url.database) == \
            (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])
    # What the gateway seals for a delivery the worker opens: the same key (gateway.security.vault).
    gateway, worker = services["gateway"], services["worker"]
    home = stages[-1].env()["TISS_GATEWAY_HOME"]
    assert environment(gateway).get(vault.KEY_ENV) == environment(worker).get(vault.KEY_ENV)
    if vault.KEY_ENV not in environment(gateway):
        assert _volume_at(gateway, home) is not None and _volume_at(gateway, home) == _volume_at(worker, home)


def _volume_at(service: dict, target: str) -> str | None:
    """The named volume ``service`` mounts at ``target`` (None: the container's own files)."""
    return next((source for source, mounted, *_ in (v.split(":") for v in service.get("volumes", []))
                 if mounted == target and not source.startswith((".", "/"))), None)


def _routed(operadora: Operadora, services: dict, listening: dict[tuple[str, int], str]) -> bool:
    """Every version's address of the operator is a compose service that simulates that very
    operator, at that version's path."""
    def routed(versao: str, url: str) -> bool:
        match = re.fullmatch(r"https?://([\w.-]+):(\d+)/tiss/v(\d)_(\d\d)_(\d\d)", url)
        return bool(match) and ".".join(match.groups()[2:]) == versao and match[1] in services \
            and listening.get((match[1], int(match[2]))) == operadora.registro_ans
    return bool(operadora.enderecos) and all(routed(v, u) for v, u in operadora.enderecos.items())


def test_compose_stop_grace_periods_cover_the_derived_timeouts():
    services = compose()["services"]
    config = service_config(services["gateway"])
    assert duration_s(services["gateway"]["stop_grace_period"]) > deploy_settings.request_timeout(config)
    slowest = max(o.timeout_s for o in service_config(services["worker"]).operadoras.values())
    assert duration_s(services["worker"]["stop_grace_period"]) > slowest


def test_compose_publishes_only_the_proxy():
    """nginx alone publishes a port; the gateway, bound to every interface of its container,
    is reached on the compose network only, and trusts nginx's fixed address alone."""
    services, stages = compose()["services"], read_dockerfile()
    gateway, nginx = services["gateway"], services["nginx"]
    bind = environment(gateway).get(deploy_settings.BIND_ENV) or stages[-1].env()[deploy_settings.BIND_ENV]
    host, _sep, port = bind.rpartition(":")
    assert host == "0.0.0.0" and port in stages[-1].last("EXPOSE").args.split()
    for name, service in services.items():
        if uses_our_image(service) and argv(service, stages)[:2] != ["tiss-gateway", "simulate"]:
            assert "ports" not in service, f"{name} publishes a port: only nginx may"
    assert port in [str(p) for p in gateway.get("expose", [])]
    assert bind_mounts(nginx)["/etc/nginx/nginx.conf"] == NGINX_CONF.resolve()
    conf = nginx_directives()
    assert conf["server"] == [f"gateway:{port}"], "nginx's upstream is not the gateway's bind"
    listen = conf["listen"][0].split()[0]
    assert [PORT.fullmatch(str(p))["container"] for p in nginx["ports"]] == [listen]
    assert nginx["depends_on"]["gateway"]["condition"] == "service_healthy"
    network = compose()["networks"]["default"]["ipam"]["config"][0]
    address = ipaddress.ip_address(nginx["networks"]["default"]["ipv4_address"])
    assert address in ipaddress.ip_network(network["subnet"])
    assert address not in ipaddress.ip_network(network["ip_range"]), "another container could get it"
    config = service_config(gateway)
    assert config.gateway.trusted_proxies == (str(address),)
    assert deploy_settings.forwarded_allow_ips(config, {}) == str(address)


def nginx_directives(path: Path = NGINX_CONF) -> dict[str, list[str]]:
    """Every ``name value;`` of an nginx config, by name (blocks flattened, comments dropped)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*([a-z_]+)\s+([^;{#]*);", line)
        if match:
            found.setdefault(match[1], []).append(match[2].strip())
    return found


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024, "g": 1024 ** 3}
    return int(text[:-1]) * units[text[-1].lower()] if text[-1].isalpha() else int(text)


def test_nginx_limits_match_the_gateways():
    from gateway.gunicorn_worker import BUFFER_MAX

    conf, limits = nginx_directives(), deploy_settings.ReadLimits()
    config = service_config(compose()["services"]["gateway"])
    # Clients meet nginx's limits first; the gateway's are never tighter than the proxy's.
    assert duration_s(conf["client_header_timeout"][0]) <= limits.header_s
    assert duration_s(conf["client_body_timeout"][0]) <= limits.body_s
    assert config.gateway.max_message_bytes < _size(conf["client_max_body_size"][0]) <= BUFFER_MAX
    assert duration_s(conf["proxy_read_timeout"][0]) > deploy_settings.request_timeout(config)
    assert conf.get("proxy_request_buffering", ["on"]) == ["on"]
    headers = dict(h.split(None, 1) for h in conf["proxy_set_header"])
    assert headers["Host"] == "$http_host" and headers["X-Forwarded-Proto"] == "$scheme"
    client_cert = config.gateway.client_cert_header
    assert headers[client_cert] in ('""', "$ssl_client_escaped_cert"), "a client could send its own"
    assert headers["X-Forwarded-Ssl"] == headers["X-Forwarded-Protocol"] == '""'


# --- 2a. the Dockerfile, read -------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_with_a_non_root_runtime():
    stages = read_dockerfile()
    assert len(stages) >= 2 and stages[0].name == "builder"
    final = stages[-1]
    version = re.fullmatch(r"python:(\d+\.\d+)-slim", final.base)
    assert version and PYPROJECT["project"]["requires-python"] == f">={version[1]}"
    assert stages[0].base == final.base
    user = final.last("USER").args
    assert user not in ("root", "0") and user.split(":")[0] == "10001"
    assert any("--uid 10001" in run.args for run in final.all("RUN"))
    assert not final.all("RUN") or all("pip" not in run.args for run in final.all("RUN")), \
        "the runtime stage installs nothing: it copies the builder's venv"


def test_dockerfile_copies_exist_and_cover_the_package():
    stages = read_dockerfile()
    names = {s.name for s in stages if s.name}
    patterns = dockerignore()
    for stage in stages:
        for sources, _dest, flags in copies(stage):
            if "from" in flags:
                assert flags["from"] in names, flags
                continue
            for source in sources:
                assert (REPO / source).exists(), source
                assert not ignored(source, patterns), f"{source} is excluded by .dockerignore"
    copied = {Path(s).parts[0] for sources, _d, flags in copies(stages[0]) if "from" not in flags
              for s in sources}
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {"pyproject.toml", PYPROJECT["project"]["readme"]} <= copied


def test_dockerfile_healthcheck_entrypoint_and_command():
    final = read_dockerfile()[-1]
    check = final.last("HEALTHCHECK")
    assert check is not None and check.args.startswith("CMD ")
    probe = json.loads(check.args[4:])
    assert probe[0] == "python" and "/healthz" in probe[-1]  # slim has no curl
    entrypoint = final.last("ENTRYPOINT").exec_form()
    script = next(src for sources, dest, flags in copies(final) for src in sources
                  if dest.rsplit("/", 1)[-1] == entrypoint[0])
    copied_with = next(flags for sources, _dest, flags in copies(final) if script in sources)
    assert copied_with.get("chmod") == "0755" or os.access(REPO / script, os.X_OK)
    text = (REPO / script).read_text(encoding="utf-8")
    assert "tiss-gateway db upgrade" in text and 'exec "$@"' in text
    assert final.last("CMD").exec_form()[0] == "gunicorn"


# --- 2b. the Dockerfile, run ----------------------------------------------------------------------------


@dataclass
class Image:
    """The image's file system under ``root``, with the runtime stage's environment."""

    root: Path
    stages: list[Stage]
    env: dict[str, str]
    workdir: Path
    log: Path

    def host(self, path: str) -> str:
        """A container path as the replay has it (under ``root``) when it exists there."""
        mapped = self.root / path.lstrip("/")
        return str(mapped) if path.startswith("/") and mapped.exists() else path


def _python311() -> str:
    found = shutil.which("python3.11")
    assert found, "python3.11 is needed to replay the image"
    return subprocess.run([found, "-c", "import sys; print(sys.executable)"], capture_output=True,
                          text=True, check=True).stdout.strip()


def _clean_env() -> dict[str, str]:
    """This machine's environment without the test run's Python and gateway settings."""
    drop = ("PYTHON", "VIRTUAL_ENV", "TISS_GATEWAY_", "PROMETHEUS_", "FORWARDED_ALLOW_IPS")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _map_env(value: str, root: Path, base_path: str) -> str:
    """An ENV value with its absolute paths under ``root`` and ``$PATH`` expanded."""
    parts = []
    for part in value.split(":"):
        if part == "$PATH":
            parts.append(base_path)
        elif part.startswith("/"):
            parts.append(str(root) + part)
        else:
            parts.append(part)
    return ":".join(parts)


def _copy(source: Path, destination: Path, patterns: list[str]) -> None:
    if source.is_file():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
        return
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(REPO).as_posix()
        if path.is_file() and not ignored(relative, patterns):
            target = destination / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _apply(stage: Stage, root: Path, env: dict[str, str], base_path: str, log: Path) -> Path:
    """COPY (from the repository), ENV, WORKDIR and RUN of one stage, in order, under ``root``."""
    workdir, patterns = root, dockerignore()
    for instruction in stage.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = root / instruction.args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                key, _sep, value = pair.partition("=")
                env[key] = _map_env(value, root, env.get("PATH", base_path))
        elif instruction.keyword == "COPY" and "from" not in instruction.flags:
            *sources, dest = instruction.exec_form() or shlex.split(instruction.args)
            target = workdir / dest if not dest.startswith("/") else root / dest.lstrip("/")
            for source in sources:
                into = target / Path(source).name if dest.endswith("/") and len(sources) > 1 else target
                _copy(REPO / source, into, patterns)
                if "chmod" in instruction.flags:
                    into.chmod(int(instruction.flags["chmod"], 8))
        elif instruction.keyword == "RUN" and not instruction.args.startswith("useradd"):
            with log.open("ab") as out:  # useradd: the replay runs as this machine's user
                done = subprocess.run(["sh", "-c", instruction.args], cwd=workdir, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, timeout=900, check=False)
            assert done.returncode == 0, f"RUN {instruction.args}:\n{log.read_text()[-5000:]}"
    return workdir


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The Dockerfile's steps, replayed once: the builder stage's RUN commands, then the runtime stage."""
    stages = read_dockerfile()
    root = tmp_path_factory.mktemp("image")
    log = root.parent / "image-build.log"
    shims = root / "usr" / "local" / "bin"  # python:3.11-slim's `python`
    shims.mkdir(parents=True)
    (shims / "python").write_text(f'#!/bin/sh\nexec "{_python311()}" "$@"\n')
    (shims / "python").chmod(0o755)
    base_env = _clean_env()
    base_path = f"{shims}:{base_env.get('PATH', '/usr/bin:/bin')}"
    env = {**base_env, "PATH": base_path}
    for stage in stages[:-1]:
        _apply(stage, root, dict(env), base_path, log)
    runtime_env = {**base_env, "PATH": base_path}
    workdir = _apply(stages[-1], root, runtime_env, base_path, log)
    return Image(root, stages, runtime_env, workdir, log)


@pytest.mark.slow
def test_the_wheel_carries_every_file_of_the_packages(image: Image):
    builder = image.stages[0].env()
    wheels = list((image.root / builder["WHEELS"].lstrip("/")).glob("tiss_gateway-*.whl"))
    assert len(wheels) == 1
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    patterns = dockerignore()
    expected = set()
    for package in {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}:
        for path in (REPO / package).rglob("*"):
            relative = path.relative_to(REPO).as_posix()
            if path.is_file() and not ignored(relative, patterns):
                expected.add(relative)
    assert expected - names == set(), "files of the packages missing from the wheel (package-data?)"
    for needed in ("gateway/storage/migrations/env.py", "wsdl/tissLoteGuias.wsdl", "schemas/manifest.json",
                   "simulator/profiles/pasa.toml", "gateway/storage/migrations/script.py.mako"):
        assert needed in names
    assert any(n.startswith("gateway/storage/migrations/versions/") for n in names)
    if (REPO / "gateway" / "console" / "templates").is_dir():
        assert any(n.startswith("gateway/console/templates/") for n in names)
    # What runs is the installed wheel, not this source tree.
    python = image.host(image.stages[0].env()["VENV"]) + "/bin/python"
    code = "import gateway, simulator; print(gateway.__file__, simulator.__file__)"
    where = subprocess.run([python, "-c", code], cwd=image.workdir, env=image.env, capture_output=True,
                           text=True, check=True)
    assert str(REPO) not in where.stdout and "site-packages" in where.stdout


@dataclass
class Container:
    name: str
    process: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


class Stack:
    """The compose services built from the image, started from the replayed install."""

    def __init__(self, image: Image, database_url: str, tmp: Path):
        self.image, self.database_url, self.tmp = image, database_url, tmp
        self.services = compose()["services"]
        self.admin = free_port_block(7)  # simulators: admin + five operators
        self.gateway_port = free_port()
        self.containers: dict[str, Container] = {}
        self.config = self._config()

    def _config(self) -> Path:
        """The mounted config, the simulators' host:port replaced by this machine's ports."""
        source = bind_mounts(self.services["gateway"])[environment(self.services["gateway"])[CONFIG_ENV]]
        simulate = build_parser().parse_args(argv(self.services["simulators"], self.image.stages)[1:])
        admin = int(simulate.bind.rpartition(":")[2])
        text = re.sub(r"http://simulators:(\d+)",
                      lambda m: f"http://127.0.0.1:{self.admin + int(m[1]) - admin}",
                      source.read_text(encoding="utf-8"))
        target = self.tmp / "config.toml"
        target.write_text(text, encoding="utf-8")
        return target

    def env(self, name: str) -> dict[str, str]:
        env = dict(self.image.env)
        for key, value in environment(self.services[name]).items():
            if key == CONFIG_ENV:
                value = str(self.config)
            elif key == DATABASE_URL_ENV:
                value = self.database_url
            env[key] = value
        env[deploy_settings.BIND_ENV] = f"127.0.0.1:{self.gateway_port}"  # ports: "8080:8080"
        # Each container has a file system of its own, new with each `compose up`, but for the
        # named volumes it mounts (one folder each, shared by the services that mount it).
        target = env["TISS_GATEWAY_HOME"].removeprefix(str(self.image.root))
        volume = _volume_at(self.services[name], target)
        home = self.tmp / "volumes" / volume if volume else self.tmp / name / target.lstrip("/")
        home.mkdir(parents=True, exist_ok=True)
        env["TISS_GATEWAY_HOME"] = str(home)
        return env

    def argv(self, name: str) -> list[str]:
        command = argv(self.services[name], self.image.stages)
        if "--bind" in command:  # simulators: loopback, on the ports found free
            command[command.index("--bind") + 1] = f"127.0.0.1:{self.admin}"
        entrypoint = self.image.stages[-1].last("ENTRYPOINT").exec_form()
        return [self.image.host(a) for a in [*entrypoint, *command]]

    def start(self, name: str) -> Container:
        log = self.tmp / f"{name}.log"
        env = self.env(name)
        command = self.argv(name)
        command[0] = shutil.which(command[0], path=env["PATH"]) or command[0]
        with log.open("ab") as out:
            process = subprocess.Popen(command, cwd=self.image.workdir, env=env, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        container = self.containers[name] = Container(name, process, log)
        return container

    def healthcheck(self, name: str) -> list[str]:
        check = self.services[name].get("healthcheck")
        test = check["test"] if check else ["CMD", *json.loads(
            self.image.stages[-1].last("HEALTHCHECK").args[4:])]
        assert test[0] == "CMD"
        return [a.replace("127.0.0.1:9000", f"127.0.0.1:{self.admin}") for a in test[1:]]

    def wait_healthy(self, name: str, timeout: float = 120) -> None:
        """Run the service's healthcheck command, as Docker does, until it passes."""
        env, container = self.env(name), self.containers[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert container.process.poll() is None, f"{name} exited:\n{container.text()[-5000:]}"
            probe = subprocess.run(self.healthcheck(name), cwd=self.image.workdir, env=env,
                                   capture_output=True, timeout=10, check=False)
            if probe.returncode == 0:
                return
            time.sleep(0.5)
        raise AssertionError(f"{name} never became healthy:\n{container.text()[-5000:]}")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        env = self.env("gateway")
        return subprocess.run([shutil.which("tiss-gateway", path=env["PATH"]), *args], cwd=self.image.workdir,
                              env=env, capture_output=True, text=True, timeout=60, check=False)

    def stop(self) -> None:
        for container in reversed(list(self.containers.values())):
            if container.process.poll() is None:
                container.process.send_signal(signal.SIGTERM)
        for container in self.containers.values():
            try:
                container.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(container.process.pid, signal.SIGKILL)
                container.process.wait(10)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.sqlite'}"
    return request.getfixturevalue("pg_schemas")()


@pytest.mark.slow
def test_the_compose_services_run_from_the_installed_image(image: Image, database_url: str, tmp_path: Path):
    stack = Stack(image, database_url, tmp_path)
    graph = {n: set(s.get("depends_on") or ()) for n, s in stack.services.items()}
    order = [n for n in _start_order(graph) if uses_our_image(stack.services[n])]  # postgres: the URL above
    try:
        for name in order:
            stack.start(name)
            if _healthchecked(stack.services[name], image.stages):
                stack.wait_healthy(name)
        gateway = f"http://127.0.0.1:{stack.gateway_port}"
        wsdl = requests.get(f"{gateway}/tiss/v4_03_00/tissLoteGuias?wsdl", timeout=30)
        assert wsdl.status_code == 200 and f'location="{gateway}/tiss/v4_03_00/tissLoteGuias"' in wsdl.text
        sent = requests.post(f"{gateway}/tiss/v4_03_00/tissLoteGuias", data=EXAMPLE_LOTE.read_bytes(),
                             headers={"Content-Type": "text/xml; charset=ISO-8859-1"}, timeout=60)
        assert sent.status_code == 200, sent.text[:2000]
        numero = re.search(r"<ans:numeroProtocolo>(\d+)</ans:numeroProtocolo>", sent.text)[1]
        deadline, shown = time.monotonic() + 90, {}
        while time.monotonic() < deadline:
            done = stack.cli("protocolo", "show", numero, "--json")
            assert done.returncode == 0, done.stderr
            shown = json.loads(done.stdout)
            if shown["entregas"] and all(e["estado"] == "entregue" for e in shown["entregas"]):
                break
            time.sleep(1)
        else:
            raise AssertionError(f"not delivered: {shown}\n{stack.containers['worker'].text()[-5000:]}")
        assert shown["operadora"] == "331988" and shown["protocolo_operadora"]
    finally:
        stack.stop()
    for container in stack.containers.values():
        assert container.process.returncode in (0, -signal.SIGTERM), \
            (container.name, container.text()[-3000:])


# --- 3. gunicorn.conf.py and `serve` agree ----------------------------------------------------------------


def _print_config(env: dict[str, str]) -> dict[str, str]:
    """gunicorn's fully resolved settings from gunicorn.conf.py (a separate process: the file
    configures logging and metrics for the process that reads it)."""
    done = subprocess.run([sys.executable, "-m", "gunicorn", "--print-config", "--config",
                           str(REPO / "gunicorn.conf.py"), "gateway.wsgi:application"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return dict(re.findall(r"^(\w+)\s+= (.*)$", done.stdout, re.MULTILINE))


def test_gunicorn_conf_resolves_to_what_serve_uses(tmp_path: Path):
    config_file = tmp_path / "config.toml"
    config_file.write_text('[operadoras.331988]\nnome = "PASA"\nadapter = "pasa"\ntimeout_s = 75\n',
                           encoding="utf-8")
    env = {**_clean_env(), CONFIG_ENV: str(config_file),
           DATABASE_URL_ENV: f"sqlite:///{tmp_path / 'g.sqlite'}",
           "TISS_GATEWAY_HOME": str(tmp_path / "home"), deploy_settings.WORKERS_ENV: "3",
           deploy_settings.THREADS_ENV: "5",
           deploy_settings.BIND_ENV: "127.0.0.1:8443", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    resolved = _print_config(env)
    expected = deploy_settings.gunicorn_options(load_config(config_file), bind="127.0.0.1:8443", workers=3,
                                                env={deploy_settings.THREADS_ENV: "5"})
    assert expected["threads"] == 5 and expected["worker_class"] == deploy_settings.WORKER_CLASS
    assert expected["timeout"] == 75 + 2 * 75 + deploy_settings.MARGIN_S
    for key in ("workers", "threads", "worker_connections", "timeout", "graceful_timeout", "keepalive",
                "max_requests", "max_requests_jitter", "worker_class", "accesslog", "forwarded_allow_ips"):
        value = expected[key]
        shown = ",".join(value.split(",")) if isinstance(value, str) else value
        assert resolved[key].strip("[]'").replace("', '", ",") == str(shown), (key, resolved[key], value)
    assert resolved["bind"] == "['127.0.0.1:8443']"
    assert resolved["worker_tmp_dir"] == str(expected["worker_tmp_dir"])


def test_gunicorn_conf_takes_tls_from_the_environment(tmp_path: Path):
    from gateway.security import pki

    authority = pki.new_authority("AC Conf")
    authority.issue_server("127.0.0.1").save(tmp_path, "server")
    (tmp_path / "ca.pem").write_bytes(authority.cert_pem)
    env = {**_clean_env(), DATABASE_URL_ENV: f"sqlite:///{tmp_path / 'g.sqlite'}",
           "TISS_GATEWAY_HOME": str(tmp_path / "home"), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           deploy_settings.CERTFILE_ENV: str(tmp_path / "server-cert.pem"),
           deploy_settings.KEYFILE_ENV: str(tmp_path / "server-key.pem"),
           deploy_settings.CA_CERTS_ENV: str(tmp_path / "ca.pem"),
           deploy_settings.REQUIRE_CLIENT_CERT_ENV: "1"}
    resolved = _print_config(env)
    assert resolved["certfile"] == str(tmp_path / "server-cert.pem")
    assert resolved["ca_certs"] == str(tmp_path / "ca.pem") and resolved["cert_reqs"] == "2"


# --- deploy_settings ----------------------------------------------------------------------------------


def test_workers_from_cores_capped_and_overridden():
    assert deploy_settings.default_workers(1) == 3
    assert deploy_settings.default_workers(2) == 5
    assert deploy_settings.default_workers(64) == deploy_settings.MAX_WORKERS
    assert deploy_settings.workers({deploy_settings.WORKERS_ENV: "12"}) == 12
    for bad in ("0", "dois", "-1"):
        with pytest.raises(ValueError, match=deploy_settings.WORKERS_ENV):
            deploy_settings.workers({deploy_settings.WORKERS_ENV: bad})


def test_timeouts_follow_the_slowest_operator():
    def config(*timeouts: float) -> Config:
        return Config(operadoras={f"33198{i}": Operadora(f"33198{i}", "X", "pasa", timeout_s=t)
                                  for i, t in enumerate(timeouts)})

    assert deploy_settings.request_timeout(config()) == deploy_settings.MIN_TIMEOUT_S
    assert deploy_settings.request_timeout(config(30)) == 30 + 60 + deploy_settings.MARGIN_S
    assert deploy_settings.request_timeout(config(5, 200)) == 200 + 400 + deploy_settings.MARGIN_S
    options = deploy_settings.gunicorn_options(config(200), bind="x:1", workers=1, env={})
    assert options["graceful_timeout"] == options["timeout"] > 200
    assert deploy_settings.gunicorn_options(config(), bind="x:1", workers=1,
                                            env={deploy_settings.MAX_REQUESTS_ENV: "0"})["max_requests"] == 0


def test_tls_options_are_checked(tmp_path: Path):
    pem = tmp_path / "x.pem"
    pem.write_text("x")
    assert deploy_settings.Tls().options() == {}
    assert deploy_settings.Tls(str(pem), str(pem)).options()["cert_reqs"] == 0
    assert deploy_settings.Tls(str(pem), str(pem), str(pem)).options()["cert_reqs"] == 1
    assert deploy_settings.Tls(str(pem), str(pem), str(pem), True).options()["cert_reqs"] == 2
    for bad in (deploy_settings.Tls(keyfile=str(pem)),
                deploy_settings.Tls(str(pem), require_client_cert=True),
                deploy_settings.Tls(str(tmp_path / "missing.pem"))):
        with pytest.raises(ValueError, match="TLS"):
            bad.options()


def test_serve_refuses_bad_tls_files_before_starting(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--database",
                           f"sqlite:///{tmp_path / 'g.sqlite'}", "--certfile", str(tmp_path / "nada.pem")],
                          cwd=REPO, env={**_clean_env(), "TISS_GATEWAY_HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "nada.pem" in done.stderr


def test_serve_refuses_bad_threads_and_read_deadlines_before_starting(tmp_path: Path):
    for args, env in ((["--threads", "0"], {}), ([], {deploy_settings.HEADER_TIMEOUT_ENV: "dez"})):
        done = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--database",
                               f"sqlite:///{tmp_path / 'g.sqlite'}", *args], cwd=REPO,
                              env={**_clean_env(), "TISS_GATEWAY_HOME": str(tmp_path), **env},
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2 and "TISS_GATEWAY_" in done.stderr, done.stderr


def test_the_database_url_from_the_environment_overrides_the_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch):
    config_file = tmp_path / "config.toml"
    config_file.write_text('[gateway]\ndatabase_url = "sqlite:////arquivo.sqlite"\n', encoding="utf-8")
    assert load_config(config_file).gateway.database_url == "sqlite:////arquivo.sqlite"
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://u:p@db/tiss")
    assert load_config(config_file).gateway.database_url == "postgresql://u:p@db/tiss"
    monkeypatch.setenv(DATABASE_URL_ENV, "mysql://x")
    with pytest.raises(Exception, match=DATABASE_URL_ENV):
        load_config(config_file)



# --- 4. docker/nginx.conf, run by a real nginx in front of a real gateway ---------------------------


class Nginx:
    """docker/nginx.conf as nginx runs it here: upstream, port, pid, logs and temporary files moved
    to this machine (the directives the container's paths name), everything else as written."""

    def __init__(self, binary: str, root: Path, upstream_port: int):
        self.binary, self.root, self.port = binary, root, free_port()
        root.mkdir(parents=True, exist_ok=True)
        text = NGINX_CONF.read_text(encoding="utf-8")
        text = re.sub(r"server gateway:\d+;", f"server 127.0.0.1:{upstream_port};", text)
        text = re.sub(r"listen \d+;", f"listen 127.0.0.1:{self.port};", text)
        text = text.replace("/var/run/nginx.pid", str(root / "nginx.pid"))
        text = text.replace("/var/log/nginx/", f"{root}/")
        temp = "".join(f"    {kind}_temp_path {root / kind};\n"
                       for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        self.conf = root / "nginx.conf"
        self.conf.write_text(text.replace("http {\n", "http {\n" + temp, 1), encoding="utf-8")
        self.process: subprocess.Popen | None = None

    def argv(self, *extra: str) -> list[str]:
        settings = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")  # tmp dirs are root's
        return [self.binary, "-p", str(self.root), "-c", str(self.conf), "-e", str(self.root / "error.log"),
                "-g", settings, *extra]

    def start(self) -> str:
        checked = subprocess.run(self.argv("-t"), capture_output=True, text=True, timeout=30, check=False)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.root / "error.log").read_text()
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    return base
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"nginx did not answer:\n{(self.root / 'error.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful, as the image's STOPSIGNAL
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def _nginx_binary() -> str:
    where = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    if shutil.which("nginx", path=where) is None:
        try:
            apt_install(["nginx-light"])
        except PackagesUnavailable as exc:
            pytest.skip(str(exc))
    found = shutil.which("nginx", path=where)
    assert found, "nginx installed but not found"
    return found


def test_nginx_conf_proxies_to_a_real_gateway(tiss_home: Path, tmp_path: Path):
    from tests.factory import build_lote
    from tests.gateway_process import GatewayProcess

    binary = _nginx_binary()
    with GatewayProcess(f"sqlite:///{tmp_path / 'gateway.sqlite'}", tiss_home, workers=1,
                        log_dir=tmp_path) as gateway:
        proxy = Nginx(binary, tmp_path / "nginx", gateway.port)
        try:
            base = proxy.start()
            wsdl = requests.get(f"{base}/tiss/v4_03_00/tissLoteGuias?wsdl", timeout=30)
            assert wsdl.status_code == 200 and f'location="{base}/tiss/v4_03_00/tissLoteGuias"' in wsdl.text
            lote = build_lote("sp-sadt", 3, envelope=True, numero_lote="71", sequencial="71")
            sent = requests.post(f"{base}/tiss/v4_03_00/tissLoteGuias", data=lote, timeout=60,
                                 headers={"Content-Type": "text/xml; charset=ISO-8859-1", "SOAPAction": '""'})
            assert sent.status_code == 200 and b"<ans:numeroProtocolo>" in sent.content, sent.text[:2000]
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as oversized:
                oversized.sendall(b"POST /tiss/v4_03_00/tissLoteGuias HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Type: text/xml\r\nContent-Length: 17825792\r\n\r\n")
                assert oversized.recv(200).startswith(b"HTTP/1.1 413 "), "nginx let a 17 MiB body through"
        finally:
            proxy.stop()
        assert "recusada (limite)" not in gateway.log(), "the oversized body reached the gateway"
