"""Self-contained HTML run reports."""
