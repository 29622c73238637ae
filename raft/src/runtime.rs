//! The runtime openraft runs on: tokio, with two differences — the random numbers openraft
//! draws (its election timeouts) come from a generator this thread can seed, and no exchange
//! with another node is given less than [`RPC_TIMEOUT_FLOOR`].
//!
//! A node never seeds it: each thread's generator starts from the operating system's
//! randomness, as tokio's runtime would. The catalog simulator runs every node of a
//! cluster on one thread and seeds it with [`seed_thread_rng`], so the same seed gives the
//! same election timeouts in the same order.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use openraft::async_runtime::TokioOneShotSender;
use openraft::{AsyncRuntime, OptionalSend, TokioInstant, TokioRuntime};

thread_local! {
    /// This thread's generator state (xorshift64*); zero until first used or seeded.
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// Seeds this thread's generator: every number openraft draws on this thread from now on
/// follows from `seed`.
pub fn seed_thread_rng(seed: u64) {
    STATE.with(|s| s.set(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1));
}

/// A handle on this thread's generator (what openraft gets from `thread_rng()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ElectionRng;

impl rand::RngCore for ElectionRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        STATE.with(|s| {
            let mut x = s.get();
            if x == 0 {
                x = rand::random::<u64>() | 1;
            }
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            s.set(x);
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        })
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// The least time openraft gives an exchange with another node.
///
/// openraft bounds each replication request and each round of a ReadIndex by the heartbeat
/// interval (50 ms by default). A node whose cores are starved for longer than that (a
/// ladder's codec workers and a thousand players starting at once on two cores) then looks
/// unreachable although every message arrives: nothing is acknowledged, no read is confirmed,
/// and origins that cannot confirm their leases are fenced. Each exchange is given this long
/// instead. A healthy cluster is unaffected: its exchanges take a millisecond and heartbeats
/// go out every interval; to a slow follower the next one goes when the last is answered, and
/// its election timer follows their arrival, not their answers. The only other timeouts
/// openraft passes through the runtime are a waiting caller's own (`Raft::wait`) and the
/// snapshot's, both longer.
pub const RPC_TIMEOUT_FLOOR: Duration = Duration::from_millis(500);

/// tokio, with [`ElectionRng`] for openraft's random numbers and [`RPC_TIMEOUT_FLOOR`] under
/// its timeouts.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CatalogRuntime;

impl AsyncRuntime for CatalogRuntime {
    type JoinError = <TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <TokioRuntime as AsyncRuntime>::Sleep;
    type Instant = TokioInstant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = ElectionRng;
    type OneshotSender<T: OptionalSend> = TokioOneShotSender<T>;
    type OneshotReceiverError = <TokioRuntime as AsyncRuntime>::OneshotReceiverError;
    type OneshotReceiver<T: OptionalSend> = <TokioRuntime as AsyncRuntime>::OneshotReceiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        TokioRuntime::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration.max(RPC_TIMEOUT_FLOOR), future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Self::Instant, future: F) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline.max(TokioInstant::now() + RPC_TIMEOUT_FLOOR), future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        ElectionRng
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        TokioRuntime::oneshot()
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    #[test]
    fn a_seed_gives_the_same_draws_on_this_thread() {
        seed_thread_rng(7);
        let a: Vec<u64> = (0..5).map(|_| CatalogRuntime::thread_rng().gen_range(150..300)).collect();
        seed_thread_rng(7);
        let b: Vec<u64> = (0..5).map(|_| CatalogRuntime::thread_rng().gen_range(150..300)).collect();
        assert_eq!(a, b);
        seed_thread_rng(8);
        let c: Vec<u64> = (0..5).map(|_| CatalogRuntime::thread_rng().gen_range(150..300)).collect();
        assert_ne!(a, c, "another seed draws otherwise");
        assert!(a.iter().all(|t| (150..300).contains(t)));
    }
}
