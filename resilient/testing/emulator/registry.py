"""Which protocols one emulator serves, in route-matching order.

OpenAI comes last: its ``/v1`` dialect is the one others copy, so a path
several providers share goes to the one its headers name first (Anthropic's
``GET /v1/models``, Gemini's ``/v1/models/{m}``) and to OpenAI otherwise.
"""

from __future__ import annotations

from ... import clock as _clock
from .protocols import Protocol
from .protocols.anthropic import Anthropic
from .protocols.bedrock import Bedrock
from .protocols.gemini import Gemini
from .protocols.huggingface import HuggingFace
from .protocols.ollama import Ollama
from .protocols.opea import OPEA
from .protocols.openai import OpenAI
from .protocols.openvino import OpenVINO

__all__ = ["default_protocols"]


def default_protocols(clock: _clock.Clock) -> list[Protocol]:
    """One instance of every protocol, sharing the emulator's clock."""
    return [
        Anthropic(clock), Gemini(clock), Bedrock(clock), Ollama(clock), HuggingFace(clock), OpenVINO(clock), OPEA(clock),
        OpenAI(clock),
    ]  # fmt: skip
