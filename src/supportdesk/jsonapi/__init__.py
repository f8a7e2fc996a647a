"""The wire format: query parsing, document rendering, request bodies and error bodies.
No other package knows what a JSON:API document or an error body looks like."""
