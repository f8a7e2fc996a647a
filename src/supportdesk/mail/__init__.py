"""E-mail (SPEC section 13): reading the support mailbox over IMAP."""
