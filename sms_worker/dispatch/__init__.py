"""Sending: claim, rate-limit, call the provider, record what happened."""
