//! Sharing the CPU with other programs. llama.cpp's threads meet at a barrier after every
//! operation, so when another process keeps one of them off its core, all of them wait:
//! with one busy process on a 2-core machine, two threads run several times slower than
//! one. Before each request the threads are set to the cores other processes leave free,
//! measured from `/proc` (Linux; elsewhere every core is used).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shorter windows than this are too coarse for the kernel's 10 ms CPU-time ticks.
const MIN_WINDOW: Duration = Duration::from_millis(200);

/// CPU time at one moment: all processes, and this one (clock ticks).
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    all: u64,
    mine: u64,
}

/// Chooses llama.cpp's thread count from what other processes use.
pub(crate) struct CpuShare {
    cores: usize,
    last: Mutex<(Option<Sample>, usize)>,
}

impl CpuShare {
    /// Up to `cores` threads.
    pub(crate) fn new(cores: usize) -> CpuShare {
        CpuShare { cores: cores.max(1), last: Mutex::new((None, cores.max(1))) }
    }

    /// The threads to run with now: the cores less those other processes kept busy since
    /// the last look (kept when the last look is too recent to tell).
    pub(crate) fn threads(&self) -> usize {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let Some(now) = sample() else { return self.cores };
        match last.0 {
            Some(before) if now.at.duration_since(before.at) < MIN_WINDOW => last.1,
            Some(before) => {
                let seconds = now.at.duration_since(before.at).as_secs_f64();
                let others = (now.all.saturating_sub(before.all))
                    .saturating_sub(now.mine.saturating_sub(before.mine));
                let busy_cores = others as f64 / ticks_per_second() / seconds;
                *last = (Some(now), threads_beside(self.cores, busy_cores));
                last.1
            }
            None => {
                last.0 = Some(now);
                last.1
            }
        }
    }
}

/// The threads for `cores` cores when other processes keep `busy` cores busy.
pub(crate) fn threads_beside(cores: usize, busy: f64) -> usize {
    let taken = busy.round().max(0.0) as usize;
    cores.saturating_sub(taken).max(1)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant.
    #[cfg(target_os = "linux")]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    #[cfg(not(target_os = "linux"))]
    let ticks = 100;
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// CPU time so far, from `/proc/stat` (busy time of all CPUs) and `/proc/self/stat`.
fn sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = cpu.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    let all =
        v.get(..8)?.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, x)| x).sum();
    let me = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = me.rsplit(')').next()?;
    let f: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line (utime, stime) are the 12th and 13th after the name.
    let mine = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Sample { at: Instant::now(), all, mine })
}

#[cfg(test)]
mod tests {
    use super::{threads_beside, CpuShare};

    #[test]
    fn threads_leave_the_cores_other_processes_use() {
        assert_eq!(threads_beside(2, 0.1), 2);
        assert_eq!(threads_beside(2, 0.9), 1, "one busy process on two cores");
        assert_eq!(threads_beside(2, 3.0), 1, "never fewer than one");
        assert_eq!(threads_beside(16, 2.2), 14);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_first_look_uses_every_core() {
        assert_eq!(CpuShare::new(4).threads(), 4);
    }
}
