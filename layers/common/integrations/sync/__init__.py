"""Scheduled and push-driven sync: jobs, the scheduler's fan-out and the worker's steps."""
