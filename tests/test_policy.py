"""Policies: validated fields, atomic updates; describe() walks a stack."""

from __future__ import annotations

import functools
import gc
import weakref

import pytest

import resilient
from resilient import BackoffPolicy, Circuit, backoff, circuit, describe
from resilient.policy import Policy, positive_float


def test_unknown_field_is_an_attribute_error_listing_the_fields() -> None:
    policy = BackoffPolicy()

    with pytest.raises(AttributeError, match="max_retries"):
        policy.max_retrys = 3  # type: ignore[attr-defined]


def test_update_changes_nothing_when_one_value_is_invalid() -> None:
    policy = BackoffPolicy()

    with pytest.raises(ValueError, match="factor"):
        policy.update(max_retries=1, factor=0)

    assert policy.max_retries == 5


@pytest.mark.parametrize("value", [0, 1, "true", None])
def test_a_flag_takes_only_true_or_false(value: object) -> None:
    # 0 == False and 1 == True: an equality check alone would let them in.
    policy = BackoffPolicy()

    with pytest.raises(ValueError, match="respect_retry_after"):
        policy.respect_retry_after = value

    assert policy.respect_retry_after is True
    policy.respect_retry_after = False
    assert policy.respect_retry_after is False


def test_update_sets_several_fields() -> None:
    policy = BackoffPolicy()
    policy.update(max_retries=1, initial_delay=0.5)

    assert (policy.max_retries, policy.initial_delay) == (1, 0.5)


def test_as_dict_and_repr_show_every_field() -> None:
    policy = BackoffPolicy(max_retries=2)

    assert policy.as_dict()["max_retries"] == 2
    assert "max_retries=2" in repr(policy)


def test_describe_lists_layers_outermost_first_through_foreign_decorators() -> None:
    def foreign(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper

    @circuit(name="llm")
    @foreign
    @backoff(max_retries=2)
    def ask():
        return "ok"

    ask()
    layers = describe(ask)

    assert [(layer["layer"], layer["name"]) for layer in layers] == [("circuit", "llm"), ("backoff", None)]
    assert layers[1]["policy"]["max_retries"] == 2
    assert layers[0]["stats"]["successes"] == 1


def test_layer_reaches_an_inner_layer_of_a_stack() -> None:
    # ask.policy is the outermost layer's (the circuit's); layer() finds the backoff under it.
    @circuit(name="llm")
    @backoff(max_retries=2)
    def ask():
        return "ok"

    retry = resilient.layer(ask, "backoff")
    retry.policy.max_retries = 7

    assert describe(ask)[1]["policy"]["max_retries"] == 7
    assert resilient.layer(ask, "circuit").policy is ask.policy
    assert [found.kind for found in resilient.layers(ask)] == ["circuit", "backoff"]
    with pytest.raises(LookupError, match="'queue'.*circuit.*backoff"):
        resilient.layer(ask, "queue")


def test_describe_of_an_undecorated_function_is_empty() -> None:
    assert describe(len) == []


def test_decorated_function_keeps_its_name_and_doc() -> None:
    breaker = Circuit()

    @breaker
    @backoff
    def ask():
        """Ask the model."""

    assert ask.__name__ == "ask"
    assert ask.__doc__ == "Ask the model."


@pytest.mark.parametrize("decorator", ["queued", "backoff", "circuit", "semantic_cache", "batched"])
def test_a_setting_passed_positionally_is_a_clear_type_error_at_once(decorator: str) -> None:
    # @queued("high") would otherwise take "high" for the function and fail at the first call.
    with pytest.raises(TypeError, match=f"{decorator}\\(\\) takes its settings as keywords"):
        getattr(resilient, decorator)("high")


class _Limits(Policy):
    _fields = {"rate": (1.0, positive_float), "note": ("", lambda name, value: value)}
    _watched = frozenset({"rate"})


class _Owner:
    def __init__(self, policy: Policy) -> None:
        self.heard: list[set[str] | frozenset[str]] = []
        policy._listen(self.changed)

    def changed(self, names: set[str] | frozenset[str]) -> None:
        self.heard.append(set(names))


def test_every_owner_of_a_shared_policy_hears_a_watched_change_once() -> None:
    policy = _Limits()
    first, second = _Owner(policy), _Owner(policy)
    policy.rate = 2.0
    policy.note = "not watched"
    policy.update(rate=3.0, note="both")
    assert first.heard == second.heard == [{"rate"}, {"rate"}]


def test_an_owner_that_is_gone_is_neither_kept_alive_nor_called() -> None:
    policy = _Limits()
    kept, dropped = _Owner(policy), _Owner(policy)
    gone = weakref.ref(dropped)
    del dropped
    gc.collect()
    assert gone() is None
    policy.rate = 2.0
    assert kept.heard == [{"rate"}]
    assert len(policy.__dict__["_listeners"]) == 1
