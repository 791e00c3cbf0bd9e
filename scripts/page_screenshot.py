#!/usr/bin/env python3
"""The README's picture of the web page: `serve` on a private JACK server (dummy driver), the page
in headless Chromium at a phone's size, coloured by register, with the pad's labelled edges.

    python scripts/page_screenshot.py                       # checkpoints/default -> docs/figures/web-page.png

Needs what the browser test needs: jackd (jackd2), chromium and chromium-driver, selenium.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's vrae_live

from vrae_live.testing.browser import Browser, missing_browser_tools  # noqa: E402
from vrae_live.testing.jack import JackServer  # noqa: E402
from vrae_live.testing.serve import ServeProcess, free_port  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "default")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "web-page.png")
    parser.add_argument("--colour-by", default="register", choices=["song", "folder", "register", "density", "major"])
    args = parser.parse_args(argv)
    missing = missing_browser_tools()
    if missing:
        raise SystemExit("missing: " + ", ".join(missing))
    with JackServer(name="vrae-screenshot") as server:
        daemon = ServeProcess(args.checkpoint, "--web-port", str(free_port()), "--web-host", "127.0.0.1",
                              "--device", "cpu", "--bpm", "96", env=server.env)
        try:
            with Browser(width=500, height=700) as page:
                page.open(daemon.web_urls[0])
                page.wait_for_state("live")
                page.driver.execute_script(
                    "const s = document.getElementById('colour-by'); s.value = arguments[0];"
                    "s.dispatchEvent(new Event('change'));", args.colour_by)
                page.wait_applied(page.tap(0.3, 0.7))
                args.out.write_bytes(page.screenshot_png())
        finally:
            daemon.kill()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
