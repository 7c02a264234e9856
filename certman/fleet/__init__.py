"""Fleet mode: several hosts share one certificate set through PostgreSQL (docs/fleet.md).

    conninfo.py    the ``store`` setting (a libpq string): password refused in certman.toml, shown without it
    settings.py    store, host_id, store_key_file from the run-wide settings
    fleet_key.py   the fleet key file and AES-GCM sealing of every private key
    connection.py  psycopg (the certman[postgres] extra), connections, errors (StoreUnavailable, exit 8)
    schema.py      the versioned schema and its migrations
    locks.py       the Keystore contract's locks as advisory locks
    store.py       PostgresKeystore: the Keystore contract over the store
    protocol.py    leases with fencing tokens, the fenced commit, what each host installed
    admin.py       store init (schema, key binding) and store status
    transfer.py    store import: a local keystore uploaded
    challenges.py  HTTP-01 in a fleet: the holder's answers in the store, read by every host
    challenge_server.py  certman challenge-server: those answers over HTTP on each host

Only ``conninfo`` is imported when settings load; the rest loads when a store is used.
A Redis or etcd backend would be a module beside ``store`` keeping the same contract.
"""
