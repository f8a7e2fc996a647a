"""Bearer API keys (SPEC section 5): tokens, permissions, the guard every admin route calls."""
