"""The default answerer, which quotes: candidates -> features -> model -> composer.

It writes nothing of its own: an answer is sentences of the articles, each cited, or a refusal. A question's path
through it, in order:

1. ``candidates.py`` -- :func:`~qa.answering.candidates.gather`: one search and one query embedding for a reading
   of the question; every sentence of the passages found (with its stored vector) is a
   :class:`~qa.answering.candidates.Candidate`, and so is a headline that could answer. All of it is one frozen
   :class:`~qa.answering.candidates.Evidence`; no answerer calls back into the retriever.
2. ``features.py`` -- what the answerer knows about each candidate: one small function per feature, each taking a
   :class:`~qa.answering.features.Scene` (the question, its evidence, the candidates an answer may quote) and
   returning one number per candidate. :data:`~qa.answering.features.FEATURES` lists them;
   :func:`~qa.answering.features.table` stacks them, one row per candidate.
3. ``model.py`` (and ``ranker.json`` beside it) -- the fitted model: a logistic regression over that table, the
   probability that a sentence holds the answer, and the threshold under which the answer is refused. ``make
   train`` writes ``ranker.json``; a file fitted on other features than ``FEATURES`` is refused.
4. ``composer.py`` -- :class:`~qa.answering.composer.ExtractiveAnswerer`: ``stage`` keeps the candidates an answer
   may quote (no question, a headline only when it states the asked-for kind of answer) as the scene, ``judge``
   scores them with the model, ``answer`` quotes the best sentence and up to two more, joins the citations of
   articles that say the same, says when they give different figures and what the question asks that they do
   not say; it refuses below the threshold, and abstains, quoting it, when the best sentence says the fact is not
   known.

Helpers of the features: ``terms.py`` (stems, a word's other forms, stop words: what "holds a question's term"
means) and ``unsaid.py`` (what the question asks that the evidence does not say, by kind: five features, and the
"Not said in these articles" line). Shared with the rest of ``qa`` and so outside this package: ``qa.asked`` (the
kind of answer a question asks for; also ``qa.conversation``'s, which the candidates read), ``qa.facts`` (numbers,
dates, names and places in a sentence; also the written answers' check), ``qa.when`` (time words) and ``qa.answer``
(the :class:`~qa.answer.Answer` returned). Users: ``qa.assistant`` (gathers, judges each reading with the
composer, answers) and ``qa.written`` (a language model writes from the same evidence); ``bench/train.py`` fits
the model.

To add a feature:

1. In ``features.py``, write one function ``def name(s: Scene) -> np.ndarray`` with a one-line docstring: one value
   per candidate of ``s.candidates`` (their texts are ``s.texts``). A value several features share belongs on
   :class:`~qa.answering.features.Scene` as a cached property.
2. Add it to :data:`~qa.answering.features.FEATURES` (its names, in order, are the model's). Until step 4 the
   committed model is refused (``ModelFileError``: no answerer starts), and ``tests/test_features.py`` says so.
3. In ``tests/test_features.py``, a test of it on a few sentences through ``scene(...)``:
   ``column(s, features.name) == [...]``. No model and no index: ``pytest tests/test_features.py``.
4. ``make train``: refits ``ranker.json`` on the dev sets (the real-news dev set is prepared outside the
   repository: bench/realnews.py; ``python -m bench.train --dry-run`` reports without writing).
5. Read the table it prints: per dev set, the share of answerable questions whose first sentence holds the answer,
   the shares refused, and each feature's coefficient, the new one's among them. ``make realnews`` gives dev and
   check (2025) side by side: choose on dev, report check. Keep the feature only if dev is better; then ``make
   baseline`` takes the answers it moved into ``tests/baseline.jsonl``, committed with ``ranker.json``.
"""
