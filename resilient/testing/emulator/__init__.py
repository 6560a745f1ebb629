"""A local emulator of LLM provider APIs with scripted faults.

``with Emulator() as emu:`` serves OpenAI, Anthropic, Ollama, Hugging Face
TGI/TEI, Gemini, OpenVINO Model Server and OPEA wire formats on
``emu.url``; ``emu.add_fault(kind, **params)`` makes it misbehave on
command; ``emu.requests`` records what reached it.
"""

from __future__ import annotations

from .faults import KINDS, Fault
from .server import Emulator, RequestRecord
from .standalone import run_standalone

__all__ = ["Emulator", "Fault", "RequestRecord", "KINDS", "run_standalone"]
