"""Locust scenarios, one module per feature area; locustfile.py imports their user classes."""
