"""Redis structures that point at message rows: ready lists per priority and a due-time set.

A Celery task message costs about 940 bytes in Redis; a pointer here costs a few dozen. Celery
carries only wake-ups (one per batch), so a million-message backlog is a million short list
entries, not a million task messages.
"""
