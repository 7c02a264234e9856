"""Deploy: run each proxy's reloader once per batch, then verify what it serves."""
