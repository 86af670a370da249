//! The save pipeline (STUB).
