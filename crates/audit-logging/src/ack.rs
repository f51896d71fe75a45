//! A one-shot answer from the writer to one durable emit, waitable from a
//! plain thread or from any async runtime.
//!
//! The writer holds the [`Ack`], the emitter the [`AckWait`]; they share one
//! slot guarded by a mutex, with a condition variable for threads and a
//! [`Waker`] for futures. No runtime is involved: the writer, a plain
//! thread, wakes whichever kind of waiter there is. An `Ack` dropped without
//! an answer (the writer died) answers with an error, so no waiter is left
//! hanging.
//!
//! The first answer is the one the waiter gets; later ones are ignored.
//! That lets the writer answer, through [`Waiting`], durable emits whose
//! events it has not taken from the queue yet — when it cannot write and
//! stops taking events — and still send the receipt harmlessly once it
//! writes them later.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use crate::EmitError;
use crate::logger::Receipt;

/// The answer a durable emit waits for.
pub(crate) type Answer = Result<Receipt, EmitError>;

#[derive(Default)]
struct Slot {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    answer: Option<Answer>,
    /// Set by the first answer; later answers are ignored.
    answered: bool,
    waker: Option<Waker>,
}

/// The writer's side: answers exactly once, on [`send`](Self::send) or drop.
pub(crate) struct Ack {
    slot: Option<Arc<Slot>>,
}

/// The emitter's side: wait with [`wait`](Self::wait) or `.await`.
pub(crate) struct AckWait {
    slot: Arc<Slot>,
}

/// A connected pair.
pub(crate) fn pair() -> (Ack, AckWait) {
    let slot = Arc::new(Slot::default());
    (
        Ack {
            slot: Some(Arc::clone(&slot)),
        },
        AckWait { slot },
    )
}

impl Ack {
    /// Answers the waiter, waking it wherever it waits.
    pub fn send(mut self, answer: Answer) {
        if let Some(slot) = self.slot.take() {
            deliver(&slot, answer);
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            deliver(
                &slot,
                Err(EmitError::WriterFailed(
                    "the audit writer stopped without acknowledging the record".into(),
                )),
            );
        }
    }
}

fn deliver(slot: &Slot, answer: Answer) {
    let waker = {
        let mut state = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.answered {
            return;
        }
        state.answered = true;
        state.answer = Some(answer);
        state.waker.take()
    };
    slot.ready.notify_all();
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The durable emits waiting for an answer, as the emitters registered
/// them; for the writer to answer them all at once.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    slots: Mutex<Vec<Weak<Slot>>>,
}

/// Registrations at which [`Waiting::register`] first drops those already
/// answered; it does again at every doubling, so the list stays within
/// twice the number of emits really waiting.
const PRUNE_FROM: usize = 64;

impl Waiting {
    /// Registers `wait`, so that [`answer_all`](Self::answer_all) reaches it.
    pub fn register(&self, wait: &AckWait) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.len() >= PRUNE_FROM && slots.len().is_power_of_two() {
            slots.retain(|weak| weak.upgrade().is_some_and(|slot| !slot.is_answered()));
        }
        slots.push(Arc::downgrade(&wait.slot));
    }

    /// Answers every registered emit that has no answer yet.
    pub fn answer_all(&self, answer: &Answer) {
        let slots = std::mem::take(&mut *self.slots.lock().unwrap_or_else(PoisonError::into_inner));
        for slot in slots.iter().filter_map(Weak::upgrade) {
            deliver(&slot, answer.clone());
        }
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("answered", &self.is_answered())
            .finish()
    }
}

impl Slot {
    fn is_answered(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .answered
    }
}

impl AckWait {
    /// Blocks the calling thread until the writer answers.
    pub fn wait(self) -> Answer {
        let mut state = self
            .slot
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(answer) = state.answer.take() {
                return answer;
            }
            state = self
                .slot
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Future for AckWait {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        let mut state = self
            .slot
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(answer) = state.answer.take() {
            return Poll::Ready(answer);
        }
        match &mut state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            waker => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn receipt(seq: u64) -> Receipt {
        Receipt {
            seq,
            record_hash: [7; 32],
        }
    }

    #[test]
    fn a_thread_gets_the_answer_sent_before_or_after_it_waits() {
        let (ack, wait) = pair();
        ack.send(Ok(receipt(1)));
        assert_eq!(wait.wait(), Ok(receipt(1)));

        let (ack, wait) = pair();
        let sender = std::thread::spawn(move || ack.send(Ok(receipt(2))));
        assert_eq!(wait.wait(), Ok(receipt(2)));
        sender.join().unwrap();
    }

    #[test]
    fn a_dropped_ack_answers_with_an_error() {
        let (ack, wait) = pair();
        drop(ack);
        assert!(matches!(wait.wait(), Err(EmitError::WriterFailed(_))));
    }

    #[test]
    fn a_future_is_woken_by_a_plain_thread() {
        let (ack, wait) = pair();
        let sender = std::thread::spawn(move || ack.send(Ok(receipt(3))));
        assert_eq!(block_on(wait), Ok(receipt(3)));
        sender.join().unwrap();
    }

    #[test]
    fn the_first_answer_wins() {
        let (ack, wait) = pair();
        let waiting = Waiting::default();
        waiting.register(&wait);
        waiting.answer_all(&Err(EmitError::Degraded("disk full".into())));
        ack.send(Ok(receipt(4)));
        assert_eq!(wait.wait(), Err(EmitError::Degraded("disk full".into())));
    }

    #[test]
    fn answer_all_reaches_every_waiter_and_a_future_is_woken() {
        let waiting = Waiting::default();
        let pairs: Vec<_> = (0..3).map(|_| pair()).collect();
        for (_, wait) in &pairs {
            waiting.register(wait);
        }
        let (acks, waits): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        let answer = Err(EmitError::Degraded("disk full".into()));
        let answerer = std::thread::spawn({
            let answer = answer.clone();
            move || waiting.answer_all(&answer)
        });
        for wait in waits {
            assert_eq!(block_on(wait), answer);
        }
        answerer.join().unwrap();
        drop(acks);
    }

    #[test]
    fn registrations_of_answered_emits_are_dropped() {
        let waiting = Waiting::default();
        for _ in 0..PRUNE_FROM * 4 {
            let (ack, wait) = pair();
            waiting.register(&wait);
            ack.send(Ok(receipt(5)));
        }
        let kept = waiting.slots.lock().unwrap().len();
        assert!(kept <= PRUNE_FROM, "{kept} registrations kept");
    }

    /// A runtime-free executor: parks the thread until woken.
    pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }
}
