"""Headless Chromium driving serve's web page (selenium and Debian's chromium, chromium-driver):
for the browser test, the benchmark and the README's screenshot.

    with Browser() as page:
        page.open("http://127.0.0.1:8000/#token")
        page.wait_for_state("live")
        page.tap(0.2, 0.8)
"""

from __future__ import annotations

import io
import shutil

from .jack import poll

DRIVERS = ("chromedriver",)
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def missing_browser_tools() -> list[str]:
    """What is missing to run the browser tests: selenium, a Chromium, its driver."""
    missing = []
    import importlib.util

    if importlib.util.find_spec("selenium") is None:
        missing.append("selenium (pip install selenium)")
    if not any(shutil.which(name) for name in BROWSERS):
        missing.append("chromium (Debian: apt install chromium)")
    if not any(shutil.which(name) for name in DRIVERS):
        missing.append("chromedriver (Debian: apt install chromium-driver)")
    return missing


class Browser:
    """One headless Chromium window of ``width`` x ``height`` CSS pixels, from ``with`` to its end."""

    def __init__(self, width: int = 720, height: int = 900) -> None:
        self.width, self.height = width, height
        self.driver = None

    def __enter__(self) -> "Browser":
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         f"--window-size={self.width},{self.height}", "--force-device-scale-factor=1"):
            options.add_argument(argument)
        binary = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
        if binary:
            options.binary_location = binary
        self.driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
        return self

    def __exit__(self, *exc) -> None:
        if self.driver is not None:
            self.driver.quit()

    def open(self, url: str) -> None:
        """Load ``url`` afresh (a URL that differs only in its #token would not reload the page)."""
        self.driver.get("about:blank")
        self.driver.get(url)

    def body(self, name: str) -> str | None:
        """The page's ``data-NAME`` on <body>: state, dots, applied, version."""
        return self.driver.execute_script(f"return document.body.dataset[{name!r}] ?? null")

    def wait_for_state(self, state: str, timeout: float = 20.0) -> None:
        poll(lambda: self.body("state") == state, timeout, interval=0.05, what=f"the page's state {state!r} "
             f"(it is {self.body('state')!r})")

    def pad(self):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, "pad")

    def tap(self, x: float, y: float) -> int:
        """Press and release the pad at pad position (x, y), each 0..1 (y up); the page's seq it will send."""
        from selenium.webdriver.common.action_chains import ActionChains

        pad = self.pad()
        box = pad.rect
        dx, dy = round((x - 0.5) * box["width"]), round((0.5 - y) * box["height"])
        sent = int(self.body("applied") or 0)
        ActionChains(self.driver).move_to_element_with_offset(pad, dx, dy).click().perform()
        return sent + 1

    def choose(self, control: str, value: str) -> int:
        """Pick ``value`` in the page's <select> ``control`` (key, scale, colour-by); the page's seq it will send."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        sent = int(self.body("applied") or 0)
        Select(self.driver.find_element(By.ID, control)).select_by_value(value)
        return sent + 1

    def slide(self, control: str, value: float) -> int:
        """Move the page's slider ``control`` to ``value``, as a finger would; the page's seq it will send."""
        sent = int(self.body("applied") or 0)
        self.driver.execute_script("const s = document.getElementById(arguments[0]); s.value = arguments[1]; "
                                   "s.dispatchEvent(new Event('input'));", control, value)
        return sent + 1

    def wait_applied(self, seq: int, timeout: float = 10.0) -> None:
        """Until the daemon acknowledges the page's message ``seq`` (or a later one) as applied."""
        poll(lambda: int(self.body("applied") or 0) >= seq, timeout, interval=0.01, what=f"message {seq} applied")

    def screenshot_png(self) -> bytes:
        return self.driver.get_screenshot_as_png()

    def pad_variance(self) -> float:
        """The grey levels' variance over the pad in a screenshot: 0 for a blank pad."""
        from PIL import Image

        image = Image.open(io.BytesIO(self.screenshot_png())).convert("L")
        box = self.pad().rect
        crop = image.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"])))
        import numpy as np

        return float(np.asarray(crop, dtype=np.float64).var())
