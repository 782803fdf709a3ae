"""CI's mypy step: fail when mypy finds more errors than the committed baseline.

    .venv/bin/python .ci/mypy_ratchet.py

The baseline (``.ci/mypy-baseline``) only goes down: when the count falls below it, lower the
file in the same commit so that the errors fixed stay fixed.
"""

import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / ".ci" / "mypy-baseline"
ERROR = re.compile(r"^(?P<path>[^:\s]+\.py):\d+: error:")


def main() -> int:
    # A cache of its own each run: a stale incremental cache once hid 22 errors from a local run.
    with tempfile.TemporaryDirectory() as cache:
        run = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", cache], cwd=REPO,
                             capture_output=True, text=True)
    errors = [line for line in run.stdout.splitlines() if ERROR.match(line)]
    if run.returncode not in (0, 1) or (run.returncode == 1 and not errors):
        print(run.stdout + run.stderr, file=sys.stderr)
        print("mypy: did not run to the end", file=sys.stderr)
        return 2
    baseline = int(BASELINE.read_text().split()[0])
    by_file = Counter(ERROR.match(line)["path"] for line in errors)  # type: ignore[index]
    print(f"mypy: {len(errors)} errors (baseline {baseline})")
    for path, count in by_file.most_common(10):
        print(f"  {count:4d} {path}")
    if len(errors) > baseline:
        print("\n".join(errors), file=sys.stderr)
        print(f"mypy: {len(errors) - baseline} errors above the baseline", file=sys.stderr)
        return 1
    if len(errors) < baseline:
        print(f"mypy: below the baseline: write {len(errors)} to .ci/mypy-baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
