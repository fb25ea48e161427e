"""Bringing an index in line with a corpus folder, embedding only what is new or changed."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from qa.chunking import Chunk, Chunker, Span
from qa.config import Settings, default_encoder
from qa.corpus import Article, Problem, list_files, read_file
from qa.embedding import Embedder, embed_chunks, model_inputs
from qa.encoders import load_embedder
from qa.errors import CorpusNotFound, MassRemoval, QAError, SettingsMismatch
from qa.files import storage_error
from qa.store import ArticleWrite, Commit, Manifest, WritableStore, open_store

__all__ = ["CorpusNotFound", "MassRemoval", "SettingsMismatch", "SyncReport", "compact", "sync"]


@dataclass
class SyncReport:
    """What one sync did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Problem] = field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        line = (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
                f"{self.unchanged} unchanged, {len(self.skipped)} skipped; "
                f"{self.chunks_embedded} chunks embedded in {self.seconds:.1f}s")
        return line + "".join(f"\n  skipped {p}" for p in self.skipped)


#: A sync that would remove more than this share of the indexed articles, and more than MASS_REMOVAL_MIN of
#: them, stops unless ``allow_mass_removal``: a corpus folder moved away while a sync waited for the lock once
#: removed all 422 articles of an index. Small indexes are exempt, so a test or a new archive can be emptied.
MASS_REMOVAL_SHARE, MASS_REMOVAL_MIN = 0.5, 100


def sync(corpus: str | Path | None = None, index: str | Path | None = None, *, settings: Settings | None = None,
         rebuild: bool = False, progress: bool = False, embedder: Embedder | None = None,
         allow_mass_removal: bool = False) -> SyncReport:
    """Make the index at ``index`` hold exactly the articles of the ``corpus`` folder.

    New and changed articles (by content hash) are chunked and embedded, deleted ones removed, duplicates
    indexed once. The change is committed atomically: a crash leaves the previous index usable, and the
    next sync finishes the job. Raises :class:`SettingsMismatch` when the index was built with another
    model or chunking and ``rebuild`` is False, and :class:`MassRemoval` when it would remove most of a large
    index (see :data:`MASS_REMOVAL_SHARE`) and ``allow_mass_removal`` is False.
    """
    settings = settings or Settings()
    corpus = Path(corpus) if corpus is not None else settings.corpus
    if index is not None:
        settings = replace(settings, index=Path(index))
    if embedder is not None:  # the embedder given is the encoder used: the index records it
        settings = replace(settings, encoder=embedder.encoder)
    try:
        return _sync(corpus, settings, rebuild, progress, embedder, allow_mass_removal)
    except (OSError, RuntimeError) as exc:  # RuntimeError: an engine's write errors
        problem = storage_error(settings.index, exc)  # a full or read-only disk is not a damaged index
        if problem is None:
            raise
        raise problem from None


def _sync(corpus: Path, settings: Settings, rebuild: bool, progress: bool, embedder: Embedder | None,
          allow_mass_removal: bool) -> SyncReport:
    started = time.perf_counter()
    index = settings.index
    store = open_store(settings, writable=True)
    try:
        with store.lock(on_wait=lambda: _log(f"waiting for another `qa index` on {index} to finish...")):
            if not corpus.is_dir():  # a mistyped path must not empty the index; checked under the lock, after a wait
                raise CorpusNotFound(f"corpus folder {corpus} not found; give an existing folder with --corpus or "
                                     "QA_CORPUS (the index was left as it was)")
            if settings.encoder is None:  # the index's own; a new or rebuilt one gets the default
                current = store.manifest
                settings = replace(settings, encoder=current.encoder if current and not rebuild
                                   else default_encoder(settings.device))
            why = None if rebuild else check_settings(store, settings)
            if why:
                _log(f"the index in {index} {why}; rebuilding it")
                rebuild = True
            if rebuild:
                # Load the model and check the chunk settings first: a bad --model or --chunk-tokens must fail
                # while the old index is still there. The old index itself is replaced in one commit.
                embedder = embedder or _embedder(settings)
                Chunker(embedder, settings.chunk_tokens, settings.overlap, embedder.max_tokens)
                store.prepare_rebuild()
            indexed = store.indexed()
            articles, kept, stats, problems, origin = _read_changed(corpus, store, indexed, rebuild,
                                                                    settings.follow_links, progress, exclude=index)
            articles, duplicates = _drop_duplicates(articles, kept, set(indexed))
            for problem in duplicates:
                _forget_file(stats, problem.path)  # read again next time: the original may go
            report = SyncReport(skipped=problems + duplicates)
            _check_removals(report, indexed, articles, kept, corpus, allow_mass_removal)
            _apply(store, indexed, articles, set(kept), embedder, settings, report, progress, rebuild, origin)
            for problem in report.skipped[len(problems) + len(duplicates):]:
                _forget_file(stats, problem.path)
            try:
                store.record_files(stats)
            except (OSError, QAError) as exc:  # the sync is committed: without the table files are re-read
                _log(f"could not record the files read ({exc}); the next sync reads them again")
    finally:
        store.close()
    report.seconds = time.perf_counter() - started
    return report


