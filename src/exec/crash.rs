//! Fault-injection points for the tests (the `fail` crate). They compile to
//! nothing unless the `failpoints` cargo feature is on; then
//! `FAILPOINTS="NAME=return"` makes the process abort at NAME: no
//! destructors, no flushing, no journal line, exactly like kill -9 or a
//! power cut of the controller at that point.

/// A point where the controller may die.
#[allow(unused_variables)]
pub fn point(name: &str) {
    #[cfg(feature = "failpoints")]
    fail::fail_point!(name, |_| std::process::abort());
}
