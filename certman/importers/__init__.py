"""Importers: take over certificates and ACME accounts that another client manages."""
