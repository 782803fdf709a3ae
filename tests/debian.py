"""Debian packages a test needs (chromium, php-soap, jaxws...), installed with apt-get when missing:
as root, or with ``sudo -n``; a test that cannot have them is skipped with this module's reason."""

import os
import shutil
import subprocess
from collections.abc import Sequence

APT_TIMEOUT_S = 900


class PackagesUnavailable(RuntimeError):
    """The packages could not be installed here (no root nor sudo, apt-get failed)."""


def apt_install(packages: Sequence[str]) -> None:
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise PackagesUnavailable(f"não há root nem sudo para instalar {' '.join(packages)}")
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([*prefix, "apt-get", "update"],
                    [*prefix, "apt-get", "install", "-y", "--no-install-recommends", *packages]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S,
                                  check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PackagesUnavailable(f"{' '.join(command)}: {exc}") from exc
        if done.returncode != 0:
            raise PackagesUnavailable(f"{' '.join(command)} terminou com {done.returncode}:\n"
                                      f"{(done.stdout + done.stderr)[-4000:]}")
