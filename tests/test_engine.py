"""A forked child (a Celery pool process) gets its own database engine, and the parent's
connections survive the child: the child never closes what it inherited."""

from __future__ import annotations

import os

from sqlalchemy import text

from sms_worker.db.engine import get_engine


def test_a_forked_child_builds_its_own_engine_and_leaves_the_parents_connections_alone(database_url):
    parent = get_engine(database_url)
    with parent.connect() as conn:
        parents_backend = conn.execute(text("SELECT 1")).scalar()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            child = get_engine(database_url)
            with child.connect() as conn:
                ok = conn.execute(text("SELECT 2")).scalar() == 2
            os.write(write, b"own" if ok and child is not parent else b"inherited")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 32)
    os.waitpid(pid, 0)

    assert answer == b"own", "the child must build its own engine, not use the parent's pool"
    assert get_engine(database_url) is parent
    with parent.connect() as conn:
        assert conn.execute(text("SELECT 3")).scalar() == 3 and parents_backend == 1, "the parent's pooled connection still works"
