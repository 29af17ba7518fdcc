"""Curious Robot: robots that teach themselves to see by touching the world."""

__version__ = "0.1.0"
