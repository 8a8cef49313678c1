//! End-to-end tests of the media apps live in `tests/`; this crate has no code of its own.
