"""Webhooks out: operators subscribe URLs to domain events, delivered per Standard Webhooks."""
