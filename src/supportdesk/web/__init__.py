"""The browser (SPEC 14): the staff console at /console/, the customer portal at /portal/, and
the sign-in they share. Server-rendered Jinja2 pages on the same services as the API; our own
small script and stylesheet in `static/`; nothing from a CDN."""
