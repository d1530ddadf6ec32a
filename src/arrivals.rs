//! Jobs that arrive while the run goes (`workload.arrivals`): at each node
//! a Poisson stream of jobs of the workload's kind, at `rate_per_s` for
//! `duration_s` seconds, so that a real run can reproduce the simulator's
//! queueing experiments. Pure.
//!
//! The streams are drawn from the seed, so both nodes know the whole
//! schedule from the start: the run's length (the initial jobs, then the
//! master's arrivals, then the slave's) and every job's arrival time. The
//! master sizes its results for all of them and measures each arrived
//! job's response time (from its arrival to its result held).

use serde::{Deserialize, Serialize};

use crate::ids::{JobId, Role};

/// `workload.arrivals` in config.json.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrivals {
    /// Jobs a second arriving at each node.
    pub rate_per_s: f64,
    /// For how long, seconds from the run's start.
    pub duration_s: f64,
    /// The random streams' seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_seed() -> u64 {
    1
}

/// SplitMix64: small, fast and good enough for exponential variates (the
/// gaps between arrivals here, and the queueing experiment's).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An exponential variate of mean `mean`.
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        // 53 random bits in (0, 1].
        let u = ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        -mean * u.ln()
    }
}

impl Arrivals {
    /// The arrival times at `role`, seconds from the run's start, in order;
    /// at most `limit` of them.
    pub fn times(&self, role: Role, limit: usize) -> Vec<f64> {
        let stream = match role {
            Role::Master => 0,
            Role::Slave => 0x6a09_e667_f3bc_c908,
        };
        let mut rng = Rng(self.seed ^ stream);
        let mean = 1.0 / self.rate_per_s;
        let mut t = 0.0;
        let mut times = Vec::new();
        while times.len() < limit {
            t += rng.exp(mean);
            if t >= self.duration_s {
                break;
            }
            times.push(t);
        }
        times
    }
}

/// The run's jobs: the initial ones, then each node's arrivals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    initial: u32,
    master: Vec<f64>,
    slave: Vec<f64>,
}

impl Schedule {
    /// The schedule of `initial` jobs and `arrivals`; at most `max_jobs`
    /// in all (a stream is cut short there).
    pub fn new(initial: u32, arrivals: Option<&Arrivals>, max_jobs: u32) -> Self {
        let room = max_jobs.saturating_sub(initial) as usize;
        let (master, slave) = match arrivals {
            Some(a) => {
                let master = a.times(Role::Master, room);
                let slave = a.times(Role::Slave, room - master.len());
                (master, slave)
            }
            None => (Vec::new(), Vec::new()),
        };
        Schedule {
            initial,
            master,
            slave,
        }
    }

    /// Every job of the run, arrivals included.
    pub fn total(&self) -> u32 {
        self.initial + self.master.len() as u32 + self.slave.len() as u32
    }

    /// True when jobs arrive during the run.
    pub fn has_arrivals(&self) -> bool {
        !self.master.is_empty() || !self.slave.is_empty()
    }

    /// The first id of `role`'s arrivals, and their times.
    pub fn arrivals(&self, role: Role) -> (JobId, &[f64]) {
        match role {
            Role::Master => (self.initial, &self.master),
            Role::Slave => (self.initial + self.master.len() as u32, &self.slave),
        }
    }

    /// When job `id` arrives, seconds from the run's start (0 for the
    /// initial jobs; `None` past the run).
    pub fn arrival_of(&self, id: JobId) -> Option<f64> {
        if id < self.initial {
            return Some(0.0);
        }
        let i = (id - self.initial) as usize;
        self.master
            .get(i)
            .or_else(|| self.slave.get(i - self.master.len().min(i)))
            .copied()
            .filter(|_| id < self.total())
    }

    /// The last arrival of either node, seconds from the run's start.
    pub fn last_arrival(&self) -> f64 {
        let last = |v: &[f64]| v.last().copied().unwrap_or(0.0);
        last(&self.master).max(last(&self.slave))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrivals(rate: f64, duration: f64, seed: u64) -> Arrivals {
        Arrivals {
            rate_per_s: rate,
            duration_s: duration,
            seed,
        }
    }

    #[test]
    fn a_stream_is_poisson_at_its_rate_and_the_same_for_a_seed() {
        let a = arrivals(1000.0, 20.0, 7);
        let t = a.times(Role::Master, usize::MAX);
        // 20,000 expected; a Poisson count's sd is about 141.
        assert!((19_400..=20_600).contains(&t.len()), "{}", t.len());
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        assert!(t.iter().all(|&x| (0.0..20.0).contains(&x)));
        // Exponential gaps: the share under the mean is 1 - 1/e.
        let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        let under = gaps.iter().filter(|&&g| g < 1e-3).count() as f64 / gaps.len() as f64;
        assert!((under - (1.0 - (-1.0f64).exp())).abs() < 0.02, "{under}");
        assert_eq!(t, a.times(Role::Master, usize::MAX));
        assert_ne!(t, a.times(Role::Slave, usize::MAX));
        assert_ne!(t, arrivals(1000.0, 20.0, 8).times(Role::Master, usize::MAX));
    }

    #[test]
    fn the_schedule_numbers_the_initial_jobs_then_each_nodes_arrivals() {
        let a = arrivals(50.0, 1.0, 3);
        let s = Schedule::new(10, Some(&a), u32::MAX);
        let (m_first, m) = s.arrivals(Role::Master);
        let (s_first, sl) = s.arrivals(Role::Slave);
        assert_eq!(m_first, 10);
        assert_eq!(s_first, 10 + m.len() as u32);
        assert_eq!(s.total(), 10 + (m.len() + sl.len()) as u32);
        assert_eq!(s.arrival_of(3), Some(0.0));
        assert_eq!(s.arrival_of(m_first), Some(m[0]));
        assert_eq!(s.arrival_of(s_first + 1), Some(sl[1]));
        assert_eq!(s.arrival_of(s.total()), None);
        assert_eq!(s.last_arrival(), m.last().unwrap().max(*sl.last().unwrap()));
        // Capped: the streams stop at the largest run.
        let capped = Schedule::new(10, Some(&a), 15);
        assert_eq!(capped.total(), 15);
        assert!(!Schedule::new(10, None, u32::MAX).has_arrivals());
    }
}
