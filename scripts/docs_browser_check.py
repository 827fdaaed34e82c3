"""Look at the built documentation site in a real browser: ``nox -s docs`` runs this.

Usage: python scripts/docs_browser_check.py SITE_DIR SCREENSHOT_DIR [--chromium PATH]

Theory of operation: the built site is served from SITE_DIR on 127.0.0.1 (an
ephemeral port, a thread of this process), and headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright without Playwright's own browser
download) opens every page the site's sitemap.xml lists (the pages of
``PAGES`` must be among them). Every request the page makes is
checked before it leaves: one to any host but the local server is aborted and
reported, so a theme fetching fonts or scripts from elsewhere fails here (the
site must work offline). A page fails on a console error, an uncaught script
error, a request that failed or answered 4xx/5xx, or a page without a
heading (for the pages of ``PAGES``, without the heading given there). A
screenshot of each page's first screen lands in SCREENSHOT_DIR as NAME.png,
and for the pages of ``PAGES`` one of the whole page as NAME-full.png. Exits
1 and lists every problem when there is one.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import pathlib
import sys
import tempfile
import threading
import typing
import urllib.parse

# Pages that must exist: path under the site -> what their first heading must contain.
PAGES = {
    "": "httpool",
    "quickstart/threads/": "Quickstart: threads",
    "quickstart/trio/": "Quickstart: trio",
    "guarantees/": "The pool's guarantees",
    "reference/pools/": "Pools and connections",
    "reference/exceptions/": "Exceptions",
}
# Chromium must not try to reach any host on its own (updates, sync, field trials).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(site: pathlib.Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _sitemap(site: pathlib.Path) -> list[str]:
    """The site's pages, as paths under its root ("" for the home page)."""
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.parse(site / "sitemap.xml").getroot()
    locations = [element.text or "" for element in root.iter() if element.tag.endswith("loc")]
    paths = [urllib.parse.urlsplit(location).path.lstrip("/") for location in locations]
    missing = set(PAGES) - set(paths)
    if missing:
        raise SystemExit(f"pages missing from the site: {sorted(missing)}")
    return paths


def check(site: pathlib.Path, screenshots: pathlib.Path, chromium: str) -> list[str]:
    """Open every page; return the problems found (empty: all is well)."""
    from playwright.sync_api import sync_playwright

    screenshots.mkdir(parents=True, exist_ok=True)
    server, base = _serve(site)
    local = urllib.parse.urlsplit(base).netloc
    problems: list[str] = []
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=chromium,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1280, "height": 900},
            )
            try:
                for path in _sitemap(site):
                    heading = PAGES.get(path, "")
                    problems += _check_page(context, base + path, local, heading, screenshots)
            finally:
                context.close()
    finally:
        server.shutdown()
        server.server_close()
    return problems


def _check_page(
    context: typing.Any, url: str, local: str, heading: str, screenshots: pathlib.Path
) -> list[str]:
    problems: list[str] = []
    page = context.new_page()

    def route(route: typing.Any) -> None:
        target = urllib.parse.urlsplit(route.request.url)
        if target.scheme in ("http", "https") and target.netloc != local:
            problems.append(f"{url}: a request to another host: {route.request.url}")
            route.abort()
        else:
            route.continue_()

    page.route("**/*", route)

    def console(message: typing.Any) -> None:
        if message.type == "error":
            problems.append(f"{url}: console error: {message.text}")

    def answered(response: typing.Any) -> None:
        if response.status >= 400:
            problems.append(f"{url}: {response.status} for {response.url}")

    page.on("console", console)
    page.on("response", answered)
    page.on("pageerror", lambda error: problems.append(f"{url}: script error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"{url}: failed: {request.url}"))
    response = page.goto(url, wait_until="networkidle")
    if response is None or response.status != 200:
        problems.append(f"{url}: not served ({response and response.status})")
    title = page.locator("article h1").first.inner_text()
    if not title.strip() or heading not in title:
        problems.append(f"{url}: heading {title!r}, expected {heading!r}")
    name = urllib.parse.urlsplit(url).path.strip("/").replace("/", "-") or "index"
    page.screenshot(path=str(screenshots / f"{name}.png"))  # what a reader first sees
    if heading:  # one of PAGES
        page.screenshot(path=str(screenshots / f"{name}-full.png"), full_page=True)
    page.close()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=pathlib.Path, help="the built site (mkdocs' site_dir)")
    parser.add_argument("screenshots", type=pathlib.Path, help="where the screenshots go")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the browser binary")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        parser.error(f"{args.site} holds no built site (no index.html)")
    if not pathlib.Path(args.chromium).is_file():
        parser.error(f"no browser at {args.chromium} (Debian: apt-get install chromium)")
    problems = check(args.site, args.screenshots, args.chromium)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(
        f"{len(_sitemap(args.site))} pages looked at, {len(problems)} problems;"
        f" screenshots in {args.screenshots}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
