"""The web chat: ask questions, read the cited sources, manage the archive. Started by ``python app.py``.

The page has a chat whose answers stream in with ``[n]`` markers linked to numbered source cards, and an
"Articles" tab that lists the archive and adds, replaces and deletes article files (saved into the corpus folder
and indexed at once). Everything that comes from articles or users is escaped before it reaches the page. The
chat is also an API (``/ask``, ``/search``, ``/articles``) for ``gradio_client``.

- :mod:`qa.web.render`: pure functions from answers and index facts to escaped Markdown/HTML;
- :mod:`qa.web.archive`: saving uploads, deleting and syncing, and the reports of those;
- :mod:`qa.web.app`: the Gradio app put together, and which event calls which handler;
- :mod:`qa.web.startup`: what runs once at start; :mod:`qa.web.state`: the state handlers share;
- :mod:`qa.web.layout`, :mod:`qa.web.archive_layout`: the components, where they sit;
- :mod:`qa.web.handlers`, :mod:`qa.web.archive_tab`: what events do (plain functions of the state);
- :mod:`qa.web.api`: the HTTP API; :mod:`qa.web.chats`: the chats kept in the browser, feedback included;
- :mod:`qa.web.followups`: the questions suggested under an answer;
- :mod:`qa.web.cli`: ``python app.py``, its settings read through :class:`qa.config.WebSettings`.
"""

from qa.web.app import create_app, launch, open_assistant
from qa.web.archive import MAX_UPLOAD_BYTES, safe_name, save_upload
from qa.web.cli import main, parse_args
from qa.web.render import answer_markdown, escape_markdown, safe_url, sources_group, sources_html

__all__ = ["MAX_UPLOAD_BYTES", "answer_markdown", "create_app", "escape_markdown", "launch", "main",
           "open_assistant", "parse_args", "safe_name", "safe_url", "save_upload", "sources_group", "sources_html"]
