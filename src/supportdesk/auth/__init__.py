"""Bearer API keys (SPEC section 5): tokens, permissions, the request dependency."""
