"""Streaming to the browser: tokens per second seen in the page vs produced by the engine, one run.

Starts the studio on the demo model, opens it in headless Chromium (Debian's chromium through
Playwright), and runs one long " la la la" answer. A MutationObserver in the page timestamps how
many tokens are visible; the engine's own rate is the answer's footer (generated tokens / seconds,
as recorded in the journal). Also reports how busy the tab's main thread was (Chrome's
TaskDuration over the answer's wall time): a pinned tab would show about 1.0.
Prints {"metric": "ui_tok_s_ratio", "value": browser / engine, "target": 0.95} last.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from _common import ROOT, report

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TARGET = 0.95
OBSERVER_JS = """
() => {
  window.seen = [];
  const target = document.querySelector('#transcript');
  const count = () => ((target.innerText.match(/\\bla\\b/g) || []).length);
  new MutationObserver(() => window.seen.push([performance.now(), count()]))
    .observe(target, {childList: true, subtree: true, characterData: true});
}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=12000, help="length of the answer in tokens")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, CHAIN_STUDIO_HOME=home)
        studio = subprocess.Popen([sys.executable, "-m", "app", "ui", "--port", str(port), "--no-browser"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                page.get_by_role("tab", name="Settings").click()
                page.get_by_text("Model loading").click()
                page.get_by_label("n_ctx").fill(str(args.tokens + 512))
                page.evaluate(OBSERVER_JS)
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")

                def busy_seconds() -> float:
                    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                    return metrics["TaskDuration"]

                busy_before, wall_before = busy_seconds(), time.monotonic()
                page.locator("#user-prompt textarea").fill(f"{{max_tokens={args.tokens}}} sing ~")
                page.locator("#start").click()
                page.locator("#status").get_by_text("Run finished.").wait_for(timeout=600_000)
                busy = (busy_seconds() - busy_before) / (time.monotonic() - wall_before)
                seen = page.evaluate("() => window.seen")
                footer = page.locator("#transcript sub").last.inner_text()
                browser.close()
        finally:
            studio.terminate()
            studio.wait(30)

    tokens, seconds = (float(x) for x in re.search(r"\+ (\d+) generated tokens · ([\d.]+) s", footer).groups())
    engine_rate = tokens / seconds
    first = next(sample for sample in seen if sample[1] > 0)
    last = next(sample for sample in seen if sample[1] >= tokens)
    browser_rate = (last[1] - first[1]) / ((last[0] - first[0]) / 1000)
    print(f"engine {engine_rate:.0f} tok/s ({int(tokens)} tokens in {seconds:.2f} s); "
          f"browser saw {browser_rate:.0f} tok/s over {len(seen)} page updates; "
          f"tab main thread busy {busy:.0%} of the time")
    report("ui_tok_s_ratio", browser_rate / engine_rate, TARGET, engine_tok_s=round(engine_rate, 1),
           browser_tok_s=round(browser_rate, 1), page_updates=len(seen), tab_busy_share=round(busy, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
