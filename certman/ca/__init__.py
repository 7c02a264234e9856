"""Talking to the CA: the ACME session and its transport, accounts, EAB, profiles, chains."""
