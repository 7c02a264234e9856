"""A certificate's settings: what changed between two records, the operator's changes, reconfigure.

The stored spec (``spec.toml``) is certman's record of a declaration, never a file the
operator edits: ``certman issue`` and ``certman reconfigure`` change it from flags, and
``certman renew`` from a ``[[certificate]]`` table in certman.toml (docs/renewal.md,
"Changing a certificate's settings").
"""
