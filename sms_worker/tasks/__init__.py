"""Celery wiring: thin tasks over the domain functions in ``dispatch``, ``recovery`` and ``queues``."""
