"""E-mail (SPEC 13): notices out through an outbox, replies in by IMAP or `mail ingest`."""
