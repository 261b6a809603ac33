//! The archive's walk over one relay's history for one filter: `created_at` windows from the relay's
//! cursor up to now, oldest first, so that the cursor (every event up to it is archived) moves only by
//! whole windows and a restart asks again from the first window not completed.
//!
//! A relay answers at most the `limit` asked, and many cap lower without saying so. Two rules make
//! sure a capped answer loses nothing:
//! - an answer of `limit` events may hold fewer than the window does: the window is split in two
//!   halves, the older asked first (the binary split BigBrotr uses);
//! - an answer with fewer events, some new, may still be cut by a lower cap: relays answer newest first,
//!   so everything newer than its oldest event has come, and the window is asked again with `until` at
//!   that oldest second; an answer that brings nothing new, all at one second (the top one, met
//!   already), goes on below that second, since a relay capping at that second's count answers the same
//!   however often it is asked. Otherwise an answer that brings nothing new completes the window.
//!
//! A one-second window that still comes back full cannot be split by time: it is reported
//! ([`Answer::Saturated`]) and the walk moves on. NIP-77 reconciliation, where the relay supports it,
//! does not have this limit.

/// An inclusive range of `created_at` seconds.
pub type Window = (u64, u64);

/// What the walk makes of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Every event up to `through` has been received: the cursor may move there.
    Complete {
        /// The new cursor.
        through: u64,
    },
    /// Ask again (a split window, or the same window below its oldest event): nothing is complete yet.
    More,
    /// A one-second window came back full: events of that second beyond the relay's cap may be
    /// missing. Every other event up to `through` has been received.
    Saturated {
        /// The second.
        second: u64,
        /// The new cursor.
        through: u64,
    },
}

/// One piece of the walk: ask `since..=until`; once done, everything up to `end` has been received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    since: u64,
    until: u64,
    end: u64,
}

/// The windows still to ask, for one relay and one filter.
#[derive(Clone, Debug)]
pub struct Walk {
    /// Pieces to ask, the next last.
    todo: Vec<Piece>,
    limit: usize,
}

impl Walk {
    /// Walks `since..=until` (`since` the second after the relay's cursor) asking `limit` events at a
    /// time, in windows of at most `span` seconds to begin with.
    pub fn new(since: u64, until: u64, limit: usize, span: u64) -> Self {
        let span = span.max(1);
        let mut todo = Vec::new();
        let mut start = since;
        while start <= until {
            let end = start.saturating_add(span - 1).min(until);
            todo.push(Piece {
                since: start,
                until: end,
                end,
            });
            match end.checked_add(1) {
                Some(next) => start = next,
                None => break,
            }
        }
        todo.reverse();
        Self {
            todo,
            limit: limit.max(1),
        }
    }

    /// The window to ask for now (`since`, `until`), if any is left.
    pub fn next(&self) -> Option<Window> {
        self.todo.last().map(|p| (p.since, p.until))
    }

    /// Records the answer to the window [`Walk::next`] gave: the `created_at` of every event received,
    /// and how many of them were new to this walk.
    pub fn answered(&mut self, created_at: &[u64], new: usize) -> Option<Answer> {
        let p = self.todo.pop()?;
        let full = created_at.len() >= self.limit;
        if full && p.since < p.until {
            let mid = p.since + (p.until - p.since) / 2;
            self.todo.push(Piece {
                since: mid + 1,
                until: p.until,
                end: p.end,
            });
            self.todo.push(Piece {
                since: p.since,
                until: mid,
                end: mid,
            });
            return Some(Answer::More);
        }
        if full && new == 0 {
            return Some(Answer::Saturated {
                second: p.since,
                through: p.end,
            });
        }
        if new == 0
            && let Some(&top) = created_at.iter().max()
            && created_at.iter().all(|t| *t == top)
            && top > p.since
        {
            // Nothing new, all at one second: the top second of a window asked again below a short
            // answer. A relay capping at that second's count would answer the same however often it is
            // asked: go on below it.
            self.todo.push(Piece {
                since: p.since,
                until: (top - 1).min(p.until),
                end: p.end,
            });
            return Some(Answer::More);
        }
        match created_at.iter().min() {
            Some(&oldest) if new > 0 => {
                // Newest first: everything newer than `oldest` has come; ask below it, its own second
                // included (a cap may have cut inside it).
                self.todo.push(Piece {
                    since: p.since,
                    until: oldest.clamp(p.since, p.until),
                    end: p.end,
                });
                Some(Answer::More)
            }
            _ => Some(Answer::Complete { through: p.end }),
        }
    }

