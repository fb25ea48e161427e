"""The ``qa`` command: index a corpus, search it, ask it questions.

Exit codes: 0 success; 1 some articles were skipped (the rest were indexed); 2 usage or index error;
141 the output was closed early (``qa status | head -1``), as for a command ended by SIGPIPE.

Everything printed that comes from articles, file names or users has its control characters escaped
(``\x1b``, ``\u202e``): an ANSI sequence in a title could clear the screen or set the window's title.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys

from qa.config import Settings
from qa.environment import configure_offline, settings_from_env
from qa.errors import ConfigError
from qa.filters import Filters
from qa.metadata import repair


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        settings = settings_from_env(os.environ, corpus=getattr(args, "corpus", None), index=args.index,
                                    model=getattr(args, "model", None),
                                    chunk_tokens=getattr(args, "chunk_tokens", None),
                                    overlap=getattr(args, "overlap", None),
                                    follow_links=getattr(args, "follow_links", None),
                                    llm_url=getattr(args, "llm", None), llm_model=getattr(args, "llm_model", None),
                                    llm_timeout=getattr(args, "llm_timeout", None))
    except ConfigError as exc:  # a QA_* variable that is not a number: a usage error, exit 2 like the others
        print(f"qa: error: {exc}", file=sys.stderr)
        return 2
    configure_offline(settings.model)
    from qa.errors import IndexUnusable, ModelError
    from qa.files import storage_error

    try:
        return args.run(args, settings)
    except BrokenPipeError:  # the reader of our output has gone: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python exits
        return 141
    except (IndexUnusable, ModelError, ValueError) as exc:
        print(f"qa: error: {shown(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. an index folder that cannot be written, a full disk
        problem = storage_error(settings.index, exc)
        message = str(problem or f"{exc.strerror or exc}: {exc.filename or settings.index}")
        print(f"qa: error: {shown(message)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qa: interrupted; the index is as it was before this run", file=sys.stderr)
        return 130


#: Characters that change a terminal's state or the order text is shown in: C0/C1 controls, line and paragraph
#: separators, bidirectional overrides. Printed escaped; newlines are only ever the CLI's own.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")  # JSON escapes the rest


def shown(text: str) -> str:
    """``text`` safe to print on a terminal: unsafe characters escaped, text UTF-8 cannot encode replaced."""
    return _UNSAFE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), repair(text))


def _lines(text: str) -> str:
    """Several lines of the CLI's own, each made safe with :func:`shown`."""
    return "\n".join(shown(line) for line in text.split("\n"))


