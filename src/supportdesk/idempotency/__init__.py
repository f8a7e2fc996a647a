"""Idempotency-Key on every admin POST (SPEC 12): reserve, replay, record, release, purge."""
