"""Shared helpers of the end-to-end tests: server processes and raw HTTP."""
