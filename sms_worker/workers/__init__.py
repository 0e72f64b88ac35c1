"""What a worker process keeps to itself while it dispatches: its lease, the hold on the claims
it takes (:mod:`.lease`), and its write-behind, the changes it could not write while the database
or Redis was away (:mod:`.write_behind`), each kept by a thread of its own (:mod:`.ticker`).

It sits below :mod:`sms_worker.runtime`, which holds both, and below :mod:`sms_worker.dispatch`,
which uses them: it imports neither (``tests/test_layering.py``).
"""
