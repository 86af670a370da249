//! Command-line definitions (STUB).
