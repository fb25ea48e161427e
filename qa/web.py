"""The web chat: ask questions, read the cited sources, add articles. Started by ``python app.py``.

The page has a chat (left) whose answers stream in with ``[n]`` markers linked to numbered source cards
(right), and an "Articles" tab to upload article files, which are saved into the corpus folder and indexed
at once. Everything that comes from articles or users is escaped before it reaches the page. The chat is
also an API endpoint, ``/ask``, for ``gradio_client``.

Rendering lives in small pure functions (``answer_markdown``, ``sources_html``, ...) and saving uploads in
``save_upload``, so both can be tested without a browser.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local app: no usage reports

import gradio as gr  # noqa: E402 - after the setting above

from qa.answer import Answer, Citation
from qa.assistant import Assistant
from qa.config import Settings, configure_offline
from qa.conversation import Turn
from qa.corpus import SUPPORTED_EXTENSIONS, read_file
from qa.errors import DiskFull, IndexReadOnly, IndexUnusable
from qa.indexing import CorpusNotFound, MassRemoval, SyncReport, sync
from qa.retriever import IndexInfo, Passage, Retriever

#: Shown in the empty chat; clicking one asks it.
EXAMPLES = (
    "What ammunition was discussed?",
    "Who met in Seoul on November 27?",
    "How many troops has North Korea sent to Russia?",
)
#: Uploads larger than this are refused before anything is saved.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Events (questions, uploads) run at once per handler, and requests that may wait in Gradio's queue.
QUEUE_CONCURRENCY = 4
QUEUE_MAX_SIZE = 128
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
_RELATED_CHARS = 320  # how much of a related passage to show when the answer abstains
_STREAM_PAUSE = 0.12  # seconds between streamed sentences: enough to see the answer arrive


# --- Rendering: pure functions from answers and index facts to escaped Markdown/HTML ----------------------

_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]~|$])")  # special anywhere in a line
_MARKDOWN_LINE_START = re.compile(r"^([#>+=-]|\d+(?=[.)]))")  # headings, quotes, lists


def escape_markdown(text: str) -> str:
    """``text`` on one line, as Markdown that renders literally: markup characters backslash-escaped and
    ``<>&`` written as entities, so no HTML or Markdown in it takes effect."""
    text = _MARKDOWN_INLINE.sub(r"\\\1", " ".join(str(text).split()))
    text = _MARKDOWN_LINE_START.sub(lambda m: m[1] + "\\" if m[1][0].isdigit() else "\\" + m[1], text)
    return html.escape(text, quote=False)


def card_id(turn: int, number: int) -> str:
    """The HTML id of the card of citation ``number`` of answer ``turn`` (markers link to it)."""
    return f"qa-src-{turn}-{number}"


def answer_markdown(answer: Answer, turn: int, sentences: int | None = None) -> str:
    """The chat message for ``answer``: its caveat ("Reports differ: ...") if any, then its first ``sentences``
    sentences (all by default), each followed by its ``[n]`` markers as links to the source cards."""
    if not answer.sentences:
        text = escape_markdown(answer.text)
        if answer.related:
            text += "\n\n*The closest passages are listed under Sources as related reading; they are not an answer.*"
        return text
    titles = {c.number: c.title for c in answer.citations}

    def link(n: int) -> str:
        return f'[\\[{n}\\]](#{card_id(turn, n)} "{_link_title(titles.get(n, ""))}")'

    parts = []
    if answer.caveat:  # its markers were escaped with the rest; link them again
        parts.append(re.sub(r"\\\[(\d+)\\\]", lambda m: link(int(m[1])), escape_markdown(answer.caveat)))
    for sentence in answer.sentences[:sentences]:
        parts.append(f"{escape_markdown(sentence.text)} {''.join(link(n) for n in sentence.citations)}")
    return " ".join(parts)


def _link_title(title: str) -> str:
    return escape_markdown(title).replace('"', '\\"')


def _text(value: str) -> str:
    """Escaped text on one line (line breaks inside articles would only make gaps in a card)."""
    return html.escape(" ".join(value.split()))


def safe_url(url: str | None) -> str | None:
    """``url`` when it is a plain http(s) link, else None: ``javascript:`` and friends are never linked."""
    if not url:
        return None
    parsed = urlparse(url.strip())
    return url.strip() if parsed.scheme in ("http", "https") and parsed.netloc else None


def _meta_html(date: str | None, source: str | None, url: str | None) -> str:
    bits = [html.escape(x) for x in (date, source) if x]
    link = safe_url(url)
    if link:
        host = urlparse(link).netloc
        bits.append(f'<a href="{html.escape(link)}" target="_blank" rel="noopener noreferrer nofollow">'
                    f"{html.escape(host)} ↗</a>")
    return f'<div class="qa-meta">{" · ".join(bits)}</div>' if bits else ""


def citation_card(citation: Citation, turn: int) -> str:
    """One numbered source card: title, date, source, link, and the cited sentence in its context (for a
    headline that holds the answer, the title line, marked as such)."""
    before = f"…{_text(citation.before)} " if citation.before.strip() else ""
    after = f" {_text(citation.after)}…" if citation.after.strip() else ""
    if citation.part == "title":  # a headline that holds the answer: the title line itself
        before = '<span class="qa-tag">Headline</span> '
    return (f'<article class="qa-card" id="{card_id(turn, citation.number)}">'
            f'<div class="qa-card-head"><span class="qa-num">{citation.number}</span>'
            f'<span class="qa-title">{_text(citation.title)}</span></div>'
            f"{_meta_html(citation.date, citation.source, citation.url)}"
            f'<p class="qa-snippet">{before}<mark>{_text(citation.snippet)}</mark>{after}</p></article>')


def related_card(passage: Passage) -> str:
    """A passage shown when the answer abstains: marked as related reading, not as an answer."""
    text = " ".join(passage.text.split())
    if len(text) > _RELATED_CHARS:
        text = text[:_RELATED_CHARS].rsplit(" ", 1)[0] + "…"
    return (f'<article class="qa-card qa-related"><div class="qa-card-head"><span class="qa-tag">Related</span>'
            f'<span class="qa-title">{_text(passage.title)}</span></div>'
            f"{_meta_html(passage.date, passage.source, passage.url)}"
            f'<p class="qa-snippet">{_text(text)}</p></article>')


def sources_group(answer: Answer, turn: int) -> str:
    """The cards of one answer (the body of a ``<details>``, whose summary is the question)."""
    question = f'<summary class="qa-question">{_text(answer.question)}</summary>'
    if answer.citations:
        cards = "".join(citation_card(c, turn) for c in answer.citations)
    elif answer.related:
        cards = ('<p class="qa-note">No passage answers this question. These are the closest ones, '
                 "for related reading:</p>" + "".join(related_card(p) for p in answer.related))
    else:
        cards = '<p class="qa-note">No sources for this answer.</p>'
    return question + cards


def sources_html(groups: Sequence[str]) -> str:
    """The Sources panel: the newest answer's cards open, earlier answers' folded below."""
    heading = '<h2 class="qa-h2">Sources</h2>'
    if not groups:
        return (f'{heading}<div class="qa-sources-empty">The sources of each answer appear here, numbered as in '
                "the answer. Click a marker such as [1] to jump to its source.</div>")
    newest = f'<details class="qa-group" open>{groups[-1]}</details>'
    older = "".join(f'<details class="qa-group qa-older">{g}</details>' for g in reversed(groups[:-1]))
    if older:
        older = f'<div class="qa-older-label">Earlier answers</div>{older}'
    return f'{heading}<div class="qa-sources">{newest}{older}</div>'


def status_html(info: IndexInfo) -> str:
    """The status line: articles, chunks, model and when the index last changed."""
    updated = info.updated_at.strftime("%Y-%m-%d %H:%M") if info.updated_at else "never"
    articles = f"{info.articles} article{'s' * (info.articles != 1)}"
    bits = [f"<b>{articles}</b>", f"{info.chunks} chunks", f"model {html.escape(info.model)}", f"updated {updated}"]
    return '<div class="qa-status">' + " · ".join(f"<span>{b}</span>" for b in bits) + "</div>"


def chat_turns(messages: Sequence | None) -> list[Turn]:
    """Conversation turns from Gradio chat messages, whose content may be a string or a list of parts
    (``[{"type": "text", "text": ...}]``); other items (Turn objects, pairs) are passed on as they are."""
    turns: list = []
    for item in messages or []:
        if isinstance(item, dict) and item.get("role") in ("user", "assistant"):
            content = item.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            elif isinstance(content, dict):
                content = str(content.get("text", ""))
            turns.append(Turn(item["role"], content if isinstance(content, str) else ""))
        else:
            turns.append(item)
    return turns


# --- Uploads: saving article files into the corpus folder safely -----------------------------------------

@dataclass(frozen=True)
class Upload:
    """What became of one uploaded file: saved under ``name`` in the corpus, or rejected with ``reason``."""

    original: str
    name: str | None = None
    reason: str | None = None
    existing: bool = False  # the same file was already in the corpus


@dataclass
class UploadReport:
    """The outcome of one batch of uploads, for the page."""

    added: list[str] = field(default_factory=list)  # article ids indexed
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)
    unchanged: list[str] = field(default_factory=list)  # files already in the archive


def safe_name(name: str) -> str:
    """A file name that is safe in the corpus folder: the basename only, letters, digits, ``.-_``."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", str(name)))[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_") or "article"
    ext = re.sub(r"[^A-Za-z0-9]+", "", ext).lower()
    return stem[:100] + (f".{ext}" if ext else "")


def save_upload(path: str | Path, corpus: str | Path, original: str | None = None) -> Upload:
    """Check the uploaded file at ``path`` and copy it into ``corpus`` under a safe, unused name.

    Refused before saving: unsupported types, files over :data:`MAX_UPLOAD_BYTES`, and files the corpus
    reader cannot turn into an article. A file with the same name but other content gets a ``-2``, ``-3``...
    suffix; an identical file is not saved twice.
    """
    path, corpus = Path(path), Path(corpus)
    original = original or path.name
    name = safe_name(original)
    suffix = Path(name).suffix
    if suffix not in SUPPORTED_EXTENSIONS:
        return Upload(original, reason=f"unsupported file type {suffix or '(none)'!r}; "
                                       f"upload one of {', '.join(SUPPORTED_EXTENSIONS)}")
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        return Upload(original, reason=f"file is {size / 2**20:.1f} MB, over the "
                                       f"{MAX_UPLOAD_BYTES // 2**20} MB upload limit; split it into smaller files")
    articles, problems = read_file(path, name)
    if not articles:
        return Upload(original, reason=reasons(problems) or "no article found in the file")
    data = path.read_bytes()
    stem = Path(name).stem
    try:
        corpus.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 1000):
            candidate = corpus / (name if attempt == 1 else f"{stem}-{attempt}{suffix}")
            if candidate.resolve().parent != corpus.resolve():
                return Upload(original, reason="file name is not allowed")
            try:
                with open(candidate, "xb") as out:  # exclusive: never replaces a file
                    try:
                        out.write(data)
                        out.flush()
                    except BaseException:
                        candidate.unlink(missing_ok=True)  # no half-saved file left in the corpus
                        raise
                return Upload(original, candidate.name)
            except FileExistsError:
                if candidate.is_file() and candidate.read_bytes() == data:
                    return Upload(original, candidate.name, existing=True)
    except OSError as exc:  # a full or read-only disk: say so, and keep the app up
        return Upload(original, reason=f"could not be saved in the corpus folder ({exc.strerror or exc}); "
                                       "ask the administrator to free space or fix the folder")
    return Upload(original, reason="too many files with this name in the corpus; rename the file")


