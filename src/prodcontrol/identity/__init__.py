"""Who is deciding: personal tokens, credentials per channel, one human one vote (DESIGN §5).

Pure parts (token format and hashing, the store port, people lookup) import no SDK; the SQL
store lives in :mod:`prodcontrol.adapters.store.identity`, an in-memory one in
:mod:`prodcontrol.identity.memory` (re-exported by :mod:`prodcontrol.testing`).
"""
