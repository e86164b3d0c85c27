"""The journal: where every run's events are recorded, and read back for audit and resume."""

from engine.journal import query
from engine.journal.location import journal_path
from engine.journal.store import JournalError, JournalWriter, connect, stored_events

__all__ = ["JournalError", "JournalWriter", "connect", "journal_path", "query", "stored_events"]
