"""What outlives a session: the hardware id, baselines on disk (written atomically) and the history database."""
