"""Detection jobs: records and results in Redis, the work a task does, periodic scans."""
