from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.git.refs import PushRefused, RefUpdate, deploy_target, parse_updates

OLD = "a" * 40
NEW = "b" * 40
ZERO = "0" * 40


def test_the_last_line_counts_even_without_a_newline() -> None:
    updates = parse_updates(f"{OLD} {NEW} refs/heads/master\n{ZERO} {NEW} refs/heads/main")
    assert updates == [
        RefUpdate(OLD, NEW, "refs/heads/master"),
        RefUpdate(ZERO, NEW, "refs/heads/main"),
    ]
    assert deploy_target(updates).ref == "refs/heads/main"


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/heads/master"])
def test_main_and_master_deploy(ref: str) -> None:
    assert deploy_target(parse_updates(f"{ZERO} {NEW} {ref}\n")).new == NEW


def test_another_branch_is_refused_with_a_hint() -> None:
    with pytest.raises(PushRefused) as refused:
        deploy_target(parse_updates(f"{ZERO} {NEW} refs/heads/feature\n"))
    assert refused.value.message == "Push to main (or master) to deploy; you pushed feature."


def test_a_tag_is_refused() -> None:
    with pytest.raises(PushRefused, match="you pushed refs/tags/v1"):
        deploy_target(parse_updates(f"{ZERO} {NEW} refs/tags/v1\n"))


def test_one_bad_ref_refuses_the_whole_push() -> None:
    text = f"{OLD} {NEW} refs/heads/main\n{ZERO} {NEW} refs/heads/feature\n"
    with pytest.raises(PushRefused):
        deploy_target(parse_updates(text))


def test_deletes_and_empty_pushes_are_refused() -> None:
    with pytest.raises(PushRefused, match="Deleting main is not allowed"):
        deploy_target(parse_updates(f"{OLD} {ZERO} refs/heads/main\n"))
    with pytest.raises(PushRefused, match="Nothing to deploy"):
        deploy_target(parse_updates("\n"))


def test_garbage_input_is_an_error() -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_updates("not a ref update\n")


@given(
    st.lists(
        st.tuples(
            st.text("0123456789abcdef", min_size=40, max_size=40),
            st.text("0123456789abcdef", min_size=40, max_size=40),
            st.sampled_from(["refs/heads/main", "refs/heads/master", "refs/heads/x"]),
        ),
        max_size=5,
    ),
    st.booleans(),
)
def test_parse_reads_back_what_git_writes(
    rows: list[tuple[str, str, str]], trailing_newline: bool
) -> None:
    text = "\n".join(" ".join(row) for row in rows) + ("\n" if trailing_newline else "")
    assert parse_updates(text) == [RefUpdate(*row) for row in rows]
