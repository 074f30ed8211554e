"""Release numbers commit in order: replication and the query stores follow ``change_seq`` from
a cursor, so a number taken by one transaction but committed after a higher one would be
skipped for ever. A second transaction asking for a number waits until the first has ended."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from genofed import db
from genofed.pathogen.entries import next_change


def test_a_second_writer_waits_for_the_first_to_end(db_engine: Engine) -> None:
    taken: list[int] = []

    def second() -> None:
        with db.session_scope(db.for_writing(db_engine)) as session:
            taken.append(next_change(session))

    waiter = threading.Thread(target=second)
    with db.session_scope(db.for_writing(db_engine)) as session:
        next_change(session)
        waiter.start()
        waiter.join(1.0)
        # The first transaction is still open: the second cannot have taken a number.
        assert waiter.is_alive()
        assert not taken
    waiter.join(10)
    assert not waiter.is_alive()
    assert len(taken) == 1
