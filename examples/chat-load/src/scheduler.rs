//! The dispatcher: one OS thread walks the [`Schedule`] and hands each due
//! send to its user's connection task at its due time.
//!
//! A thread of its own, because the async runtime's timers tick in whole
//! milliseconds (a send would leave up to a millisecond late, and that
//! would count as latency), while a sleeping thread wakes within tens of
//! microseconds. When it falls behind (the machine is saturated) it hands
//! out everything overdue at once: the schedule never slows down.

use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::schedule::Schedule;

/// A send that is due: when, and which of its user's sends it is (for the
/// `client_msg_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Due {
    /// When it was due.
    pub(crate) at: Instant,
    /// The user's send number, from 0.
    pub(crate) k: u64,
}

/// Starts handing out `schedule`'s sends, send `j` to `users[user]`
/// (`None`: that user is not connected and its sends are skipped). The
/// thread ends after the last due send.
pub(crate) fn spawn(
    schedule: Schedule,
    users: Vec<Option<mpsc::UnboundedSender<Due>>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("chat-load-scheduler".into())
        .spawn(move || dispatch(&schedule, &users))
}

fn dispatch(schedule: &Schedule, users: &[Option<mpsc::UnboundedSender<Due>>]) {
    let count = users.len().max(1) as u64;
    let mut j = 0;
    while let Some((at, user)) = schedule.due(j) {
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        if let Some(Some(tx)) = users.get(user) {
            // A closed channel: that connection has ended, its sends are lost.
            let _ = tx.send(Due { at, k: j / count });
        }
        j += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::schedule::Clock;

    #[test]
    fn every_connected_user_gets_its_sends_in_order() {
        let origin = Instant::now();
        let clock = Clock::new(origin, origin, Duration::ZERO, Duration::from_millis(50));
        // 200 per second for 50 ms: 10 sends, dealt to users 0, 1, 2 in turn;
        // user 1's are skipped.
        let schedule = Schedule::new(&clock, 200.0, 3);
        let (a_tx, mut a) = mpsc::unbounded_channel();
        let (c_tx, mut c) = mpsc::unbounded_channel();
        spawn(schedule, vec![Some(a_tx), None, Some(c_tx)])
            .unwrap()
            .join()
            .unwrap();
        let mut ks = Vec::new();
        let mut last = origin;
        while let Ok(due) = a.try_recv() {
            assert!(due.at >= last);
            last = due.at;
            ks.push(due.k);
        }
        assert_eq!(ks, [0, 1, 2, 3]);
        let mut n = 0;
        while c.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, 3);
    }
}