    /// Windows left to ask.
    pub fn remaining(&self) -> usize {
        self.todo.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A relay holding events (second, number), answering the newest `min(cap, limit)` of a window,
    /// walked to the end: the events received, the saturated seconds, the last cursor, the requests.
    fn archive(events: &[(u64, u32)], cap: usize, limit: usize, span: u64) -> (Vec<(u64, u32)>, Vec<u64>, u64, usize) {
        let until = events.iter().map(|e| e.0).max().unwrap_or(0);
        let mut walk = Walk::new(0, until, limit, span);
        let (mut got, mut saturated, mut cursor) = (HashSet::new(), Vec::new(), 0);
        let mut asked = 0;
        while let Some((a, b)) = walk.next() {
            asked += 1;
            assert!(asked < 1_000_000, "the walk does not end");
            let mut answer: Vec<(u64, u32)> = events.iter().copied().filter(|e| (a..=b).contains(&e.0)).collect();
            answer.sort_unstable_by(|x, y| y.cmp(x));
            answer.truncate(cap.min(limit));
            let new = answer.iter().filter(|e| got.insert(**e)).count();
            let times: Vec<u64> = answer.iter().map(|e| e.0).collect();
            match walk.answered(&times, new).unwrap() {
                Answer::Complete { through } => {
                    assert!(through >= cursor, "the cursor only moves forward");
                    let missing = (events.iter())
                        .filter(|e| e.0 <= through && !saturated.contains(&e.0) && !got.contains(*e))
                        .count();
                    assert_eq!(
                        missing, 0,
                        "complete through {through} but {missing} events of unsaturated seconds missing"
                    );
                    cursor = through;
                }
                Answer::Saturated { second, through } => {
                    assert!(through >= cursor);
                    cursor = through;
                    saturated.push(second);
                }
                Answer::More => {}
            }
        }
        let mut got: Vec<_> = got.into_iter().collect();
        got.sort_unstable();
        (got, saturated, cursor, asked)
    }

    #[test]
    fn relays_that_cap_their_answers_lose_nothing() {
        let events: Vec<(u64, u32)> = (0..5_000).map(|i| (u64::from(i * 7919) % 100_000, i)).collect();
        let mut want = events.clone();
        want.sort_unstable();
        for (cap, limit) in [(500, 500), (20, 500), (7, 100), (1000, 50)] {
            let (got, saturated, cursor, asked) = archive(&events, cap, limit, 86_400);
            assert!(saturated.is_empty());
            assert_eq!(got, want, "cap {cap}, limit {limit}");
            assert_eq!(cursor, want.last().unwrap().0);
            assert!(
                // A window costs its answer, the re-ask below its oldest event, and (when that brings
                // only its top second again) one more below it.
                asked < 4 * events.len() / cap.min(limit) + 100,
                "cap {cap}, limit {limit}: {asked} requests"
            );
        }
    }

    #[test]
    fn a_second_holding_more_than_a_hidden_cap_does_not_hide_the_seconds_below() {
        // The relay answers at most 3 while 10 are asked: second 50 holds 5 events, so every answer that
        // reaches it is 3 of them, met already. The walk goes on below it.
        let mut events: Vec<(u64, u32)> = (0..5).map(|n| (50, n)).collect();
        events.extend((0..40).map(|n| (u64::from(n), 100 + n)));
        let until = 60;
        let mut walk = Walk::new(0, until, 10, 61);
        let mut got = HashSet::new();
        let mut asked = 0;
        while let Some((a, b)) = walk.next() {
            asked += 1;
            assert!(asked < 10_000, "the walk does not end");
            let mut answer: Vec<(u64, u32)> = events.iter().copied().filter(|e| (a..=b).contains(&e.0)).collect();
            answer.sort_unstable_by(|x, y| y.cmp(x));
            answer.truncate(3);
            let new = answer.iter().filter(|e| got.insert(**e)).count();
            let times: Vec<u64> = answer.iter().map(|e| e.0).collect();
            walk.answered(&times, new);
        }
        let below = (0..40).filter(|n| got.contains(&(u64::from(*n), 100 + n))).count();
        assert_eq!(below, 40, "every event below the busy second");
        assert_eq!(
            got.iter().filter(|e| e.0 == 50).count(),
            3,
            "the relay's cap at that second"
        );
    }

    #[test]
    fn a_full_second_is_reported_and_passed() {
        let mut events: Vec<(u64, u32)> = (0..30).map(|n| (5, n)).collect();
        events.extend([(1, 100), (2, 101), (9, 102)]);
        let (got, saturated, cursor, _) = archive(&events, 10, 10, 100);
        assert_eq!(saturated, vec![5]);
        assert_eq!(
            got.iter().filter(|e| e.0 == 5).count(),
            10,
            "the relay's cap for that second"
        );
        assert!(got.contains(&(1, 100)) && got.contains(&(2, 101)) && got.contains(&(9, 102)));
        assert_eq!(cursor, 9);
    }

    #[test]
    fn windows_cover_the_range_once_in_order() {
        let mut walk = Walk::new(10, 35, 100, 10);
        let mut seen = Vec::new();
        while let Some(w) = walk.next() {
            seen.push(w);
            walk.answered(&[], 0);
        }
        assert_eq!(seen, vec![(10, 19), (20, 29), (30, 35)]);
        assert_eq!(Walk::new(5, 4, 100, 10).next(), None, "an empty range");
        let mut edge = Walk::new(u64::MAX - 1, u64::MAX, 1, 10);
        assert_eq!(edge.next(), Some((u64::MAX - 1, u64::MAX)));
        assert_eq!(edge.answered(&[u64::MAX], 1), Some(Answer::More));
        assert_eq!(edge.remaining(), 2);
    }
}
