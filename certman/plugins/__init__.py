"""Plugins: the registry of solvers, DNS providers and reloaders, and their declared settings."""
