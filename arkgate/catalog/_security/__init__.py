"""Shared, private helpers of the security and OSINT endpoints (not endpoints themselves)."""
