"""Headless Chromium through Selenium, for the debugger page (`make test-browser` installs both).

Debian's `chromium` and `chromium-driver` packages (/usr/bin/chromium, /usr/bin/chromedriver);
`CHROMIUM` / `CHROMEDRIVER` point elsewhere. The flags are the ones that work in a closed network
as root: no sandbox (root), no GPU, and none of Chromium's own background connections (they are
refused here, many at a time, and slow its start). A fresh profile per test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,1100",
)


@pytest.fixture(autouse=True)
def aws_env() -> None:
    """The local stack sets its own AWS environment; the unit-test one must not interfere."""


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(f"no Chromium at {CHROMIUM} / {CHROMEDRIVER}: run `make test-browser`, which installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    profile = tempfile.mkdtemp(prefix="debugger-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
