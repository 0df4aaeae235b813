"""Model files (rules as data) and the loader every job shares."""
