"""Suggested follow-ups name what the articles are about, not who reported them (qa/web/followups.py)."""

from qa.web.followups import _names


def test_the_outlet_that_reported_is_not_suggested():
    assert _names("Earlier, Bloomberg reported that South Korea changed its mind about supplying weapons.") == [
        "South Korea"]
    assert _names("The talks, according to Kyiv Independent, went well for Rustem Umerov.") == ["Rustem Umerov"]


def test_people_and_places_are_suggested():
    assert _names("Officials met Rustem Umerov in Seoul on Wednesday.") == ["Rustem Umerov", "Seoul"]
