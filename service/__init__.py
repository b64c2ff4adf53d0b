"""Engage: gamified member engagement for brands on WeChat mini-programs and H5."""

__version__ = "0.1.0"
