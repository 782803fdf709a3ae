"""Where the gateway keeps its data: TISS_GATEWAY_HOME, or a per-user data directory."""

import os
from pathlib import Path

from platformdirs import user_data_dir


def gateway_home() -> Path:
    configured = os.environ.get("TISS_GATEWAY_HOME")
    return Path(configured) if configured else Path(user_data_dir("tiss-gateway", appauthor=False))
