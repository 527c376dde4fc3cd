"""The customer directory: customers, their places, numbers and e-mails, and the identity
index kept beside them in the SQLite store.

Every backend answers `lookup_customer` and duplicate finding from here. The local backend
keeps its whole system of record in the same store; a vendor connector syncs the vendor's
customers into it (`connectors/<vendor>/sync.py`) and writes new ones through.
"""
