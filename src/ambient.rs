//! A value of the code running now on this thread — the current [`Deadline`](crate::Deadline),
//! the current [`Criticality`](crate::Criticality) — set for the extent of a closure and
//! restored when it returns or unwinds. What tokio's `task_local!` with `sync_scope` does (the
//! futures that carry these values set them around each poll, so they follow their task), in
//! one thread-local access and a `Cell`, without a `RefCell` and a second access to restore.

use std::cell::Cell;
use std::thread::LocalKey;

/// The thread-local cell of an ambient value (`None` outside every scope).
pub(crate) type Ambient<T> = LocalKey<Cell<Option<T>>>;

/// The value in scope now, if any (`None` too while the thread's locals are being destroyed).
#[inline]
pub(crate) fn get<T: Copy + 'static>(key: &'static Ambient<T>) -> Option<T> {
    key.try_with(Cell::get).ok().flatten()
}

/// Runs `f` with `value` in scope; the value it replaced comes back when `f` returns or
/// panics.
#[inline]
pub(crate) fn scope<T: Copy + 'static, R>(
    key: &'static Ambient<T>,
    value: T,
    f: impl FnOnce() -> R,
) -> R {
    /// Puts the previous value back, on return or unwind.
    struct Restore<'a, T: Copy>(&'a Cell<Option<T>>, Option<T>);

    impl<T: Copy> Drop for Restore<'_, T> {
        fn drop(&mut self) {
            self.0.set(self.1);
        }
    }

    key.with(|cell| {
        let _restore = Restore(cell, cell.replace(Some(value)));
        f()
    })
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    std::thread_local! {
        static VALUE: Cell<Option<u32>> = const { Cell::new(None) };
    }

    #[test]
    fn a_scope_sets_its_value_and_restores_the_outer_one_on_return_and_on_panic() {
        assert_eq!(get(&VALUE), None);
        scope(&VALUE, 1, || {
            assert_eq!(get(&VALUE), Some(1));
            scope(&VALUE, 2, || assert_eq!(get(&VALUE), Some(2)));
            assert_eq!(get(&VALUE), Some(1));
            let panicked = std::panic::catch_unwind(|| scope(&VALUE, 3, || panic!("inside")));
            assert!(panicked.is_err());
            assert_eq!(get(&VALUE), Some(1));
        });
        assert_eq!(get(&VALUE), None);
    }
}
