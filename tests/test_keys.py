"""``.env`` parsing for :mod:`resilient.keys`: python-dotenv's syntax for one-line values.

Fake keys are built by concatenation so that this file holds nothing a secret
scanner would flag.
"""

from __future__ import annotations

import logging

import pytest

from resilient.keys import keys_from_env, read_dotenv

A = "sk-" + "first-" + "a" * 20 + "1111"
B = "sk-" + "second-" + "b" * 20 + "2222"
C = "sk-" + "third-" + "c" * 20 + "3333"


def parse(tmp_path, text: str, **kw) -> dict[str, str]:
    path = tmp_path / ".env"
    path.write_text(text, encoding=kw.get("encoding", "utf-8"), newline=kw.get("newline"))
    return read_dotenv(path)


def test_a_byte_order_mark_does_not_lose_the_first_line(tmp_path) -> None:
    values = parse(tmp_path, f"DEMO_API_KEY={A}\nDEMO_API_KEY_2={B}\n", encoding="utf-8-sig", newline="\r\n")

    assert values == {"DEMO_API_KEY": A, "DEMO_API_KEY_2": B}


def test_keys_from_env_finds_the_first_key_of_a_file_with_a_byte_order_mark(tmp_path) -> None:
    (tmp_path / ".env").write_text(f"DEMO_API_KEY={A}\n", encoding="utf-8-sig")

    assert keys_from_env("DEMO_API_KEY", environ={}, dotenv=tmp_path / ".env") == [("DEMO_API_KEY", A)]


@pytest.mark.parametrize("blank", [" ", "\t", "  \t "])
def test_export_may_be_followed_by_any_blanks(tmp_path, blank: str) -> None:
    assert parse(tmp_path, f"export{blank}DEMO_API_KEY={A}\n") == {"DEMO_API_KEY": A}


@pytest.mark.parametrize("comment", [" # note", "\t# note", " \t #note", "  #"])
def test_an_inline_comment_after_an_unquoted_value_starts_at_a_blank_and_hash(tmp_path, comment: str) -> None:
    assert parse(tmp_path, f"DEMO_API_KEY={A}{comment}\n") == {"DEMO_API_KEY": A}


def test_a_hash_inside_an_unquoted_value_is_part_of_it(tmp_path) -> None:
    assert parse(tmp_path, "DEMO_API_KEY=abc#def\n") == {"DEMO_API_KEY": "abc#def"}


@pytest.mark.parametrize("quote", ["'", '"'])
def test_a_quoted_value_keeps_hashes_and_blanks_and_may_be_followed_by_a_comment(tmp_path, quote: str) -> None:
    line = f"DEMO_API_KEY = {quote}{A} #not a comment{quote}\t# a comment\n"

    assert parse(tmp_path, line) == {"DEMO_API_KEY": f"{A} #not a comment"}


def test_escapes_are_decoded_in_double_quotes_only(tmp_path) -> None:
    text = 'D="a\\tb\\"c\\\\d\\x"\n' "S='a\\tb\\'c\\\\d'\n"

    assert parse(tmp_path, text) == {"D": 'a\tb"c\\d\\x', "S": "a\\tb'c\\d"}


def test_a_line_with_an_unterminated_quote_is_skipped_with_a_warning_naming_only_its_number(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="resilient.keys")

    values = parse(tmp_path, f"DEMO_API_KEY_1={A}\nDEMO_API_KEY_2=\"{B}\nDEMO_API_KEY_3={C}\n")

    assert values == {"DEMO_API_KEY_1": A, "DEMO_API_KEY_3": C}
    assert "line 2" in caplog.text
    assert B not in caplog.text and B[3:-4] not in caplog.text


def test_a_comment_after_the_equals_sign_is_an_empty_value_not_a_key(tmp_path) -> None:
    assert parse(tmp_path, "DEMO_API_KEY= # fill me in\n") == {"DEMO_API_KEY": ""}


def test_comment_and_malformed_lines_are_ignored(tmp_path) -> None:
    text = f"# keys\n   # indented comment\n\nnot a binding\n1BAD={B}\nDEMO_API_KEY={A}\n"

    assert parse(tmp_path, text) == {"DEMO_API_KEY": A}


# What python-dotenv reads, when it is installed: the reference for every line both accept.
AGREED = [
    f"DEMO_API_KEY={A}",
    f"export DEMO_API_KEY={A}",
    f"export\tDEMO_API_KEY={A}",
    f"DEMO_API_KEY = {A}",
    f"DEMO_API_KEY={A} # comment",
    f"DEMO_API_KEY={A}\t# comment",
    f"DEMO_API_KEY={A}#no-comment",
    f"DEMO_API_KEY='{A}' # comment",
    f'DEMO_API_KEY="{A}"\t#comment',
    f"DEMO_API_KEY='{A} # kept'",
    f'DEMO_API_KEY="{A}\\n"',
    "DEMO_API_KEY='a\\'b\\\\c\\n'",
    "DEMO_API_KEY=",
    "DEMO_API_KEY=''",
    f"  DEMO_API_KEY={A}  ",
]


@pytest.mark.parametrize("line", AGREED)
def test_reads_what_python_dotenv_reads(tmp_path, line: str) -> None:
    dotenv = pytest.importorskip("dotenv")
    path = tmp_path / ".env"
    path.write_text(line + "\n", encoding="utf-8")

    assert read_dotenv(path) == dotenv.dotenv_values(path)
