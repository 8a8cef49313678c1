//! The session's tasks: every task a session starts is in its [`Tasks`], and none outlives it for long. When the
//! session closes, its tasks see `closed` and end on their own (resetting their streams, ending their tracks with
//! the right status); whatever still runs [`TASK_GRACE`] after the transport closed is aborted.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;

use super::lock;

/// How long after the transport closed the session's remaining tasks are aborted.
pub(super) const TASK_GRACE: Duration = Duration::from_secs(1);

/// The set of a session's running tasks. Cheap to clone; every clone is the same set.
#[derive(Clone, Default)]
pub(super) struct Tasks(Arc<Mutex<Option<JoinSet<()>>>>);

impl Tasks {
    pub(super) fn new() -> Tasks {
        Tasks(Arc::new(Mutex::new(Some(JoinSet::new()))))
    }

    /// Starts `task` as one of the session's; after [`Tasks::abort_all`] it is not started at all.
    pub(super) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut set = lock(&self.0);
        if let Some(set) = set.as_mut() {
            // Forget the finished ones, so the set holds only what runs.
            while set.try_join_next().is_some() {}
            set.spawn(task);
        }
    }

    /// Aborts every task still running, and any started later.
    pub(super) fn abort_all(&self) {
        let set = lock(&self.0).take();
        // Dropping the set aborts its tasks (outside the lock: a task may be dropped here).
        drop(set);
    }

    /// How many tasks run.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        let mut set = lock(&self.0);
        set.as_mut().map_or(0, |set| {
            while set.try_join_next().is_some() {}
            set.len()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn finished_tasks_are_forgotten_and_the_rest_aborted() {
        let tasks = Tasks::new();
        tasks.spawn(async {});
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        tokio::task::yield_now().await;
        assert_eq!(tasks.len(), 1);
        tasks.abort_all();
        // The pending task was dropped: its sender with it.
        assert!(rx.await.is_err());
        tasks.spawn(async {});
        assert_eq!(tasks.len(), 0);
    }
}
