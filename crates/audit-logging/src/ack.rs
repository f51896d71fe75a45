//! A one-shot answer from the writer to one durable emit, waitable from a
//! plain thread or from any async runtime.
//!
//! The writer holds the [`Ack`], the emitter the [`AckWait`]; they share one
//! slot guarded by a mutex, with a condition variable for threads and a
//! [`Waker`] for futures. No runtime is involved: the writer, a plain
//! thread, wakes whichever kind of waiter there is. An `Ack` dropped without
//! an answer (the writer died) answers with an error, so no waiter is left
//! hanging.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
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
        state.answer = Some(answer);
        state.waker.take()
    };
    slot.ready.notify_all();
    if let Some(waker) = waker {
        waker.wake();
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
