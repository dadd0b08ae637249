"""The web front for people: landing page, docs, fund, top-up and session pages, live status."""
