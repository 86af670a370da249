//! [`Hint`]: advice for the operator, attached to an error as its outermost context.
//!
//! A pipeline deep in the stack (a save that keeps its partial bundle, say) knows what
//! the operator should do next; the top level ([`crate::app::print_error`]) prints it
//! after the error and its causes. The type lives here, below both, so that pipelines
//! can attach a hint without reaching up to the module that prints it.

/// Advice for the operator attached to an error with `anyhow::Context` (for example how
/// to resume). It is printed after the error and its causes, so the first line an
/// operator reads is always what went wrong.
#[derive(Debug)]
pub(crate) struct Hint(pub String);

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
