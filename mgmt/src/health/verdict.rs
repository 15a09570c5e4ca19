//! Rise/fall: a backend goes DOWN after `fall` consecutive failed checks and back UP
//! after `rise` consecutive successes. Sans-IO, so every rule is a unit test.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    WentDown,
    WentUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub up: bool,
    ok_streak: u32,
    fail_streak: u32,
}

impl Default for Verdict {
    /// Backends start UP: traffic flows from the first second, and a dead backend
    /// is taken out after `fall` checks.
    fn default() -> Self {
        Verdict {
            up: true,
            ok_streak: 0,
            fail_streak: 0,
        }
    }
}

impl Verdict {
    pub fn record(&mut self, ok: bool, rise: u32, fall: u32) -> Transition {
        if ok {
            self.fail_streak = 0;
            self.ok_streak = self.ok_streak.saturating_add(1);
            if !self.up && self.ok_streak >= rise {
                self.up = true;
                return Transition::WentUp;
            }
        } else {
            self.ok_streak = 0;
            self.fail_streak = self.fail_streak.saturating_add(1);
            if self.up && self.fail_streak >= fall {
                self.up = false;
                return Transition::WentDown;
            }
        }
        Transition::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_then_rise() {
        let mut v = Verdict::default();
        assert!(v.up);
        assert_eq!(v.record(false, 2, 3), Transition::None);
        assert_eq!(v.record(false, 2, 3), Transition::None);
        assert_eq!(v.record(false, 2, 3), Transition::WentDown);
        assert!(!v.up);
        assert_eq!(v.record(false, 2, 3), Transition::None);
        assert_eq!(v.record(true, 2, 3), Transition::None);
        assert_eq!(v.record(true, 2, 3), Transition::WentUp);
        assert!(v.up);
    }

    #[test]
    fn a_success_resets_the_failure_streak() {
        let mut v = Verdict::default();
        v.record(false, 2, 2);
        v.record(true, 2, 2);
        assert_eq!(v.record(false, 2, 2), Transition::None);
        assert!(v.up);
        // A failure in the middle of rising starts the count again.
        assert_eq!(v.record(false, 2, 2), Transition::WentDown);
        v.record(true, 2, 2);
        v.record(false, 2, 2);
        assert_eq!(v.record(true, 2, 2), Transition::None);
        assert_eq!(v.record(true, 2, 2), Transition::WentUp);
    }
}
