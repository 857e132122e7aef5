"""Scheduled Lambda handlers: the reaper and the health monitor."""
