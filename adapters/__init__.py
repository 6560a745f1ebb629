"""Thin provider adapters, installed as ``resilient.adapters``.

One module per provider (OpenAI, Anthropic, Groq, Ollama, Hugging Face TGI and
TEI, Gemini, OpenVINO Model Server, OPEA, Bedrock, S3): plain functions over
``requests`` that return plain dicts and raise the :mod:`resilient.errors`
taxonomy. They hold no retry, queue or cache logic; stack the decorators for
that. The folder is named ``adapters`` in the repository but installs under
``resilient.`` because a top-level ``adapters`` package already exists on PyPI.
"""
