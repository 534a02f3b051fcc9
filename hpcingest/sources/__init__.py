"""Sources list entries for the engine: the POSIX filesystem walker, and S3."""
