"""`hpcingest start`: the ingest sink, its decisions and the job that runs it."""
