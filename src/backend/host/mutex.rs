//! mutex(9) and condvar(9) of the host kernel, with owner checks.

use std::ptr::NonNull;

use super::sync::{lock, wait, Condvar, Mutex};
use super::{curlwp, sleep, Host};
use crate::kernel::{Kernel, PanicMsg};
use crate::sys::types::{kcondvar, kmutex};

/// A simulated adaptive `kmutex_t`: sleeps when contended, knows its owner.
pub struct HostMutex {
    owner: Mutex<Option<u64>>,
    cv: Condvar,
}

impl Default for HostMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl HostMutex {
    /// `mutex_init(&m, MUTEX_DEFAULT, IPL_NONE)`.
    pub fn new() -> Self {
        HostMutex {
            owner: Mutex::new(None),
            cv: Condvar::new(),
        }
    }

    /// The `kmutex_t *` to pass to C functions.
    pub fn as_kmutex(&self) -> *mut kmutex {
        self as *const Self as *mut kmutex
    }

    /// As a `NonNull<kmutex>`.
    pub fn as_nonnull(&self) -> NonNull<kmutex> {
        NonNull::from(self).cast()
    }

    /// `mutex_enter`.
    pub fn enter(&self) {
        let me = curlwp();
        {
            let mut g = lock(&self.owner);
            match *g {
                None => {
                    *g = Some(me);
                    return;
                }
                Some(o) if o == me => {
                    drop(g);
                    Host::panic(PanicMsg::Text("mutex_enter: locking against myself"))
                }
                Some(_) => {}
            }
        }
        sleep(|| {
            let mut g = lock(&self.owner);
            while g.is_some() {
                g = wait(&self.cv, g);
            }
            *g = Some(me);
        });
    }

    /// `mutex_exit`.
    pub fn exit(&self) {
        let me = curlwp();
        let mut g = lock(&self.owner);
        if *g != Some(me) {
            drop(g);
            Host::panic(PanicMsg::Text("mutex_exit: not owner"));
        }
        *g = None;
        drop(g);
        self.cv.notify_one();
    }

    /// `mutex_owned`.
    pub fn owned(&self) -> bool {
        let me = curlwp();
        *lock(&self.owner) == Some(me)
    }
}

/// A simulated `kcondvar_t`.
pub struct HostCondvar {
    generation: Mutex<u64>,
    cv: Condvar,
}

impl Default for HostCondvar {
    fn default() -> Self {
        Self::new()
    }
}

impl HostCondvar {
    /// `cv_init`.
    pub fn new() -> Self {
        HostCondvar {
            generation: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    /// The `kcondvar_t *` to pass to C functions.
    pub fn as_kcondvar(&self) -> *mut kcondvar {
        self as *const Self as *mut kcondvar
    }

    /// As a `NonNull<kcondvar>`.
    pub fn as_nonnull(&self) -> NonNull<kcondvar> {
        NonNull::from(self).cast()
    }

    /// `cv_wait(cv, m)`: atomically release `m` and sleep until a broadcast.
    pub fn wait(&self, m: &HostMutex) {
        if !m.owned() {
            Host::panic(PanicMsg::Text("cv_wait: mutex not held"));
        }
        let g = lock(&self.generation);
        let g0 = *g;
        m.exit();
        sleep(move || {
            let mut g = g;
            while *g == g0 {
                g = wait(&self.cv, g);
            }
        });
        m.enter();
    }

    /// `cv_timedwait(cv, m, ticks)`: as [`HostCondvar::wait`], but also
    /// returns after `t`; true if it timed out.  (Under the model checker
    /// it never times out: time is not part of the model.)
    pub fn timedwait(&self, m: &HostMutex, t: std::time::Duration) -> bool {
        if !m.owned() {
            Host::panic(PanicMsg::Text("cv_timedwait: mutex not held"));
        }
        let g = lock(&self.generation);
        let g0 = *g;
        m.exit();
        let timed_out = sleep(move || {
            let mut g = g;
            #[cfg(not(feature = "model-shuttle"))]
            {
                let deadline = std::time::Instant::now() + t;
                while *g == g0 {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        return true;
                    }
                    g = match self.cv.wait_timeout(g, deadline - now) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    };
                }
            }
            #[cfg(feature = "model-shuttle")]
            {
                let _ = t;
                while *g == g0 {
                    g = wait(&self.cv, g);
                }
            }
            false
        });
        m.enter();
        timed_out
    }

    /// `cv_broadcast`.
    pub fn broadcast(&self) {
        *lock(&self.generation) += 1;
        self.cv.notify_all();
    }
}
