"""The message's lifecycle: where a message is (:mod:`.status`) and what an attempt whose outcome
is unknown leads to (:mod:`.ambiguity`)."""
