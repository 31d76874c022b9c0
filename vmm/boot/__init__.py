"""Boot paths that do not go through a boot medium: direct kernel boot (`linux.py`)."""