def _json(data: object) -> str:
    """JSON whose strings cannot hold a character that acts on the terminal (JSON escapes only C0 itself)."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m[0]):04x}", repair(text))


def _count(value: str) -> int:
    try:
        k = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number; give e.g. -k 5") from None
    if not 1 <= k <= MAX_K:
        raise argparse.ArgumentTypeError(f"{k} is out of range; give a number of passages from 1 to {MAX_K}")
    return k


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds; give e.g. --llm-timeout 60")
    return seconds


#: The most passages `qa search -k` returns: more is no longer a reading list (and each costs a lookup).
MAX_K = 1000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")

    index = commands.add_parser("index", help="bring the index in line with the corpus folder")
    index.add_argument("--corpus", help="folder of articles (default: corpus, or QA_CORPUS)")
    index.add_argument("--index", help="index folder (default: index, or QA_INDEX)")
    index.add_argument("--rebuild", action="store_true", help="start over: re-read and re-embed everything")
    index.add_argument("--model", help="sentence-transformers model name or path (default: all-MiniLM-L6-v2)")
    index.add_argument("--chunk-tokens", type=int, help="chunk size in model tokens (default: 128)")
    index.add_argument("--overlap", type=int, help="sentences shared by neighbouring chunks (default: 1)")
    index.add_argument("--follow-links", action="store_true", default=None,
                       help="index files that links in the corpus point to outside it (or QA_FOLLOW_LINKS=1)")
    index.add_argument("--allow-mass-removal", action="store_true",
                       help="let this sync remove more than half of a large index (over 100 articles) at once")
    index.add_argument("--compact", action="store_true",
                       help="only merge what past syncs left behind (small vector segments, deleted chunks)")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.set_defaults(run=_index)

    search = commands.add_parser("search", help="print the passages that best match a question")
    search.add_argument("query")
    search.add_argument("-k", type=_count, default=5, help=f"number of passages, 1-{MAX_K} (default: 5)")
    search.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    _filters(search)
    search.set_defaults(run=_search)

    ask = commands.add_parser("ask", help="answer a question with cited sentences from the articles")
    ask.add_argument("question")
    _filters(ask)
    ask.add_argument("--as-of", metavar="YYYY-MM-DD", help="the day the question is asked (default: today): later "
                     "articles are left out, and time words (\"this week\") are read from it")
    ask.add_argument("--no-time-words", dest="time_words", action="store_false",
                     help="do not prefer the days the question's time words name")
    ask.add_argument("--llm", metavar="URL", help="an OpenAI-compatible endpoint that writes the answer, e.g. "
                     "http://127.0.0.1:8080/v1 (or QA_LLM_URL; its key only as QA_LLM_API_KEY)")
    ask.add_argument("--llm-model", metavar="NAME", help="the model it serves (default: the first it lists)")
    ask.add_argument("--llm-timeout", metavar="SECONDS", type=_seconds,
                     help="how long a written answer may take before the quotes are shown (default: 60)")
    ask.set_defaults(run=_ask)

    status = commands.add_parser("status", help="what the index holds and how it was built")
    status.add_argument("--index", help="index folder (default: index, or QA_INDEX)")
    status.set_defaults(run=_status)

    migrate = commands.add_parser("migrate", help="copy the index to another backend, without re-embedding")
    migrate.add_argument("--to", required=True, help="the backend to copy to: local or milvus (docs/scaling.md); "
                         "QA_BACKEND names the one copied from")
    migrate.add_argument("--index", help="index folder (default: index, or QA_INDEX)")
    migrate.set_defaults(run=_migrate)
    return parser


def _filters(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--index", help="index folder (default: index, or QA_INDEX)")
    cmd.add_argument("--source", help="only articles from this source")
    cmd.add_argument("--since", help="only articles dated on or after this day (YYYY-MM-DD)")
    cmd.add_argument("--until", help="only articles dated on or before this day (YYYY-MM-DD)")
    cmd.add_argument("--no-undated", dest="undated", action="store_false",
                     help="with --since/--until, leave out articles that have no date (kept by default)")
    cmd.add_argument("--json", action="store_true", help="print JSON instead of text")


def _index(args: argparse.Namespace, settings: Settings) -> int:
    from qa.indexing import compact, sync

    if args.compact:
        print(shown(compact(settings)))
        return 0
    report = sync(settings=settings, rebuild=args.rebuild, progress=not args.quiet,
                  allow_mass_removal=args.allow_mass_removal)
    print(_lines(report.summary()))
    return 1 if report.skipped else 0


#: The filters' fields as the command line names them, for Filters.parse's messages.
FLAGS = {"source": "--source", "since": "--since", "until": "--until"}


def _filters_of(args: argparse.Namespace) -> dict:
    """The search filters, checked (a --since after --until would match nothing without saying why)."""
    source = repair(args.source) if args.source else None
    return {"filters": Filters.parse(source, args.since, args.until, args.undated, labels=FLAGS)}


def _search(args: argparse.Namespace, settings: Settings) -> int:
    from qa.retriever import Retriever

    filters = _filters_of(args)
    retriever = Retriever(settings.index, settings=settings)
    passages = retriever.search(repair(args.query), k=args.k, mode=args.mode, **filters)
    if args.json:
        print(_json([dataclasses.asdict(p) for p in passages]))
        return 0
    if not passages:
        print("No passages found.")
    for rank, p in enumerate(passages, start=1):
        meta = ", ".join(x for x in (p.date, p.source) if x)
        print(shown(f"{rank}. [{p.score:.3f}] {p.title}" + (f" ({meta})" if meta else "")))
        print(shown(f"   {p.article_id} [{p.start}:{p.end}]"))
        print(shown("   " + " ".join(p.text.split())))
    return 0


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from qa.assistant import assemble
    from qa.when import as_of_day

    filters = _filters_of(args)
    assistant = assemble(settings)
    as_of = as_of_day(args.as_of) if args.as_of else None  # a bad day: a FilterError (a ValueError), exit 2
    answer = assistant.ask(repair(args.question), as_of=as_of, time_words=args.time_words, **filters)
    if answer.notice:
        print(shown(f"qa: note: {answer.notice}"), file=sys.stderr)
    if args.json:
        print(_json(answer.to_dict()))
        return 0
    if assistant.writes:
        print(shown(f"{answer.author}:"))
    if answer.period:
        print(shown(f"(preferring articles of {answer.period})"))
    print(_lines(answer.text))
    for left in answer.unsupported:
        print(shown(f"(left out, {left.reason}: \"{left.text}\")"))
    if answer.citations:
        print("\nSources:")
    for c in answer.citations:
        meta = ", ".join(x for x in (c.date, c.source) if x)
        print(shown(f"[{c.number}] {c.title}" + (f" ({meta})" if meta else "")))
        print(shown(f"    \"{' '.join(c.snippet.split())}\""))
    if answer.abstained and answer.related:
        print("\nRelated passages (they do not answer the question):")
        for p in answer.related[:3]:
            print(shown(f"- {p.title}: {' '.join(p.text.split())[:200]}"))
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    """What the index holds, from its store alone: no model is loaded (that took 6.3 s and 532 MiB for a torch
    index; BENCHMARKS.md, "Encoders without torch")."""
    from qa.errors import IndexUnusable
    from qa.store import open_store

    store = open_store(settings)
    try:
        info = store.status()
    finally:
        store.close()
    m = info.manifest
    if m is None:
        raise IndexUnusable(f"the index in {settings.index} is empty; run `qa index` to fill it")
    print(shown(f"{info.articles} articles, {info.chunks} chunks in {settings.index}; updated {info.updated()}"))
    print(shown(f"model {m.model} ({m.dimension} dimensions), chunks of {m.chunk_tokens} tokens with "
                f"{m.overlap} sentence(s) overlap, layout {m.layout}"))
    print(shown(f"encoder {m.encoder}" + (f" (the settings say {settings.encoder}: the next `qa index` rebuilds "
                                          "the index)" if settings.encoder not in (None, m.encoder) else "")))
    if info.storage:
        print(f"storage: {info.storage}")
    print(f"vector search: {info.search}")
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from qa.migrate import migrate

    report = migrate(settings, args.to)
    print(shown(report.summary(settings.backend, args.to)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