#: Reasons listed per rejected file, and rejected files listed on the page; the rest are counted. A 900 KB
#: JSON Lines file of 300,000 bad records made a 36.8 MB page when every reason was shown.
SHOWN_REASONS, SHOWN_REJECTED = 3, 20


def reasons(problems: Sequence) -> str:
    """The first few problems' reasons, and how many more there were."""
    text = "; ".join(p.reason for p in problems[:SHOWN_REASONS])
    more = len(problems) - SHOWN_REASONS
    return text + (f"; and {more:,} more problems" if more > 0 else "")


def withdraw(upload: Upload, corpus: Path, reason: str) -> Upload:
    """``upload`` taken back out of the corpus (unless it was there before) and rejected with ``reason``."""
    if upload.name is None or upload.existing:  # rejected already, or in the archive before (and unchanged)
        return upload
    if not upload.existing:
        (corpus / upload.name).unlink(missing_ok=True)
    return Upload(upload.original, reason=reason)


def summarize_uploads(uploads: Sequence[Upload], report: SyncReport | None, corpus: Path) -> UploadReport:
    """Which uploaded files were indexed, which were rejected (and why); duplicates are removed again."""
    out = UploadReport()
    for up in uploads:
        if up.name is None:
            out.rejected.append((up.original, up.reason or "rejected"))
            continue
        mine = [a for a in (report.added + report.updated if report else [])
                if a == up.name or a.startswith(up.name + "#")]
        problems = [p for p in (report.skipped if report else [])
                    if p.path == up.name or p.path.startswith((up.name + "#", up.name + " "))]
        if mine:
            out.added += mine
            out.rejected += [(p.path, p.reason) for p in problems]  # e.g. one bad record of a JSON Lines file
        elif problems:
            if not up.existing:
                (corpus / up.name).unlink(missing_ok=True)  # nothing of it was indexed: do not keep it
            out.rejected.append((up.original, reasons(problems)))
        elif up.existing:
            out.unchanged.append(up.name)
        else:
            out.added.append(up.name)  # indexed by another sync that ran at the same moment
    return out


