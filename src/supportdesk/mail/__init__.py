"""E-mail (SPEC 13): mail in from IMAP or an MTA pipe, mail out through the outbox."""
