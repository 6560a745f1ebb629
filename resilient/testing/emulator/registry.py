"""Which protocols one emulator serves, in route-matching order."""

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
        OpenAI(clock), Anthropic(clock), Ollama(clock), HuggingFace(clock), Gemini(clock), OpenVINO(clock), OPEA(clock),
        Bedrock(clock),
    ]  # fmt: skip
