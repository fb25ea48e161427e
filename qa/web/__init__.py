"""The web chat: ask questions, read the cited sources, manage the archive. Started by ``python app.py``.

The page has a chat whose answers stream in with ``[n]`` markers linked to numbered source cards, and an
"Articles" tab that lists the archive and adds, replaces and deletes article files (saved into the corpus folder
and indexed at once). Everything that comes from articles or users is escaped before it reaches the page. The
chat is also an API (``/ask``, ``/search``, ``/articles``) for ``gradio_client``.

- :mod:`qa.web.render`: pure functions from answers and index facts to escaped Markdown/HTML;
- :mod:`qa.web.archive`: saving uploads, deleting and syncing, and the reports of those;
- :mod:`qa.web.app`: the Gradio app put together (its docstring says which module holds what);
- :mod:`qa.web.cli`: ``python app.py``, its settings read through :class:`qa.config.WebSettings`.
"""

from qa.web.app import create_app, launch, open_assistant
from qa.web.archive import MAX_UPLOAD_BYTES, safe_name, save_upload
from qa.web.cli import main, parse_args
from qa.web.render import answer_markdown, escape_markdown, safe_url, sources_group, sources_html

__all__ = ["MAX_UPLOAD_BYTES", "answer_markdown", "create_app", "escape_markdown", "launch", "main",
           "open_assistant", "parse_args", "safe_name", "safe_url", "save_upload", "sources_group", "sources_html"]
