"""The journal: where every run's events are recorded, and read back for audit and resume.

`storage.Store` is what the engine asks of a journal; `storage.SqliteStore` is the SQLite one
(writing in `store.py`, reading in `query.py`, `verify.py` and `lock.py`). Every SQL
statement of the engine lives in this package.
"""

from engine.journal.location import journal_path
from engine.journal.store import JournalError, JournalWriter, connect, stored_events

__all__ = ["JournalError", "JournalWriter", "connect", "journal_path", "stored_events"]
