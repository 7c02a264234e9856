"""Issuance: one certificate from order to stored version, with CA fallback and resume."""