def upload_report_html(result: UploadReport) -> str:
    """What an upload did, in a few escaped lines."""
    lines = []
    if result.added:
        items = "".join(f"<li>{html.escape(a)}</li>" for a in result.added)
        lines.append(f'<div class="qa-ok">Added {len(result.added)} article'
                     f"{'s' * (len(result.added) != 1)}:<ul>{items}</ul></div>")
    if result.unchanged:
        items = "".join(f"<li>{html.escape(a)}</li>" for a in result.unchanged)
        lines.append(f'<div class="qa-note">Already in the archive, unchanged:<ul>{items}</ul></div>')
    if result.rejected:
        items = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(r)}</li>"
                        for n, r in result.rejected[:SHOWN_REJECTED])
        if len(result.rejected) > SHOWN_REJECTED:
            items += f"<li>and {len(result.rejected) - SHOWN_REJECTED:,} more</li>"
        lines.append(f'<div class="qa-bad">Not added:<ul>{items}</ul></div>')
    return "".join(lines) or '<div class="qa-note">No files were uploaded.</div>'


# --- The app ----------------------------------------------------------------------------------------------

def open_assistant(settings: Settings, embedder=None, log: Callable[[str], None] | None = None) -> Assistant:
    """Bring the index in line with the corpus (a no-op when nothing changed) and open it."""
    log = log or _log
    try:
        report = sync(settings=settings, embedder=embedder)
        log(f"index {settings.index} synced with {settings.corpus}: {report.summary()}")
    except (CorpusNotFound, MassRemoval, DiskFull, IndexReadOnly) as exc:
        try:
            assistant = Assistant(Retriever(settings.index, embedder, settings=settings))
        except IndexUnusable:
            raise exc from None
        # The index itself is fine: serve it as it is rather than not start (the log says why it is not synced).
        log(f"index {settings.index} NOT synced with {settings.corpus}: {exc}; serving the index as it is")
        return assistant
    return Assistant(Retriever(settings.index, embedder, settings=settings))


