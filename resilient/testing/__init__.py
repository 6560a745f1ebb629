"""Test support shipped with the toolkit: a provider emulator and a pytest plugin."""
