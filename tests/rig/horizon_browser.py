"""Horizon as a person uses it: headless Chromium (Debian's packages) driven by Selenium logs in and opens pages.

Run from the rig's internet namespace (where a client in allowed_cidr stands) against https on the Elastic IP, so it
proves what a remote operator sees: `horizon_checks()` starts this module there (`ip netns exec`), passwords on stdin.
Chromium trusts the cloud's self-signed certificate through its key only (`--ignore-certificate-errors-spki-list` with
that key's hash: any other certificate still fails); the chain and the names are proven by curl with the CA
(tests/rig/proofs.py).
A page fails on Horizon's error page, on a redirect back to the login form, or on an error message Horizon shows
(`.alert-danger`, e.g. "Unable to retrieve ..."). Screenshots of every page go to build/rig/browser/.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking switches Chromium tries to reach Google's hosts at every start.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000")
ERROR_PAGE_MARKERS = ("Something went wrong", "Server Error", "Internal Server Error", "Page Not Found")


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    must_show: str = ""  # text the page must contain once loaded (e.g. verify's instance in the list)


def pages_for(user: str, instance: str) -> list[Page]:
    """What each user opens: admin sees every project's instances under Admin, demo its own under Project."""
    instances = (Page("admin-instances", "/admin/instances/", instance) if user == "admin"
                 else Page("instances", "/project/instances/", instance))
    return [Page("overview", "/project/"), instances, Page("network-topology", "/project/network_topology/"),
            Page("volumes", "/project/volumes/"), Page("object-store", "/project/containers/")]


def spki_sha256(cert_pem: str) -> str:
    """The hash Chromium's --ignore-certificate-errors-spki-list takes: base64 of SHA-256 over the certificate's
    SubjectPublicKeyInfo (DER), which is what a PEM public key holds."""
    pem = subprocess.run(["openssl", "x509", "-noout", "-pubkey"], input=cert_pem, capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    der = base64.b64decode("".join(line for line in pem.splitlines() if not line.startswith("-----")))
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _driver(download_dir: str, trust_spki: str = "") -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Chromium honours the SPKI list only with its own --user-data-dir, which each session has.
    trust = (f"--ignore-certificate-errors-spki-list={trust_spki}",) if trust_spki else ()
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={download_dir}", *trust):
        options.add_argument(flag)
    # An explicit driver path keeps Selenium Manager from trying to download one.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def _problem(driver: Any) -> str:
    """Why the current page is not a working Horizon page, or ''."""
    from selenium.webdriver.common.by import By

    body = driver.find_element(By.TAG_NAME, "body").text
    for marker in ERROR_PAGE_MARKERS:
        if marker in body or marker in driver.title:
            return f"error page ({marker!r})"
    if "/auth/login" in driver.current_url:
        return "sent back to the login page"
    alerts = [a.text.strip() for a in driver.find_elements(By.CSS_SELECTOR, ".alert-danger") if a.text.strip()]
    return f"Horizon shows: {' | '.join(alerts)[:300]}" if alerts else ""


def _login(driver: Any, base: str, user: str, password: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/auth/login/")
    WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, "id_username")))
    domain = driver.find_elements(By.ID, "id_domain")
    if domain:
        domain[0].clear()
        domain[0].send_keys("Default")
    driver.find_element(By.ID, "id_username").send_keys(user)
    driver.find_element(By.ID, "id_password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit], #loginBtn").click()
    WebDriverWait(driver, 90).until(lambda d: "/auth/login" not in d.current_url or d.find_elements(
        By.CSS_SELECTOR, ".alert-danger, .error"))
    return _problem(driver)


