//! Single-threaded waiting built on JS promises: a change signal (pause,
//! resume, cancel wake the upload loop) and the slots that limit how many
//! uploads of one client transfer at once.

use crate::js;
use js_sys::{Array, Function, Promise};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

/// Wakes every waiter when something changes.
#[derive(Default)]
pub struct Signal {
    waiters: RefCell<Vec<Function>>,
}

impl Signal {
    /// A promise that resolves at the next [`Signal::notify`].
    pub fn changed(&self) -> Promise {
        Promise::new(&mut |resolve, _| self.waiters.borrow_mut().push(resolve))
    }

    /// Resolves every pending [`Signal::changed`] promise.
    pub fn notify(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            let _ = w.call0(&JsValue::UNDEFINED);
        }
    }

    /// Sleeps `ms` milliseconds, or less if notified meanwhile.
    pub async fn sleep(&self, ms: f64) {
        let race = Promise::race(&Array::of2(&js::timeout(ms), &self.changed()));
        let _ = JsFuture::from(race).await;
    }
}

struct Waiter {
    resolve: Function,
    granted: Cell<bool>,
    abandoned: Cell<bool>,
}

/// A counting semaphore: at most `n` holders at once, served in order.
pub struct Slots {
    free: Cell<usize>,
    waiters: RefCell<VecDeque<Rc<Waiter>>>,
}

impl Slots {
    /// `n` slots (at least one).
    pub fn new(n: usize) -> Self {
        Slots { free: Cell::new(n.max(1)), waiters: RefCell::new(VecDeque::new()) }
    }

    /// Waits for a slot; gives up (returning `false`) when `interrupt`
    /// resolves first. `true` means the caller holds a slot and must
    /// [`Slots::release`] it.
    pub async fn acquire(&self, interrupt: Promise) -> bool {
        if self.free.get() > 0 {
            self.free.set(self.free.get() - 1);
            return true;
        }
        let mut resolve = None;
        let granted = Promise::new(&mut |r, _| resolve = Some(r));
        let Some(resolve) = resolve else { return false };
        let waiter = Rc::new(Waiter { resolve, granted: Cell::new(false), abandoned: Cell::new(false) });
        self.waiters.borrow_mut().push_back(waiter.clone());
        let _ = JsFuture::from(Promise::race(&Array::of2(&granted, &interrupt))).await;
        if waiter.granted.get() {
            return true;
        }
        waiter.abandoned.set(true);
        false
    }

    /// Gives a slot back, handing it to the first waiter still waiting.
    pub fn release(&self) {
        loop {
            let next = self.waiters.borrow_mut().pop_front();
            match next {
                Some(w) if w.abandoned.get() => continue,
                Some(w) => {
                    w.granted.set(true);
                    let _ = w.resolve.call0(&JsValue::UNDEFINED);
                    return;
                }
                None => {
                    self.free.set(self.free.get() + 1);
                    return;
                }
            }
        }
    }
}
