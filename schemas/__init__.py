"""What the gateway ships about the official ANS schema sets.

The XSD files themselves are not copied here: 4.02.00 and 4.03.00 come from the PyPI package
``tiss`` and other sets are imported with ``tiss-gateway schemas import``. ``manifest.json`` holds
the SHA-256 of every official file, each version's start of validity and where it comes from.
"""

import json
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def manifest() -> dict[str, Any]:
    """The official manifest: ``{"versions": {version: {valid_from, origin, bundled_by, files}}}``."""
    return json.loads(files(__name__).joinpath("manifest.json").read_text(encoding="utf-8"))
