"""Question answering over a news archive, with every claim cited to the sentence it came from.

The public API::

    from qa import Retriever, sync
    sync("corpus", "index")                     # build or update the index
    for p in Retriever.open("index").search("What ammunition was discussed?"):
        print(p.score, p.title, p.text)
"""

from qa.answer import Answer, Citation
from qa.assistant import Assistant
from qa.config import Settings
from qa.conversation import Turn
from qa.corpus import Article, Problem
from qa.errors import IndexUnusable, QAError
from qa.filters import Filters
from qa.indexing import SyncReport, sync
from qa.retriever import Passage, Retriever

__all__ = [
    "Answer", "Article", "Assistant", "Citation", "Filters", "IndexUnusable", "Passage", "Problem", "QAError",
    "Retriever", "Settings", "SyncReport", "Turn", "sync",
]
