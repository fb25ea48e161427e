"""The README's screenshots, taken in headless Chromium: ``python docs/screenshots.py`` (writes docs/*.png).

Starts the app over a temporary copy of the bundled corpus (plus a few sample articles, so the Articles view has
something to page through), asks a question, and photographs the chat (light and dark), a digest, the archive
and the phone layout.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.config import Settings  # noqa: E402
from qa.environment import configure_offline  # noqa: E402

SAMPLES = [("Busan dock workers end strike", "2024-12-03", "Harbour Gazette",
            "Dock workers at the port of Busan ended their strike on Tuesday after nine days."),
           ("Velmora lighthouse repainted", "2024-12-02", "Harbour Gazette",
            "The Velmora lighthouse was repainted teal by the Quillon Maritime Society in October."),
           ("Ulsan ferry timetable changes", "2024-11-30", "Ferry Office",
            "From December the Ulsan ferry sails at dawn and at dusk on weekdays."),
           ("Seoul metro extends night service", "2024-11-29", "City Desk",
            "Seoul's metro will run until 2 a.m. on Fridays and Saturdays from next month.")]


def main() -> None:
    configure_offline()
    from playwright.sync_api import sync_playwright

    from qa.web import create_app, launch

    work = Path(tempfile.mkdtemp(prefix="qa-shots-"))
    shutil.copytree(ROOT / "corpus", work / "corpus")
    (work / "corpus" / "samples.jsonl").write_text("\n".join(
        json.dumps({"id": f"s{n}", "title": t, "date": d, "source": s, "text": x})
        for n, (t, d, s, x) in enumerate(SAMPLES)) + "\n", encoding="utf-8")
    app = create_app(Settings(corpus=work / "corpus", index=work / "index"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = launch(app, port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            shots = (("chat", (1280, 800), "light"), ("dark", (1280, 800), "dark"), ("phone", (390, 844), "light"))
            for name, viewport, scheme in shots:
                page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]}, color_scheme=scheme)
                page.goto(url)
                page.wait_for_selector("#qa-question textarea")
                ask(page, "What ammunition was discussed?")
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(path=str(ROOT / "docs" / f"{name}.png"))
                if name == "chat":
                    ask(page, "What happened in early December 2024?")
                    page.screenshot(path=str(ROOT / "docs" / "digest.png"))
                    page.get_by_role("tab", name="Articles").click()
                    page.wait_for_selector("#qa-articles tbody tr")
                    page.locator("#qa-articles tbody tr").nth(1).click()
                    page.wait_for_selector("#qa-reader .qa-reader")
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(ROOT / "docs" / "archive.png"), full_page=True)
                elif name == "phone":
                    page.click("#qa-sources-toggle")
                    page.wait_for_timeout(600)
                    page.screenshot(path=str(ROOT / "docs" / "phone-sources.png"))
                page.close()
            browser.close()
    finally:
        app.close()
        shutil.rmtree(work, ignore_errors=True)


def ask(page, question: str) -> None:
    """Ask, and wait until the answer has streamed in (Ask is back)."""
    bots = page.locator('#qa-chat [data-testid="bot"]').count()
    page.fill("#qa-question textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function("""n => document.querySelectorAll('#qa-chat [data-testid="bot"]').length > n
                                   && !document.querySelector('.generating, .pending')
                                   && document.querySelector('#qa-send').offsetParent !== null""", arg=bots,
                           timeout=60_000)
    page.wait_for_timeout(800)


if __name__ == "__main__":
    main()