def _wait_loaded(driver: Any, must_show: str, seconds: float = 60) -> bool:
    """Angular pages (object store, topology) fill in after load: wait for the text, or for the page to settle."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready = driver.execute_script("return document.readyState") == "complete"
        body = driver.find_element(By.TAG_NAME, "body").text
        if ready and (not must_show or must_show in body):
            return True
        time.sleep(1)
    return False


def browse(base: str, user: str, password: str, instance: str, shots: Path, wait: float = 60,
           settle: float = 2, trust_spki: str = "") -> list[dict[str, Any]]:
    """Log in as `user` and open each page; one result per page (and one for the login). `wait`: how long a page
    may take to show what it must; `settle`: how long to give asynchronous calls to report an error after that;
    `trust_spki`: the hash of the one server key to accept besides the system's CAs (spki_sha256)."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as profile:
        driver = _driver(profile, trust_spki)
        try:
            t0 = time.monotonic()
            problem = _login(driver, base, user, password)
            driver.save_screenshot(str(shots / f"{user}-login.png"))
            results.append({"page": "login", "user": user, "ok": not problem, "url": driver.current_url,
                            "detail": problem or f"logged in ({time.monotonic() - t0:.1f}s)"})
            if problem:
                return results
            for page in pages_for(user, instance):
                t0 = time.monotonic()
                driver.get(base + page.path)
                shown = _wait_loaded(driver, page.must_show, wait)
                time.sleep(settle)  # error messages of asynchronous calls arrive after the page
                problem = _problem(driver) or ("" if shown else f"{page.must_show!r} not on the page")
                driver.save_screenshot(str(shots / f"{user}-{page.name}.png"))
                results.append({"page": page.name, "user": user, "ok": not problem, "url": driver.current_url,
                                "detail": problem or f"{driver.title!r} ({time.monotonic() - t0:.1f}s)"})
        finally:
            driver.quit()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="Horizon's base URL, e.g. https://203.0.113.10")
    parser.add_argument("--shots", required=True, type=Path, help="folder for the screenshots")
    parser.add_argument("--instance", default="verify-instance", help="an instance name the lists must show")
    parser.add_argument("--trust-spki", default="", help="accept the server key with this hash (spki_sha256)")
    args = parser.parse_args()
    credentials: dict[str, str] = json.load(sys.stdin)  # {"admin": password, "demo": password}
    args.shots.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for user, password in credentials.items():
        try:
            results += browse(args.url.rstrip("/"), user, password, args.instance, args.shots,
                              trust_spki=args.trust_spki)
        except Exception as error:  # any browser failure is this user's result, not a crash
            results.append({"page": "session", "user": user, "ok": False, "url": args.url,
                            "detail": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"})
    json.dump(results, sys.stdout)


def horizon_checks(netns: str, url: str, credentials: dict[str, str], shots: Path, step: str,
                   python: str = sys.executable, trust_spki: str = "") -> list[dict[str, Any]]:
    """Run the browser in `netns` and turn its page results into CHECK entries (one per user)."""
    proc = subprocess.run(["ip", "netns", "exec", netns, python, "-m", "tests.rig.horizon_browser", "--url", url,
                           "--shots", str(shots), "--trust-spki", trust_spki], input=json.dumps(credentials),
                          capture_output=True, text=True, timeout=900, cwd=Path(__file__).resolve().parents[2])
    try:
        pages = json.loads(proc.stdout)
    except ValueError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return [{"name": "horizon-browser", "ok": False, "status": "fail", "node": "vpc", "step": step,
                 "detail": f"the browser run failed (exit {proc.returncode}): {' | '.join(tail)}"}]
    checks = []
    for user in credentials:
        mine = [p for p in pages if p["user"] == user]
        failed = [p for p in mine if not p["ok"]]
        detail = (f"{url} from {netns}: " + "; ".join(f"{p['page']}: {p['detail']}" for p in (failed or mine))
                  + f" (screenshots in {shots})")
        checks.append({"name": f"horizon-browser-{user}", "ok": bool(mine) and not failed,
                       "status": "ok" if mine and not failed else "fail", "node": "vpc", "step": step,
                       "detail": detail})
    return checks


if __name__ == "__main__":
    main()
