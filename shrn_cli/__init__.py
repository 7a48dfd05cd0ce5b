"""Command-line front end of shrn; all logic lives in shrn_core."""
