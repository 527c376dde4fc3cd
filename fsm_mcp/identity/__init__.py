"""Customer identity: normalising phones, names, addresses and emails, the blocking keys
that find candidates without scanning, and the scoring that explains each match.

Pure functions and small classes; nothing here knows about MCP or storage.
"""
