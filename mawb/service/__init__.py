"""`mawb serve`: the always-on service of one workspace.

The intake half (`mawb.service.app`) is an ASGI app: the `/v1` API (events, contacts) behind
hashed API keys, webhook triggers behind Standard Webhooks signatures, and the signed tracking
links (`/u`, `/o`, `/c`). It never opens the store: every accepted record goes to the spool
(`mawb.service.spool`), durably, before the 202, and the service's tick loop loads the spool
into the store. Importing `mawb` never imports this package.
"""
