"""A target run confined: its executor, its judge and the parent that starts them (issue 25)."""
