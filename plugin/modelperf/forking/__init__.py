"""Fork servers: processes started from one interpreter that imported their heavy libraries once."""
