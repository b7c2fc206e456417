"""Insignia Task Scheduler: scheduled webhook notifications."""

__version__ = "0.1.0"
