"""The search tokenizer: runs of letters and digits of the folded text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from threadline import search


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_tokens_of_ascii_text_are_the_runs_the_token_pattern_finds(text: str) -> None:
    assert search.tokens(text) == search._TOKEN.findall(text.lower())


def test_tokens_split_on_everything_but_letters_and_digits_and_fold_case() -> None:
    assert search.tokens('def check_login(user):\n\t"OK", 42') == [
        "def",
        "check",
        "login",
        "user",
        "ok",
        "42",
    ]
    assert search.tokens("Élan ĳ_x") == ["elan", "ĳ", "x"]
