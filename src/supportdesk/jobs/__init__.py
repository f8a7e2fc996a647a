"""Background jobs (SPEC 11): the runner and its leases (`runner`), one small module per job,
and the list of jobs the settings enable (`registry`)."""
