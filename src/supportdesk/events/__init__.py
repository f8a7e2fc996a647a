"""The event log (SPEC section 9): what every write records, the feed, history and streams."""
