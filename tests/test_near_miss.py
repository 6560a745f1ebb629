"""NearMissGuard on its own (no model): one veto per near-miss kind, and paraphrases it must let through."""

from __future__ import annotations

import pytest

from resilient.near_miss import NearMissGuard, near_miss

guard = NearMissGuard()


@pytest.mark.parametrize(
    "kind, cached, query",
    [
        ("number", "Summarize the top 5 risks of this plan.", "Summarize the top 3 risks of this plan."),
        ("number", "What is the 10th Fibonacci number?", "What is the 20th Fibonacci number?"),
        ("number", "What time is it in London when it's 9am in New York?",
         "What time is it in London when it's 3pm in New York?"),
        ("number", "Write a story.", "Write a 100-word story."),
        ("negation", "Which fruits can dogs eat?", "Which fruits can dogs not eat?"),
        ("negation", "How do I make a cake with eggs?", "How do I make a cake without eggs?"),
        ("negation", "Why does my code compile?", "Why doesn't my code compile?"),
        ("opposite", "How do I enable two-factor authentication on GitHub?",
         "How do I disable two-factor authentication on GitHub?"),
        ("opposite", "How do I install Homebrew on macOS?", "How do I uninstall Homebrew on macOS?"),
        ("opposite", "What is the largest planet in the solar system?",
         "What is the smallest planet in the solar system?"),
        ("order", "Convert 30 degrees Celsius to Fahrenheit.", "Convert 30 degrees Fahrenheit to Celsius."),
        ("order", "Is a dolphin bigger than a shark?", "Is a shark bigger than a dolphin?"),
        ("order", "Why did the Romans conquer the Greeks?", "Why did the Greeks conquer the Romans?"),
        ("entity", "How do I read a CSV file in Python?", "How do I read a CSV file in R?"),
        ("entity", "Best restaurants in Brooklyn.", "Best restaurants in Manhattan."),
        ("entity", "Who is the CEO of Microsoft?", "Who is the CEO of Apple?"),
        ("qualifier", "What are good names for a cat?", "What are good names for a black cat?"),
        ("qualifier", "How do I learn to swim?", "How do I learn to swim as an adult?"),
        ("qualifier", "Suggest a good laptop.", "Suggest a good laptop for video editing."),
    ],
)
def test_vetoes_each_kind_of_near_miss(kind, cached, query):
    assert guard.check(query, cached) == kind
    assert guard.check(cached, query) == kind  # either side may be the cached one
    assert guard(query, cached) is False
    assert near_miss(query, cached) == kind


@pytest.mark.parametrize(
    "cached, query",
    [
        ("How do I reverse a list in Python?", "What's the way to reverse a Python list?"),
        ("What is the capital of Australia?", "Which city is Australia's capital?"),
        ("How do I undo the last git commit?", "How can I revert my most recent commit in git?"),
        ("How many bones are in the human body?", "How many bones does an adult human have?"),
        ("Give me ideas for a birthday party for a 10 year old.", "Birthday party ideas for a 10-year-old?"),
    ],
)
def test_approves_paraphrases(cached, query):
    assert guard.check(query, cached) is None
    assert guard(query, cached) is True


def test_repr_and_bool_verdicts():
    assert repr(guard) == "NearMissGuard()"
    assert guard("Is coffee good for you?", "Is coffee bad for you?") is False
    assert guard("Explain the rules of chess.", "What are the rules of chess?") is True
