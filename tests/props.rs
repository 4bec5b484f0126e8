//! Property test: random sequences of localcount operations (including
//! misuse) on the host kernel, compared with a simple reference model that
//! says, for every step, whether it must succeed or which NetBSD panic it
//! must raise.
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use proptest::prelude::*;

use common::Obj;
use rust_localcount::backend::host::{self, Host, Machine};
use rust_localcount::kernel::Interlock;
use rust_localcount::localcount as lc;

#[derive(Clone, Debug)]
enum Op {
    Init,
    Acquire,
    Release,
    /// Release from an interrupt handler on this CPU.
    IntrRelease(usize),
    /// Acquire + release pair from an interrupt handler.
    IntrPair(usize),
    Migrate(usize),
    /// Drain, with or without holding the interlock.
    Drain {
        locked: bool,
    },
    Fini,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Init),
        6 => Just(Op::Acquire),
        5 => Just(Op::Release),
        2 => (0..4usize).prop_map(Op::IntrRelease),
        2 => (0..4usize).prop_map(Op::IntrPair),
        3 => (0..4usize).prop_map(Op::Migrate),
        3 => prop_oneof![5 => Just(true), 1 => Just(false)].prop_map(|locked| Op::Drain { locked }),
        2 => Just(Op::Fini),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    /// Zero-filled, never initialized.
    Uninit,
    Idle,
    Drained,
    /// Finalized: lc_totalp is still the poison, the storage is gone.
    Finalized,
}

/// What the model expects of one step: success, or a panic whose message
/// contains the given text.
fn expect(state: State, count: i64, op: &Op) -> Option<&'static str> {
    const TOTALP_NULL: &str = "\"lc->lc_totalp == NULL\"";
    let debug = cfg!(feature = "lc-debug");
    match (op, state) {
        (Op::Init, _) | (Op::Migrate(_), _) => None,
        (Op::Acquire, State::Idle) | (Op::IntrPair(_), State::Idle) => None,
        (Op::Acquire | Op::IntrPair(_), State::Drained | State::Finalized) => Some(TOTALP_NULL),
        (Op::Acquire | Op::IntrPair(_), State::Uninit) => Some("is not initialized"),
        (Op::Release | Op::IntrRelease(_), State::Idle) => {
            if debug && count <= 0 {
                Some("counter underflow")
            } else {
                None
            }
        }
        (Op::Release | Op::IntrRelease(_), State::Drained | State::Finalized) => {
            Some("released after drain")
        }
        (Op::Release | Op::IntrRelease(_), State::Uninit) => Some("is not initialized"),
        (Op::Drain { locked: false }, _) => Some("\"mutex_owned(interlock)\""),
        (Op::Drain { .. }, State::Drained | State::Finalized) => Some(TOTALP_NULL),
        (Op::Drain { .. }, State::Uninit) => Some("is not initialized"),
        (Op::Drain { .. }, State::Idle) => {
            if count < 0 {
                Some("negatively referenced localcount")
            } else {
                None
            }
        }
        (Op::Fini, State::Drained) => None,
        (Op::Fini, State::Finalized) => Some("is not initialized"),
        (Op::Fini, _) => Some("\"lc->lc_totalp == (void *)(uintptr_t)1\""),
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    // Expected kernel panics are checked below; do not print each one.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let m = Machine::new(4);
    let o = Obj::new();
    // SAFETY: host objects that live as long as `o`.
    let il = unsafe { Interlock::<Host>::new(o.cv.as_nonnull(), o.mtx.as_nonnull()) };
    let mut state = State::Uninit;
    let mut count: i64 = 0;
    for (i, op) in ops.iter().enumerate() {
        // A drain with references outstanding would wait forever in a
        // single-LWP sequence: the model never issues one.
        if matches!(op, Op::Drain { locked: true }) && state == State::Idle && count > 0 {
            continue;
        }
        let want = expect(state, count, op);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match op {
            Op::Init => m.lwp(0, || lc::init::<Host>(&o.lc)),
            Op::Acquire => m.lwp(0, || lc::acquire::<Host>(&o.lc)),
            Op::Release => m.lwp(0, || lc::release::<Host>(&o.lc, il)),
            Op::IntrRelease(c) => m.interrupt(*c, || lc::release::<Host>(&o.lc, il)),
            Op::IntrPair(c) => m.interrupt(*c, || {
                lc::acquire::<Host>(&o.lc);
                lc::release::<Host>(&o.lc, il);
            }),
            Op::Migrate(c) => m.lwp(*c, host::preempt_point),
            Op::Drain { locked } => m.lwp(1, || {
                if *locked {
                    o.mtx.enter();
                }
                lc::drain::<Host>(&o.lc, il);
                o.mtx.exit();
            }),
            Op::Fini => m.lwp(0, || lc::fini::<Host>(&o.lc)),
        }));
        match (want, r) {
            (None, Ok(())) => {}
            (Some(msg), Err(e)) => {
                let got = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                prop_assert!(
                    got.contains(msg),
                    "step {i} {op:?} in {state:?} count {count}: panic {got:?}, expected {msg:?}"
                );
                // After a kernel panic the object is in an unknown state.
                return Ok(());
            }
            (None, Err(e)) => {
                let got = e.downcast_ref::<String>().cloned().unwrap_or_default();
                prop_assert!(
                    false,
                    "step {i} {op:?} in {state:?} count {count}: unexpected panic {got:?}"
                );
            }
            (Some(msg), Ok(())) => {
                prop_assert!(
                    false,
                    "step {i} {op:?} in {state:?} count {count}: expected panic {msg:?}, none"
                );
            }
        }
        match op {
            Op::Init => {
                state = State::Idle;
                count = 0;
                if cfg!(feature = "lc-debug") {
                    o.lc.set_refcnt(0);
                }
            }
            Op::Acquire => count += 1,
            Op::Release | Op::IntrRelease(_) => count -= 1,
            Op::Drain { .. } => state = State::Drained,
            Op::Fini => state = State::Finalized,
            Op::IntrPair(_) | Op::Migrate(_) => {}
        }
    }
    // Whatever happened, an idle object with no references drains cleanly.
    if state == State::Idle && count == 0 {
        m.lwp(2, || {
            o.mtx.enter();
            lc::drain::<Host>(&o.lc, il);
            o.mtx.exit();
            lc::fini::<Host>(&o.lc);
        });
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]
    #[test]
    fn random_sequences_match_model(
        init_first in proptest::bool::weighted(0.9),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        // Mostly start from an initialized object, so that sequences get
        // past the first step (a misuse panic ends a sequence).
        let ops: Vec<Op> = init_first.then_some(Op::Init).into_iter().chain(ops).collect();
        run(&ops)?;
    }
}
