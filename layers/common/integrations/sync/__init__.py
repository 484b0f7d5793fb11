"""The sync engine: the job model, the scheduler's fan-out of due connections, and the worker's steps."""
