"""Persistence: the message row is the message; queues only point at it."""
