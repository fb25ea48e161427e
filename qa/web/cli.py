"""``python app.py``: the web chat's command line; defaults come from :class:`qa.config.WebSettings`."""

from __future__ import annotations

import argparse
import os

from qa.config import DEFAULT_PORT, parse_auth, parse_port
from qa.environment import configure_offline, settings_from_env, web_settings_from_env
from qa.errors import ConfigError


def main(argv: list[str] | None = None) -> None:
    """``python app.py [--host H] [--port P] [--corpus DIR] [--index DIR] [--auth USER:PASS]``."""
    args = parse_args(argv)
    try:
        settings = settings_from_env(os.environ, corpus=args.corpus, index=args.index)
        web = web_settings_from_env(os.environ)
    except ConfigError as exc:
        raise SystemExit(f"qa web: error: {exc}") from None
    configure_offline(settings.model)
    from qa.embedding import ModelError
    from qa.errors import IndexUnusable
    from qa.web.app import _log, create_app, launch

    try:
        app = create_app(settings, secret=web.secret)
    except (IndexUnusable, ModelError, ValueError) as exc:
        raise SystemExit(f"qa web: error: {exc}") from None
    _log(f"serving on http://{args.host}:{args.port}" + (" (login required)" if args.auth else ""))
    launch(app, args.host, args.port, auth=args.auth, trusted_proxies=web.trusted_proxies)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with defaults from QA_HOST, QA_PORT and QA_AUTH; exits with a message on bad values."""
    try:
        web = web_settings_from_env(os.environ)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    parser = argparse.ArgumentParser(
        prog="python app.py", description="Serve the news-archive chat in the browser.",
        epilog="Environment: QA_HOST, QA_PORT, QA_AUTH (user:password), QA_WEB_SECRET, QA_TRUSTED_PROXIES (proxies "
               "whose X-Forwarded-For is believed; none by default), QA_CORPUS, QA_INDEX, "
               "QA_MODEL (see qa/config.py). The index is synced with the corpus folder at start (only new or "
               "changed articles are embedded).")
    parser.add_argument("--host", default=web.host,
                        help="address to listen on (default: 127.0.0.1, this machine only, or QA_HOST; "
                             "0.0.0.0 for all)")
    parser.add_argument("--port", type=_port, default=web.port, help=f"port (default: {DEFAULT_PORT}, or QA_PORT)")
    parser.add_argument("--corpus", help="folder of articles, where uploads are saved (default: corpus, or QA_CORPUS)")
    parser.add_argument("--index", help="index folder (default: index, or QA_INDEX)")
    parser.add_argument("--auth", type=_auth, default=web.auth,
                        help="require this login, as user:password (or QA_AUTH)")
    return parser.parse_args(argv)


def _port(value: str) -> int:
    try:
        return parse_port(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _auth(value: str) -> tuple[str, str]:
    try:
        return parse_auth(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
