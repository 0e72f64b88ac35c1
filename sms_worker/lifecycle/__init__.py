"""The message: the database row is the message, and this package alone knows how it changes.

- :mod:`.status`: where a message is (``Status``), what its provider reports (``Delivery``);
- :mod:`.ambiguity`: what follows an attempt whose outcome is unknown, and
  :func:`~.ambiguity.runs_out`, the one rule that an unsure message that runs out ends ``unknown``;
- :mod:`.changes`: every change a message can undergo, as a value;
- :mod:`.transitions`: which change may move a message from which status to which, as data;
- :mod:`.fence`: the condition every write is behind (the row still names the writer's claim);
- :mod:`.write` and :mod:`.calls`: the SQL of writing a message's row and its history, one
  function per change;
- :mod:`.tables`: the tables, for anyone to read.

Who decides which change a message undergoes stays outside: the producer, the dispatch stages
and ledger, the reclaimer and the sweep, the status poller and the callbacks. See
docs/architecture.md, "The message's lifecycle".
"""
