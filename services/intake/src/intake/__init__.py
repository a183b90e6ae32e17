PRODUCER = "intake"
"""The name intake's events carry as their producer (units of work are opened with it)."""