def create_app(settings: Settings, embedder=None, assistant: Assistant | None = None) -> gr.Blocks:
    """The Gradio app over ``settings``' corpus and index; one Assistant is shared by all sessions.

    Launch it with :func:`launch` (it adds the page's style and script).
    """
    assistant = assistant or open_assistant(settings, embedder)
    retriever = assistant.retriever

    def status_and_sources():
        info = retriever.info()
        choices = [("All sources", "")] + [(s, s) for s in info.sources]
        return status_html(info), gr.update(choices=choices)

    def respond(question: str, chat: list, turns: list, groups: list, source: str, since: str, until: str,
                undated: bool = True):
        question = " ".join((question or "").split())
        if not question:
            yield "", chat, turns, groups, sources_html(groups)
            return
        chat = [*chat, {"role": "user", "content": escape_markdown(question)},
                {"role": "assistant", "content": "*Searching the articles…*"}]
        yield "", chat, turns, groups, sources_html(groups)
        try:
            answer = assistant.ask(question, history=chat_turns(turns), source=source or None,
                                   since=since or None, until=until or None, undated=bool(undated))
        except ValueError as exc:  # a bad filter value
            chat[-1] = {"role": "assistant", "content": escape_markdown(f"Cannot search: {exc}")}
            yield "", chat, turns, groups, sources_html(groups)
            return
        turn = len(groups) + 1
        groups = [*groups, sources_group(answer, turn)]
        turns = [*turns, {"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
        steps = range(1, len(answer.sentences) + 1) if not answer.abstained and answer.sentences else [None]
        for n in steps:
            if n and n > 1:
                time.sleep(_STREAM_PAUSE)
            chat[-1] = {"role": "assistant", "content": answer_markdown(answer, turn, n)}
            yield "", chat, turns, groups, sources_html(groups)

    tracker = gr.Progress(track_tqdm=True)  # shows sync's embedding progress bar on the page

    def add_articles(files: list[str] | None, progress=tracker):
        files = files or []
        if not files:
            yield upload_report_html(UploadReport()), *status_and_sources()
            return
        status_now, sources_now = status_and_sources()
        yield f'<div class="qa-progress">Checking {len(files)} file(s)…</div>', status_now, sources_now
        progress(0.05, desc=f"Checking {len(files)} file(s)")
        uploads = [save_upload(f, settings.corpus) for f in files]
        report = None
        if any(u.name and not u.existing for u in uploads):
            yield '<div class="qa-progress">Indexing…</div>', status_now, sources_now
            progress(0.2, desc="Indexing")
            try:
                report = sync(settings=settings, embedder=retriever.embedder, progress=True)
                _log(f"upload synced: {report.summary()}")
            except (IndexUnusable, ValueError) as exc:  # a full disk, a moved corpus: nothing is added, the app stays
                _log(f"upload not indexed: {exc}")
                uploads = [withdraw(u, settings.corpus, f"not indexed: {exc}") for u in uploads]
        result = summarize_uploads(uploads, report, settings.corpus)
        yield upload_report_html(result), *status_and_sources()

    def pick_example(evt: gr.SelectData) -> str:
        return evt.value["text"] if isinstance(evt.value, dict) else str(evt.value)

    def ask(question: str, history: list[dict] | None = None, source: str | None = None, since: str | None = None,
            until: str | None = None, undated: bool = True) -> dict:
        """Answer a question from the news articles: the answer text and its numbered citations.

        ``source``, ``since`` and ``until`` (YYYY-MM-DD) narrow the search; ``undated``: whether articles
        without a date are kept when a date range is given.
        """
        try:
            answer = assistant.ask(question, history=chat_turns(history), source=source or None,
                                   since=since or None, until=until or None, undated=undated is not False)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        return answer.to_dict()

    with gr.Blocks(title="News archive Q&A") as app:
        with gr.Row(elem_id="qa-header"):
            gr.HTML('<h1 class="qa-h1">News archive Q&amp;A</h1>'
                    '<p class="qa-sub">Answers quote the articles; every sentence is cited.</p>', js_on_load=None)
            status = gr.HTML(status_html(retriever.info()), elem_id="qa-status", js_on_load=None)
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chatbot = gr.Chatbot(
                            elem_id="qa-chat", height="calc(100vh - 320px)", min_height=320, show_label=False,
                            sanitize_html=True, allow_tags=False, latex_delimiters=[], feedback_options=None,
                            buttons=[],
                            placeholder="**Ask about the news articles.** Answers quote the articles and cite "
                                        "them with numbered markers.",
                            examples=[{"text": q} for q in EXAMPLES])
                        with gr.Row(elem_id="qa-ask-row"):
                            question = gr.Textbox(placeholder="Ask a question, e.g. What ammunition was discussed?",
                                                  show_label=False, scale=6, elem_id="qa-question", max_lines=3,
                                                  autofocus=True)
                            send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="qa-send")
                        with gr.Accordion("Filters", open=False, elem_id="qa-filters"):
                            with gr.Row():
                                source = gr.Dropdown(label="Source", choices=[("All sources", "")], value="",
                                                     scale=2)
                                since = gr.Textbox(label="From date", placeholder="YYYY-MM-DD", scale=1)
                                until = gr.Textbox(label="To date", placeholder="YYYY-MM-DD", scale=1)
                                undated = gr.Checkbox(label="Include undated articles", value=True, scale=1,
                                                      elem_id="qa-undated")
                    with gr.Column(scale=2, min_width=320):
                        sources = gr.HTML(sources_html([]), elem_id="qa-sources", js_on_load=None)
            with gr.Tab("Articles", id="articles"):
                gr.HTML('<p class="qa-sub">Add news articles to the archive: Markdown or text (with optional '
                        "front matter: title, date, source, url), HTML pages, or JSON / JSON Lines records with a "
                        f"<code>text</code> field. Up to {MAX_UPLOAD_BYTES // 2**20} MB per file. They are saved "
                        "in the corpus folder and indexed at once.</p>", js_on_load=None)
                upload = gr.File(label="Upload articles (.md .txt .html .htm .json .jsonl)", file_count="multiple",
                                 elem_id="qa-upload", height=140)
                upload_result = gr.HTML("", elem_id="qa-upload-result", js_on_load=None)

        turns = gr.State([])
        groups = gr.State([])
        chat_io = dict(inputs=[question, chatbot, turns, groups, source, since, until, undated],
                       outputs=[question, chatbot, turns, groups, sources], api_visibility="private")
        question.submit(respond, **chat_io)
        send.click(respond, **chat_io)
        chatbot.example_select(pick_example, None, question, api_visibility="private").then(respond, **chat_io)
        chatbot.clear(lambda: ([], [], sources_html([])), None, [turns, groups, sources], api_visibility="private")
        upload.upload(add_articles, upload, [upload_result, status, source], api_visibility="private").then(
            lambda: None, None, upload, api_visibility="private")
        app.load(status_and_sources, None, [status, source], api_visibility="private")
        gr.api(ask, api_name="ask")
    # Chosen on purpose (BENCHMARKS.md, "Load"): the work of an answer is serialized by the Assistant's locks
    # anyway, so a few events at a time only let streamed answers' pauses and HTTP overlap, not CPU work;
    # a bounded queue tells the 129th waiting request "queue full" instead of letting waits grow without end.
    app.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return app


def theme() -> gr.themes.Base:
    """Soft colours with the system's fonts (nothing fetched from the network)."""
    return gr.themes.Soft(font=("ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"),
                          font_mono=("ui-monospace", "SFMono-Regular", "Menlo", "monospace"))


#: The page's look, and the script that brings a source card into view when its marker is clicked.
CSS = """
.gradio-container { max-width: 1440px !important; }
#qa-header { align-items: baseline; gap: 12px; }
.qa-h1 { font-size: 1.5rem; font-weight: 700; margin: 0; }
.qa-h2 { font-size: 1.05rem; font-weight: 600; margin: 0 0 8px; }
.qa-sub { color: var(--body-text-color-subdued); margin: 2px 0 0; }
.qa-status span { white-space: nowrap; }
.qa-status { text-align: right; color: var(--body-text-color-subdued); font-size: .9rem; }
#qa-chat a[href^="#qa-src-"] { text-decoration: none; font-weight: 600; font-size: .8em; vertical-align: super;
  color: var(--color-accent); padding: 0 1px; }
#qa-sources { max-height: calc(100vh - 250px); overflow-y: auto !important; padding-right: 4px; }
.qa-sources-empty { color: var(--body-text-color-subdued); border: 1px dashed var(--border-color-primary);
  border-radius: 8px; padding: 16px; }
.qa-group { margin-bottom: 8px; }
.qa-question { font-weight: 600; margin: 4px 0 8px; cursor: pointer; }
.qa-older-label { color: var(--body-text-color-subdued); font-size: .85rem; margin: 14px 0 4px;
  border-top: 1px solid var(--border-color-primary); padding-top: 8px; }
.qa-older > .qa-question { font-weight: 500; color: var(--body-text-color-subdued); }
.qa-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px; margin: 0 0 10px;
  background: var(--background-fill-secondary); scroll-margin: 12px; transition: box-shadow .3s; }
.qa-card.qa-flash { box-shadow: 0 0 0 3px var(--color-accent); }
.qa-card-head { display: flex; gap: 8px; align-items: baseline; }
.qa-num { flex: none; background: var(--color-accent); color: white; border-radius: 10px; font-size: .8rem;
  font-weight: 700; min-width: 20px; text-align: center; padding: 0 6px; }
.qa-tag { flex: none; border: 1px solid var(--border-color-primary); border-radius: 10px; font-size: .75rem;
  padding: 0 6px; color: var(--body-text-color-subdued); }
.qa-title { font-weight: 600; }
.qa-meta { color: var(--body-text-color-subdued); font-size: .85rem; margin: 2px 0 4px; }
.qa-snippet { margin: 4px 0 0; line-height: 1.45; font-size: .92rem; }
.qa-snippet mark { background: #fff1a8; color: inherit; padding: 0 1px; border-radius: 2px; }
.qa-note { color: var(--body-text-color-subdued); }
.qa-ok { color: var(--color-green-600, #16a34a); }
.qa-bad { color: var(--color-red-600, #dc2626); }
"""

HEAD = """<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#qa-src-"]');
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const card = document.getElementById(link.getAttribute("href").slice(1));
  if (!card) return;
  const group = card.closest("details");
  if (group) group.open = true;
  const panel = document.getElementById("qa-sources");
  if (panel && panel.contains(card)) {  // the card to the top of the Sources panel, then the panel into view
    panel.scrollTop += card.getBoundingClientRect().top - panel.getBoundingClientRect().top - 8;
  }
  card.scrollIntoView({block: "nearest"});
  card.classList.remove("qa-flash");
  void card.offsetWidth;
  card.classList.add("qa-flash");
  setTimeout(() => card.classList.remove("qa-flash"), 1600);
}, true);
</script>"""


def launch(app, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT, auth: tuple[str, str] | None = None,
           prevent_thread_lock: bool = False, quiet: bool = False) -> str:
    """Serve ``app`` (from :func:`create_app`) with its style and script; returns the local URL.

    :class:`qa.guard.Guard` limits request sizes and slows down repeated failed logins, per client."""
    from starlette.middleware import Middleware

    from qa.guard import Guard

    _, url, _ = app.launch(server_name=host, server_port=port, auth=auth, prevent_thread_lock=prevent_thread_lock,
                           quiet=quiet, theme=theme(), css=CSS, head=HEAD, max_file_size=MAX_UPLOAD_BYTES,
                           footer_links=["api"], show_error=True, share=False, ssr_mode=False,
                           app_kwargs={"middleware": [Middleware(Guard)]})
    return url


# --- Command line ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    """``python app.py [--host H] [--port P] [--corpus DIR] [--index DIR] [--auth USER:PASS]``."""
    args = parse_args(argv)
    settings = Settings.from_env(corpus=args.corpus, index=args.index)
    configure_offline(settings.model)
    from qa.embedding import ModelError
    from qa.errors import IndexUnusable

    try:
        app = create_app(settings)
    except (IndexUnusable, ModelError, ValueError) as exc:
        raise SystemExit(f"qa web: error: {exc}") from None
    _log(f"serving on http://{args.host}:{args.port}" + (" (login required)" if args.auth else ""))
    launch(app, args.host, args.port, auth=args.auth)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with defaults from QA_HOST, QA_PORT and QA_AUTH; exits with a message on bad values."""
    parser = argparse.ArgumentParser(
        prog="python app.py", description="Serve the news-archive chat in the browser.",
        epilog="Environment: QA_HOST, QA_PORT, QA_AUTH (user:password), QA_CORPUS, QA_INDEX, QA_MODEL. "
               "The index is synced with the corpus folder at start (only new or changed articles are embedded).")
    parser.add_argument("--host", default=os.environ.get("QA_HOST") or DEFAULT_HOST,
                        help="address to listen on (default: 127.0.0.1, this machine only, or QA_HOST; "
                             "0.0.0.0 for all)")
    parser.add_argument("--port", type=_port, default=os.environ.get("QA_PORT") or str(DEFAULT_PORT),
                        help=f"port (default: {DEFAULT_PORT}, or QA_PORT)")
    parser.add_argument("--corpus", help="folder of articles, where uploads are saved (default: corpus, or QA_CORPUS)")
    parser.add_argument("--index", help="index folder (default: index, or QA_INDEX)")
    parser.add_argument("--auth", type=_auth, default=os.environ.get("QA_AUTH") or None,
                        help="require this login, as user:password (or QA_AUTH)")
    return parser.parse_args(argv)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number; give e.g. --port {DEFAULT_PORT}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range; use 1-65535")
    return port


def _auth(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError("must be user:password (both non-empty), e.g. --auth alice:s3cret")
    return user, password


def _log(message: str) -> None:
    print(f"qa web: {message}", file=sys.stderr, flush=True)
