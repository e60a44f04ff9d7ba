//! The scheduler clock's timetable: when each target's next slot is due.
//!
//! Every target of one interval is moved on by the same step, so slots
//! taken off in time order go back in time order: one queue per distinct
//! interval (a lane) stays sorted with a push to its back, O(1) per slot.
//! A binary heap over all targets paid a sift through 14 levels per slot
//! at 10,000 targets (4 % of the agent's CPU in `scripts/bench agent`).
//! What breaks a lane's order (a new target's random first slot, a slot
//! moved further out after an overrun) is appended too and the lane is
//! sorted before it is next read: once per clock wake-up at most, with a
//! sort that merges a sorted run and a few stragglers in linear time.
//!
//! Entries are never removed early: a stopped target's entry leaves when
//! its time comes (the clock ignores it then), so the timetable holds at
//! most one entry per target plus one per target stopped within its
//! interval. Lanes stay once created: one per distinct interval ever
//! configured.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Due times `(at, id)` by interval.
#[derive(Debug, Default)]
pub(crate) struct Timetable {
    lanes: Vec<Lane>,
}

#[derive(Debug)]
struct Lane {
    interval: Duration,
    slots: VecDeque<(Instant, u64)>,
    /// Something was pushed out of order since the last sort.
    unsorted: bool,
}

impl Timetable {
    /// Schedules slot `id` at `at` on the lane of `interval`.
    pub(crate) fn push(&mut self, interval: Duration, at: Instant, id: u64) {
        let i = match self.lanes.iter().position(|l| l.interval == interval) {
            Some(i) => i,
            None => {
                self.lanes.push(Lane { interval, slots: VecDeque::new(), unsorted: false });
                self.lanes.len() - 1
            }
        };
        let lane = &mut self.lanes[i];
        if lane.slots.back().is_some_and(|(last, _)| *last > at) {
            lane.unsorted = true;
        }
        lane.slots.push_back((at, id));
    }

    /// The earliest due time, if any slot is scheduled.
    pub(crate) fn next_due(&mut self) -> Option<Instant> {
        self.sort();
        self.lanes.iter().filter_map(|l| l.slots.front().map(|(at, _)| *at)).min()
    }

    /// Takes the earliest slot due at or before `until`.
    pub(crate) fn pop_due(&mut self, until: Instant) -> Option<(Instant, u64)> {
        self.sort();
        let lane = self
            .lanes
            .iter_mut()
            .filter(|l| l.slots.front().is_some_and(|(at, _)| *at <= until))
            .min_by_key(|l| l.slots.front().map(|(at, _)| *at))?;
        lane.slots.pop_front()
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lanes.iter().map(|l| l.slots.len()).sum()
    }

    fn sort(&mut self) {
        for lane in self.lanes.iter_mut().filter(|l| l.unsorted) {
            // Stable and adaptive: a sorted run plus stragglers is a merge.
            lane.slots.make_contiguous().sort_by_key(|(at, _)| *at);
            lane.unsorted = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a sorted list of every `(at, id)` pushed: slots come off
    /// earliest first across lanes, including new targets at random
    /// phases and slots moved several intervals out (overruns).
    #[test]
    fn pops_earliest_first_like_a_sorted_list() {
        let base = Instant::now();
        let intervals = [Duration::from_secs(10), Duration::from_secs(1), Duration::from_millis(2500)];
        let mut rng = fastrand::Rng::with_seed(7);
        let mut table = Timetable::default();
        let mut oracle: Vec<(Instant, u64)> = Vec::new();
        let mut interval_of = Vec::new();
        let mut now = base;
        let mut popped = 0;
        while popped < 20_000 {
            // Targets keep arriving during the first second.
            if interval_of.len() < 3000 {
                for _ in 0..30 {
                    let interval = intervals[rng.usize(..intervals.len())];
                    let id = interval_of.len() as u64;
                    interval_of.push(interval);
                    let at = now + interval.mul_f64(rng.f64());
                    table.push(interval, at, id);
                    oracle.push((at, id));
                }
            }
            now += Duration::from_millis(5);
            oracle.sort();
            while let Some((at, id)) = table.pop_due(now) {
                assert_eq!(oracle.first().map(|(t, _)| *t), Some(at), "earliest first");
                let i = oracle.iter().position(|e| *e == (at, id)).expect("pops what was pushed");
                oracle.remove(i);
                popped += 1;
                let interval = interval_of[id as usize];
                let steps = if rng.u8(..50) == 0 { 3 } else { 1 };
                table.push(interval, at + interval * steps, id);
                oracle.push((at + interval * steps, id));
                oracle.sort();
            }
            assert_eq!(table.next_due(), oracle.first().map(|(at, _)| *at));
            assert!(oracle.first().is_none_or(|(at, _)| *at > now), "nothing due left behind");
        }
        assert_eq!(table.len(), oracle.len());
        assert_eq!(table.lanes.len(), intervals.len());
    }
}
