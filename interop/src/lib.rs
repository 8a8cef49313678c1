//! Interop tests only: see `tests/` and docs/interop.md.
