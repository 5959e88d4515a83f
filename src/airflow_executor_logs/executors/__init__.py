"""Executor-side pieces: class resolution, the class-level reader protocol, short-lived executors."""
