"""Ember: open models on your own machine, behind the OpenAI API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ember")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]
