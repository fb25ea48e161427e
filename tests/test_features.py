"""Each feature of the answer ranker on small examples (no model, no index), the ranker's file, and time words."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa.answering import features
from qa.answering.candidates import TITLE, Candidate, Evidence
from qa.answering.composer import stage
from qa.answering.model import MODEL_FILE, ModelFileError, Ranker, load
from qa.conversation import Reading, Turn
from qa.errors import FilterError
from qa.store import Passage, Sentence
from qa.when import Period, as_of_day, period


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=8)
    return v / np.linalg.norm(v)


def scene(question: str, sentences: list[str], dates: list[str | None] | None = None, as_of: str | None = None,
          when: Period | None = None, title: str = "Port news", history: tuple[Turn, ...] = ()) -> features.Scene:
    """Each sentence in a passage of its own (the first found first), with made-up vectors."""
    dates = dates or [None] * len(sentences)
    passages, candidates = [], []
    for i, (text, date) in enumerate(zip(sentences, dates, strict=True)):
        p = Passage(1.0 - i / 10, title, date, None, None, f"a{i}", i, 0, len(text), text)
        passages.append(p)
        part = TITLE if text == title else "text"
        sentence = Sentence(f"a{i}", -1 if part == TITLE else i, 0, len(text), text, unit(i))
        candidates.append(Candidate(sentence, p, part))
    evidence = Evidence(question, Reading(question, question, False), unit(0), passages,
                        np.linspace(0.8, 0.4, len(passages)), candidates, history, period=when, as_of=as_of)
    return stage(evidence)


def column(s: features.Scene, feature) -> list[float]:
    return [float(x) for x in feature(s)]


def test_every_feature_gives_one_number_per_candidate():
    s = scene("How many dockworkers walked out?", ["About 4,300 dockworkers walked out on Monday.",
                                                   "The strike closed the port.", "It was the first in years."])
    table = features.table(s)
    assert table.shape == (3, len(features.FEATURES)) and np.isfinite(table).all()
    assert features.NAMES == tuple(f.__name__ for f in features.FEATURES)


def test_typed_and_untyped_strict_say_whether_the_asked_for_kind_is_stated():
    s = scene("How many dockworkers walked out?",
              ["About 4,300 dockworkers walked out.", "The strike closed the port."])
    assert column(s, features.typed) == [1.0, 0.0]
    assert column(s, features.untyped_strict) == [0.0, 1.0]
    other = scene("What did the union say about the talks?", ["The union said 4,300 members voted."])
    assert column(other, features.typed) == [0.0] and column(other, features.untyped_strict) == [0.0]


def test_a_share_is_no_count_for_how_many():
    """"How many soldiers ...?" counts soldiers: "82% oppose" states no count (it had been quoted as a second sentence
    of the seed answer about North Korea's troops); a share question, or one counting points, still takes a share."""
    texts = ["82% oppose sending weapons to Ukraine.", "North Korea sent over 10,000 troops to Russia."]
    assert column(scene("How many North Korean soldiers are in Russia?", texts), features.typed) == [0.0, 1.0]
    assert column(scene("What share of South Koreans oppose sending weapons?", texts), features.typed) == [1.0, 1.0]
    assert column(scene("How many percentage points did the rate rise?", ["It rose 0.25 percent."]),
                  features.typed) == [1.0]
    assert column(scene("How much did the rate rise?", ["It rose 0.25 percent."]), features.typed) == [1.0]


def test_asked_thing_measures_each_sentences_likest_name_from_the_likest_of_all():
    texts = ["Ford recalled 112,000 vehicles, NHTSA said.", "The NHTSA said so.", "no names here at all.",
             "Ford's rival Honda did not comment."]
    s = scene("Which automaker recalled 112,000 vehicles?", texts)
    fitted = stage(replace(s.evidence, fits={"ford": 0.4, "nhtsa": 0.1, "honda": 0.5}))
    assert column(fitted, features.asked_thing) == pytest.approx([-0.1, -0.4, -0.5, 0.0])  # from the likest
    named = scene("Which automaker joined Ford in recalling vehicles?", texts)  # its own names are no answer
    named = stage(replace(named.evidence, fits={"ford": 0.4, "nhtsa": 0.1, "honda": 0.5}))
    assert column(named, features.asked_thing) == pytest.approx([-0.4, -0.4, -0.5, 0.0])
    unnamed = stage(replace(scene("Who recalled 112,000 vehicles?", texts).evidence, fits={"ford": 0.4}))
    assert column(unnamed, features.asked_thing) == [0.0] * 4  # no asked-for noun
    counted = stage(replace(scene("What percentage of vehicles did Ford recall?", texts).evidence, fits={"honda": 0.5}))
    assert counted.noun and column(counted, features.asked_thing) == [0.0] * 4  # a number answers it, not a name


def test_anchored_wants_the_value_next_to_a_question_word():
    s = scene("How many flights were cancelled?", ["Airlines cancelled 412 flights on Tuesday.",
                                                   "In 2019, the airport opened a terminal."])
    assert column(s, features.anchored) == [1.0, 0.0]


def test_coverage_counts_word_forms_and_exact_only_stems():
    s = scene("Who handled the otterhound?", ["Her handler, Lucia Moretti, led the otterhound.", "The show ended."])
    cover, exact = column(s, features.coverage), column(s, features.exact)
    assert cover[0] > exact[0] > 0 and cover[1] == exact[1] == 0


def test_reason_and_named_place_only_for_their_kinds():
    why = scene("Why did the members walk out?", ["They walked out because pay was cut.", "They walked out."])
    assert column(why, features.reason) == [1.0, 0.0]
    where = scene("Where did the ship run aground?", ["The ship ran aground off Skerry Point.",
                                                      "The ship ran aground in the approaches to the port."])
    assert column(where, features.named_place) == [1.0, 0.0]
    assert column(why, features.named_place) == [0.0, 0.0]


def test_passage_rank_lead_and_headline():
    s = scene("Who won the election?", ["Rosalind Achebe wins third term", "Achebe won with 52% of the vote.",
                                        "Turnout was high."], title="Rosalind Achebe wins third term")
    assert column(s, features.passage_rank) == [1.0, 0.5, pytest.approx(1 / 3)]
    assert column(s, features.headline) == [1.0, 0.0, 0.0]
    assert column(s, features.lead)[0] == 1.0 and column(s, features.lead)[2] == pytest.approx(1 / 3)
    assert len(set(column(s, features.best_passage))) == 1


def test_dangling_superseded_and_unknown():
    s = scene("How many people were treated?", ["However, 17 people were treated.",
                                                "The article also said that 17 people were treated.",
                                                "The hospital has not said how many people were treated."])
    assert column(s, features.dangling) == [1.0, 0.0, 0.0]
    assert column(s, features.superseded) == [0.0, 1.0, 0.0]
    assert column(s, features.unknown) == [0.0, 0.0, 1.0]


def test_age_and_period_are_measured_from_the_day_asked():
    when = period("What happened this week?", dt.date(2024, 3, 8))
    s = scene("What happened this week?", ["A strike began.", "A strike ended.", "Talks resumed."],
              ["2024-03-07", "2023-03-08", None], as_of="2024-03-08", when=when)
    assert column(s, features.in_period) == [1.0, 0.0, 0.0]
    age = column(s, features.age)
    assert 0 < age[0] < 0.2 and age[1] == pytest.approx(np.log1p(366) / np.log(366)) and age[2] == 0.0
    # without a day asked, age is counted from the evidence's newest article
    s = scene("What happened?", ["A strike began.", "A strike ended."], ["2024-03-07", "2024-03-01"])
    assert column(s, features.age)[0] == 0.0 < column(s, features.age)[1]


def test_what_the_question_asks_that_is_not_said_is_a_feature_per_kind():
    s = scene("How many Quillfeather employees work in Salvern Bay?", ["The firm employs 640 people in Dunmore."])
    assert column(s, features.absent) == [2.0]  # neither name is in the evidence
    died = scene("How many soldiers have died in Kursk?", ["Kursk has seen 10,000 soldiers deployed."])
    assert column(died, features.unstated) == [1.0] and column(died, features.absent) == [0.0]
    year = scene("Who won the election in 2020?", ["Achebe won the election."], ["2024-11-06"])
    assert column(year, features.other_time) == [1.0]
    counted = scene("How many dockworkers walked out?", ["About 4,300 people attended the rally."])
    assert column(counted, features.uncounted) == [1.0]


def test_cosine_and_passage_cosine_measure_the_query_against_the_sentence_and_its_passage():
    s = scene("What did the union say?", ["The union said it would strike.", "The port closed.", "Talks resumed."])
    cos = column(s, features.cosine)
    assert cos[0] == pytest.approx(1.0) and max(cos[1:]) < 0.5  # scene() gives the first sentence the query's vector
    assert column(s, features.passage_cosine) == pytest.approx([0.8, 0.6, 0.4])  # scene()'s passage similarities


def test_role_elsewhere_when_the_role_is_another_s_or_never_named():
    s = scene("Who is the president of Ukraine?", ["The minister met President Yoon Suk-yeol on Monday.",
                                                    "The President of South Korea, Yoon Suk-yeol, arrived.",
                                                    "President Volodymyr Zelensky of Ukraine spoke."])
    assert column(s, features.role_elsewhere) == [1.0, 0.0, 0.0]  # Yoon is South Korea's president
    capital = scene("What is the capital of Veldora?", ["Veldora's largest city is Port Amsel."])
    assert column(capital, features.role_elsewhere) == [1.0]  # no sentence calls any place its capital


def test_repeated_is_what_an_earlier_answer_quoted():
    sentences = ["The union said it would strike.", "Talks resumed on Friday."]
    earlier = (Turn("user", "What did the union say?"), Turn("assistant", "The union said it would\nstrike. [1]"))
    followup = scene("What did the union say then?", sentences, history=earlier)
    assert column(followup, features.repeated) == [1.0, 0.0]  # whitespace aside
    alone = scene("What did the union say then?", sentences)
    assert column(alone, features.repeated) == [0.0, 0.0]


def test_length_is_log_words_over_log_100():
    s = scene("What happened?", ["Ships sailed.", " ".join(["Ships sailed on Monday."] * 25)])
    assert column(s, features.length) == pytest.approx([np.log(3) / np.log(100), np.log(101) / np.log(100)])


def test_every_feature_has_an_example_test_of_its_own():
    """How a feature is added (qa/answering/__init__.py): one function, one line in FEATURES, and a test here that
    reads its column on a few sentences."""
    text = Path(__file__).read_text(encoding="utf-8")
    untested = [n for n in features.NAMES if not re.search(rf"column\(\w+, features\.{n}\)", text)]
    assert not untested, f"features without an example test in tests/test_features.py: {untested}"


def test_the_committed_ranker_matches_the_features():
    model = load()
    assert model.names == features.NAMES and 0 < model.threshold < 1
    assert len(model.coef) == len(features.FEATURES) and model.about


def test_a_ranker_file_for_other_features_is_refused(tmp_path):
    data = json.loads(MODEL_FILE.read_text())
    data["names"] = data["names"][:-1] + ["something_else"]
    (tmp_path / "ranker.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="make train"):
        load(tmp_path / "ranker.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ModelFileError, match="cannot be read"):
        load(tmp_path / "broken.json")


def test_ranker_probabilities_follow_its_coefficients():
    r = Ranker(("a", "b"), np.zeros(2), np.ones(2), np.array([1.0, -1.0]), 0.0, 0.5)
    p = r.probabilities(np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
    assert p[0] > 0.5 > p[1] and p[2] == pytest.approx(0.5)
    assert Ranker.from_dict(r.to_dict()).coef.tolist() == [1.0, -1.0]


@pytest.mark.parametrize("question, since, until", [
    ("What happened this week?", "2024-12-06", "2024-12-13"),
    ("Who spoke yesterday?", "2024-12-12", "2024-12-12"),
    ("Who won on Sunday?", "2024-12-08", "2024-12-09"),
    ("What was announced last week?", "2024-11-29", "2024-12-06"),
    ("Which firm recently bought Quillfeather?", "2024-11-12", "2024-12-13"),
    ("What happened in early December 2024?", "2024-12-01", "2024-12-10"),
    ("What happened in late November?", "2024-11-21", "2024-11-30"),
    ("What did the bank do last month?", "2024-11-01", "2024-11-30"),
    ("How many jobs were cut so far this year?", "2024-01-01", "2024-12-13"),
])
def test_time_words_become_days(question, since, until):
    found = period(question, dt.date(2024, 12, 13))
    assert found is not None and (found.since, found.until) == (since, until)
    assert found.describe().startswith(f"{since} to {until}" if since != until else since)


@pytest.mark.parametrize("question", ["Who won the 2024 election?", "It may rain in may?", "What did Mayor Dunn say?"])
def test_a_question_without_time_words_has_no_period(question):
    assert period(question, dt.date(2024, 12, 13)) is None


def test_as_of_is_checked():
    assert as_of_day("2024-12-13") == dt.date(2024, 12, 13)
    assert as_of_day(None, today=dt.date(2020, 1, 1)) == dt.date(2020, 1, 1)
    with pytest.raises(FilterError, match="YYYY-MM-DD"):
        as_of_day("13/12/2024")
    assert Period("2024-12-06", "2024-12-13", "this week").holds("2024-12-06T10:00") is True
    assert Period("2024-12-06", "2024-12-13", "this week").holds(None) is False
