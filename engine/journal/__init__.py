"""The journal: where every run's events are recorded, and read back for audit and resume.

`engine.journal.query` (reading runs back) is imported by the commands that read, so a run
does not load it.
"""

from engine.journal.location import journal_path
from engine.journal.store import JournalError, JournalWriter, connect, stored_events

__all__ = ["JournalError", "JournalWriter", "connect", "journal_path", "stored_events"]
