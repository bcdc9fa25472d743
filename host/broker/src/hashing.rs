//! A bounded pool for password hashing (argon2id: 19 MiB and tens of
//! milliseconds of CPU per check). At most `threads` hashes run at once and
//! at most `queue` more wait; anything beyond is refused at once as busy, so
//! a login burst can neither exhaust memory nor queue without bound.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The pool is full: the caller should say "busy, try again".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the broker is busy checking other passwords ({threads} at once, {queue} waiting); try again in a few seconds"
)]
pub struct Busy {
    pub threads: usize,
    pub queue: usize,
}

/// Hashing failed inside the pool (a panic in the hash function).
#[derive(Debug, thiserror::Error)]
#[error("password hashing stopped unexpectedly: {0}")]
pub struct HashFailed(#[source] tokio::task::JoinError);

#[derive(Debug)]
pub struct HashPool {
    threads: usize,
    queue: usize,
    /// Running + waiting hashes.
    admitted: Arc<Semaphore>,
    /// Running hashes.
    running: Arc<Semaphore>,
}

/// A place in the pool, held from admission until the hash is done.
#[derive(Debug)]
pub struct Admission {
    place: OwnedSemaphorePermit,
    running: Arc<Semaphore>,
}

impl HashPool {
    pub fn new(threads: usize, queue: usize) -> Self {
        let threads = threads.max(1);
        HashPool {
            threads,
            queue,
            admitted: Arc::new(Semaphore::new(threads + queue)),
            running: Arc::new(Semaphore::new(threads)),
        }
    }

    /// Takes a place in the pool now, or refuses: never waits.
    pub fn admit(&self) -> Result<Admission, Busy> {
        let place = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| Busy {
                threads: self.threads,
                queue: self.queue,
            })?;
        Ok(Admission {
            place,
            running: Arc::clone(&self.running),
        })
    }

    /// Takes a place and runs `f` (see [`Admission::run`]).
    pub async fn run<T, F>(&self, f: F) -> Result<Result<T, HashFailed>, Busy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Ok(self.admit()?.run(f).await)
    }

    /// Occupies every hashing thread until the permit is dropped: new
    /// checks wait in the queue, and beyond it are refused. For tests and
    /// maintenance.
    pub async fn hold_all_threads(&self) -> OwnedSemaphorePermit {
        let n = u32::try_from(self.threads).expect("thread count fits in u32");
        Arc::clone(&self.running)
            .acquire_many_owned(n)
            .await
            .expect("the pool's semaphore is never closed")
    }
}

impl Admission {
    /// Waits for a hashing thread, then runs `f` on it. The thread's permit
    /// travels with `f`, so it stays taken until `f` returns even if the
    /// caller stops waiting.
    pub async fn run<T, F>(self, f: F) -> Result<T, HashFailed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let thread = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .expect("the pool's semaphore is never closed");
        let place = self.place;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop((thread, place));
            out
        })
        .await
        .map_err(HashFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_threads_and_queue_is_busy() {
        let pool = HashPool::new(1, 2);
        let hold = pool.hold_all_threads().await;
        let a = pool.admit().unwrap();
        let b = pool.admit().unwrap();
        let c = pool.admit().unwrap();
        assert_eq!(
            pool.admit().unwrap_err(),
            Busy {
                threads: 1,
                queue: 2
            }
        );
        drop(c);
        let waiting = tokio::spawn(async move { a.run(|| 7).await.unwrap() });
        drop(hold);
        assert_eq!(waiting.await.unwrap(), 7);
        assert_eq!(b.run(|| 8).await.unwrap(), 8);
        assert!(pool.admit().is_ok());
    }
}
