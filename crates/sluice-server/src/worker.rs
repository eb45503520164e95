//! What a worker thread serves: the public connections open on it, so a write that might
//! stall the thread can tell whether anyone else would wait behind it, and the database
//! pool can tell a worker (where a connection's driver may live) from any other thread.
//!
//! actix runs each connection on one worker thread from accept to close, and a connection's
//! requests (uploads included) run there too: a write that blocks the thread holds up the
//! other connections of that worker and no one else's.

use std::cell::Cell;

thread_local! {
    static OPEN_HERE: Cell<usize> = const { Cell::new(0) };
}

/// Counts a connection as open on the current thread while it lives.
#[derive(Debug)]
pub(crate) struct OpenHere(());

impl OpenHere {
    /// Counts one more connection on this thread.
    pub(crate) fn new() -> OpenHere {
        OPEN_HERE.with(|open| open.set(open.get() + 1));
        OpenHere(())
    }
}

impl Drop for OpenHere {
    fn drop(&mut self) {
        OPEN_HERE.with(|open| open.set(open.get().saturating_sub(1)));
    }
}

/// Whether this thread is serving a public connection now: an actix worker, whose runtime
/// lives as long as the server and whose tasks never block it for long.
pub(crate) fn serving_here() -> bool {
    OPEN_HERE.with(Cell::get) > 0
}

/// Whether this thread serves another connection besides the caller's own.
pub(crate) fn others_here() -> bool {
    OPEN_HERE.with(Cell::get) > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_connections_open_on_this_thread() {
        assert!(!serving_here());
        let own = OpenHere::new();
        assert!(serving_here());
        assert!(!others_here());
        let other = OpenHere::new();
        assert!(others_here());
        std::thread::spawn(|| assert!(!others_here())).join().unwrap();
        drop(other);
        assert!(!others_here());
        drop(own);
        assert!(!serving_here());
    }
}
