"""Benchmarks of sms_worker against a naive Celery baseline, run on the local sandbox.

``python benchmarks/run.py`` runs them all and prints one table; see ``benchmarks/README.md``.
"""
