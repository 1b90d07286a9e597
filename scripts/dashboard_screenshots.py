"""Screenshot every dashboard page into docs/dashboard/, through the browser test.

Usage::

    python scripts/dashboard_screenshots.py [PROJECT]

PROJECT is a project folder with a read model (``views/``), such as one made
by ``churnwatch demo``; without it, the sample project the test builds. The
browser test serves it with ``churnwatch dashboard``, opens each page in
Debian's Chromium and writes ``docs/dashboard/<page>.png``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    """Run the browser test with screenshots on; its exit code."""
    environment = {**os.environ, "CHURNWATCH_SCREENSHOTS": "1"}
    if argv:
        environment["CHURNWATCH_BROWSER_PROJECT"] = str(Path(argv[0]).resolve())
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"]
    command += [str(ROOT / "tests" / "dashboard" / "test_browser.py")]
    return subprocess.run(command, env=environment, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