def compact(settings: Settings | None = None) -> str:
    """Merge what the deltas of past syncs left behind (``qa index --compact``); returns a line saying what."""
    settings = settings or Settings()
    store = open_store(settings, writable=True)
    try:
        with store.lock(on_wait=lambda: _log(f"waiting for another `qa index` on {settings.index} to finish...")):
            if store.manifest is None:
                return f"nothing to compact: the index in {settings.index} is empty"
            done = store.compact()
    finally:
        store.close()
    return f"compacted in {done.seconds:.1f}s: {done.before} before, {done.after} now"


def _read_changed(corpus: Path, writer: WritableStore, indexed: dict[str, tuple[str, str]], rebuild: bool,
                  follow_links: bool = False, progress: bool = False, exclude: Path | None = None
                  ) -> tuple[list[Article], dict[str, str], dict[str, tuple[int, int]], list[Problem], dict[str, str]]:
    """Read the corpus files that changed since the last sync (all of them for a rebuild).

    A file whose modification time and size are as recorded when its articles were indexed is not read
    again: its articles are kept as indexed. Returns the articles read, the kept articles (id -> text
    hash), the files' (mtime_ns, size) to record, the problems found, and the file each article read came from.
    """
    files, problems = list_files(corpus, follow_links=follow_links, exclude=exclude)
    known = {} if rebuild else writer.files()
    by_file: dict[str, list[str]] = {}
    names = {rel for rel, _ in files}
    for article_id in indexed:
        file = _file_of(article_id, names)
        if file is not None:
            by_file.setdefault(file, []).append(article_id)
    read: list[tuple[Article, str]] = []  # (article, the file it was read from)
    kept: dict[str, str] = {}
    stats: dict[str, tuple[int, int]] = {}
    todo: list[tuple[str, Path, tuple[int, int] | None]] = []
    for rel, path in files:
        try:
            st = path.stat()
            stat = (st.st_mtime_ns, st.st_size)
        except OSError:
            stat = None
        if stat is not None and known.get(rel) == stat and rel in by_file:
            kept.update((i, indexed[i][1]) for i in by_file[rel])
            stats[rel] = stat
        else:
            todo.append((rel, path, stat))
    bar = _bar(progress, sum(stat[1] for *_, stat in todo if stat), "reading", unit="B", unit_scale=True,
               at_least=READING_BAR_BYTES)
    for rel, path, stat in todo:
        done = 0

        def advance(total: int) -> None:  # called with the bytes of a large JSON Lines file read so far
            nonlocal done
            if bar is not None:
                bar.update(total - done)
            done = total

        found, trouble = read_file(path, rel, progress=advance)
        advance(stat[1] if stat else done)
        read += [(a, rel) for a in found]
        problems += trouble
        if stat is not None and found and not trouble:
            stats[rel] = stat
    if bar is not None:
        bar.close()
    articles, clashes = _drop_id_clashes(read, kept)
    for rel, problem in clashes:
        stats.pop(rel, None)  # read again next time: the other article may go
        problems.append(problem)
    return articles, kept, stats, problems, {a.id: rel for a, rel in reversed(read)}


