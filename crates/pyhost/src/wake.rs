//! Waking network tasks from the interpreter side. With two threads a wake goes out at once.
//! With one thread (the loop thread runs the network side itself, between Python's turns), a
//! wake made while Python runs comes from outside the runtime and costs a system call (the
//! runtime's reactor is unparked); so those wakes are collected, and made from inside the
//! runtime when the loop thread next runs it, where each costs a queue push.

use std::cell::{Cell, RefCell};
use std::task::Waker;

thread_local! {
    /// Set on the loop thread, in one-thread mode, while Python runs.
    static DEFERRING: Cell<bool> = const { Cell::new(false) };
    static DEFERRED: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// Wakes a network task now, or, on the loop thread in one-thread mode while Python runs,
/// when the loop thread next runs the network side.
pub fn wake(waker: Waker) {
    if DEFERRING.get() {
        DEFERRED.with_borrow_mut(|deferred| deferred.push(waker));
    } else {
        waker.wake();
    }
}

/// From now on, wakes made on this thread wait for [`wake_deferred`].
pub(crate) fn defer_on_this_thread() {
    DEFERRING.set(true);
}

/// Makes the wakes collected on this thread, and makes later ones at once until
/// [`defer_on_this_thread`]. Call from inside the runtime.
pub(crate) fn wake_deferred() {
    DEFERRING.set(false);
    let deferred = DEFERRED.take();
    for waker in deferred {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn wakes_are_held_while_deferring_and_made_together() {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        wake(Waker::from(counter.clone()));
        assert_eq!(counter.0.load(Ordering::Relaxed), 1, "not deferring: at once");
        defer_on_this_thread();
        wake(Waker::from(counter.clone()));
        wake(Waker::from(counter.clone()));
        assert_eq!(counter.0.load(Ordering::Relaxed), 1, "held");
        wake_deferred();
        assert_eq!(counter.0.load(Ordering::Relaxed), 3);
        wake(Waker::from(counter.clone()));
        assert_eq!(counter.0.load(Ordering::Relaxed), 4, "at once again");
    }
}
