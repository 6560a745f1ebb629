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
        ("What does HTTP status 404 mean?", "What is the meaning of a 404 HTTP status code?"),
        ("How many bones are in the human body?", "How many bones does an adult human have?"),
        ("Give me ideas for a birthday party for a 10 year old.", "Birthday party ideas for a 10-year-old?"),
        # ordinals and cardinals, acronyms, synonyms
        ("What year did World War II end?", "When did the Second World War end?"),
        ("What is the 1st law of thermodynamics?", "What is the first law of thermodynamics?"),
        ("How can I become a lawyer in the US?", "How can I become a lawyer in the United States?"),
        ("What is the tallest mountain in the world?", "Which mountain is the highest on Earth?"),
        ("What is the largest ocean on Earth?", "Which ocean is the biggest on the planet?"),
        ("How many minutes does it take to walk 1 mile?", "How long does it take to walk one mile?"),
        # a one-sided extra word on a question with a specific topic is not a restriction
        ("What is the best riddle you have heard?", "What's the best riddle you've ever heard?"),
        ("How do I deal with the pain of unrequited love?", "How do I deal with unrequited love?"),
    ],
)
def test_approves_paraphrases(cached, query):
    assert guard.check(query, cached) is None
    assert guard(query, cached) is True


def test_an_entity_named_on_one_side_only_is_not_a_swap():
    # "Hillary" alone and "Hillary Clinton" name the same person: nothing replaced the surname.
    assert guard.check("How will Hillary deal with Russia?", "How will Hillary Clinton deal with Russia?") is None
    # ... but on a bare topic the added name is a restriction.
    assert guard.check("Python tutorials", "Python tutorials for Django") == "entity"


def test_repr_and_bool_verdicts():
    assert repr(guard) == "NearMissGuard()"
    assert guard("Is coffee good for you?", "Is coffee bad for you?") is False
    assert guard("Explain the rules of chess.", "What are the rules of chess?") is True