def _drop_id_clashes(read: list[tuple[Article, str]], kept: dict[str, str]
                     ) -> tuple[list[Article], list[tuple[str, Problem]]]:
    """One article per id. Ids can collide whatever the names: record ``b.md`` of ``a.json`` and a file named
    ``a.json#b.md`` are both ``a.json#b.md`` (that made every sync, and the rebuild, fail). An id already
    indexed and unchanged keeps it, then a file's own name, then the first in path order. Returns the articles
    kept, in reading order, and (file, problem) for the others."""
    taken = set(kept)
    dropped: set[int] = set()
    clashes: list[tuple[str, Problem]] = []
    for n, (article, rel) in sorted(enumerate(read), key=lambda x: (x[1][0].id != x[1][1], x[1][0].id, x[0])):
        if article.id in taken:
            where = article.id if article.id == rel else f"{article.id} (a record of {rel})"
            clashes.append((rel, Problem(where, "another article already has this id (a file's name, or a "
                                                "record's file#id); rename the file or change the record's id")))
            dropped.add(n)
            continue
        taken.add(article.id)
    return [a for n, (a, _) in enumerate(read) if n not in dropped], clashes


def _check_removals(report: SyncReport, indexed: dict, articles: list[Article], kept: dict, corpus: Path,
                    allow: bool) -> None:
    """Raise :class:`MassRemoval` before any work when the sync would remove most of a large index."""
    current = {a.id for a in articles} | set(kept)  # as _apply counts them: unreadable files' articles go too
    removed = sum(1 for i in indexed if i not in current)
    if allow or removed <= MASS_REMOVAL_MIN or removed <= MASS_REMOVAL_SHARE * len(indexed):
        return
    raise MassRemoval(
        f"this sync would remove {removed:,} of the {len(indexed):,} indexed articles, which usually means that "
        f"{corpus} is not the folder the index was built from, or is incomplete (a disk not mounted, a folder "
        "moved or half copied). The index was left as it was. If you did delete those articles, run `qa index "
        "--allow-mass-removal`.")


def _forget_file(stats: dict[str, tuple[int, int]], article_id: str) -> None:
    """Drop the file of ``article_id`` from ``stats``, so that the next sync reads it again."""
    file = _file_of(article_id, stats)
    if file is not None:
        del stats[file]


def _file_of(article_id: str, files: Iterable[str]) -> str | None:
    """The corpus file an article id belongs to: the id itself, or what precedes a ``#<record>``."""
    if article_id in files:
        return article_id
    at = article_id.find("#")
    while at >= 0:
        if article_id[:at] in files:
            return article_id[:at]
        at = article_id.find("#", at + 1)
    return None


def _apply(writer: WritableStore, before: dict[str, tuple[str, str]], articles: list[Article], kept: set[str],
           embedder: Embedder | None, settings: Settings, report: SyncReport, progress: bool,
           rebuild: bool = False, origin: dict[str, str] | None = None) -> None:
    indexed = {} if rebuild else before  # a rebuild embeds everything again, replacing the old in one commit
    current = {a.id for a in articles} | kept
    report.removed = sorted(i for i in before if i not in current)
    todo = [a for a in articles if a.id not in indexed or indexed[a.id][0] != a.hash]
    report.updated = sorted(a.id for a in todo if a.id in indexed)
    report.added = sorted(a.id for a in todo if a.id not in indexed)
    report.unchanged = len(kept) + len(articles) - len(todo)
    current_manifest = writer.manifest
    if not todo and not report.removed and current_manifest is not None:
        return  # nothing to do: the model is not even loaded
    embedder = embedder or _embedder(settings)
    manifest = Manifest(settings.model, embedder.dimension, settings.chunk_tokens, settings.overlap,
                        encoder=embedder.encoder)
    if not rebuild and current_manifest is not None and current_manifest.differences(manifest):
        raise SettingsMismatch(mismatch_message(settings.index, current_manifest, manifest))
    chunker = Chunker(embedder, settings.chunk_tokens, settings.overlap, embedder.max_tokens)
    added: list[tuple[Article, list[Span], list[Chunk]]] = []
    chunk_texts: list[str] = []
    spans: list[list[tuple[int, int]]] = []  # per chunk: the sentences it is first to hold, in embed-text offsets
    bar = _bar(progress, len(todo), "chunking", unit="article", at_least=CHUNKING_BAR_ARTICLES)
    for article in list(todo):
        if bar is not None:
            bar.update(1)
        try:
            sentences, chunks = chunker.split(article)
            title = chunker.embed_title(article.title)
        except Exception as exc:  # one article the chunker cannot take must not stop the sync of the others
            _not_indexed(article, f"could not be split into chunks ({exc.__class__.__name__}: {exc}); please "
                                  "report this article as a bug", report, todo)
            continue
        added.append((article, sentences, chunks))
        texts, chunk_spans = model_inputs(title, sentences, chunks)
        chunk_texts += texts
        spans += chunk_spans
    if bar is not None:
        bar.close()
    vectors, sentence_vectors = embed_chunks(embedder, chunk_texts, spans, progress)
    report.chunks_embedded = len(chunk_texts)
    writes, chunk_at, sentence_at = [], 0, 0
    for article, sentences, chunks in added:
        writes.append(ArticleWrite(article, tuple(sentences), tuple(chunks), vectors[chunk_at:chunk_at + len(chunks)],
                                   sentence_vectors[sentence_at:sentence_at + len(sentences)],
                                   (origin or {}).get(article.id)))
        chunk_at, sentence_at = chunk_at + len(chunks), sentence_at + len(sentences)
    writer.commit(Commit(manifest, tuple(report.removed + report.updated), tuple(writes), fresh=rebuild))


