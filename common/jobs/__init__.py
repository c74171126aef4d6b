"""Detection jobs: records and results in Redis, the work a task does. (Periodic scans keep
no job per metric: common.scans.)"""
