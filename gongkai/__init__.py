"""Gongkai (公开): one approved disclosure item in, every channel and language out."""

__version__ = "0.1.0"