def _not_indexed(article: Article, reason: str, report: SyncReport, todo: list[Article]) -> None:
    """Leave ``article`` out of this sync (an indexed older version stays) and report why."""
    todo.remove(article)
    for ids in (report.added, report.updated):
        if article.id in ids:
            ids.remove(article.id)
    report.skipped.append(Problem(article.id, reason))


#: Reading and chunking show a progress bar (with ``progress``) past these sizes; below, they take a second or
#: two. On 2,960 long articles the first minute of a sync was silent: only embedding had a bar.
READING_BAR_BYTES, CHUNKING_BAR_ARTICLES = 8 * 2**20, 200


def _bar(progress: bool, total: int, desc: str, at_least: int, **options):
    """A tqdm bar on stderr for a step of ``total`` units, when asked for and the step is long enough."""
    if not progress or total < at_least:
        return None
    from qa.progress import bar

    return bar(total, desc, **options)


def _drop_duplicates(articles: list[Article], kept: dict[str, str], indexed: set[str]
                     ) -> tuple[list[Article], list[Problem]]:
    """Keep one article per text: a kept one first, then the copy already indexed, then the first by id."""
    first: dict[str, str] = {text_hash: article_id for article_id, text_hash in sorted(kept.items(), reverse=True)}
    chosen: dict[str, Article] = {}
    for article in sorted(articles, key=lambda a: (a.id not in indexed, a.id)):
        if article.text_hash not in first:
            chosen.setdefault(article.text_hash, article)
    keep = [a for a in articles if chosen.get(a.text_hash) is a]
    problems = [Problem(a.id, f"same text as {first.get(a.text_hash) or chosen[a.text_hash].id}; indexed once")
                for a in articles if chosen.get(a.text_hash) is not a]
    return keep, problems


def check_settings(store: WritableStore, settings: Settings) -> str | None:
    """Raise :class:`SettingsMismatch` before any work if the index was built with other settings.

    Why the index must be rebuilt when only its layout (another version of qa wrote it) or its encoder differs
    (its vectors would not mix with the new ones): the index is derived from the corpus, so it is simply rebuilt.
    None when it can be brought up to date.
    """
    current = store.manifest
    if current is None:
        return None
    wanted = Manifest(settings.model, current.dimension, settings.chunk_tokens, settings.overlap)
    if current.differences(wanted):
        raise SettingsMismatch(mismatch_message(settings.index, current, wanted))
    if current.layout != store.layout:
        return "was written in another format by another version of qa"
    if current.encoder != settings.encoder:
        return (f"was embedded by the {current.encoder} encoder and the settings say {settings.encoder} "
                "(QA_ENCODER); vectors of two encoders are never mixed")
    return None


def _embedder(settings: Settings) -> Embedder:
    return load_embedder(settings.model, settings.batch_size, settings.device, settings.encoder,
                         settings.encoder_cache)


def mismatch_message(index: Path, current: Manifest, wanted: Manifest) -> str:
    return (f"the index in {index} was built with other settings ({'; '.join(current.differences(wanted))}). "
            f"Run `qa index --rebuild` to rebuild it with the new settings, or keep the old ones "
            f"(--model {current.model} --chunk-tokens {current.chunk_tokens} --overlap {current.overlap}).")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
