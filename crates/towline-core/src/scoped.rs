//! What the deadline and the replay offer share: a thread-local value set for the length of one
//! synchronous call (a layer's `call` or `poll`), like a tokio task-local.

use std::cell::Cell;
use std::thread::LocalKey;

/// Runs `f` with `cell` holding `value`, and puts the outer value back after, also when `f`
/// panics.
// Inlined: it runs around every call and poll of the layers that use it (callgrind: ~150
// instructions per call of the whole stack).
#[inline]
pub(crate) fn with_value<T: Copy + 'static, R>(
    cell: &'static LocalKey<Cell<T>>,
    value: T,
    f: impl FnOnce() -> R,
) -> R {
    /// Puts the outer value back, also when unwinding.
    struct Restore<T: Copy + 'static> {
        cell: &'static LocalKey<Cell<T>>,
        outer: T,
    }
    impl<T: Copy + 'static> Drop for Restore<T> {
        fn drop(&mut self) {
            self.cell.with(|cell| cell.set(self.outer));
        }
    }
    let outer = cell.with(|cell| cell.replace(value));
    let _restore = Restore { cell, outer };
    f()
}
