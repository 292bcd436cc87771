//! Whole-process measurements: wall time from spawn to exit, the peak
//! resident set size the kernel kept for the process (`wait4`'s
//! `ru_maxrss`, as GNU `time -f %M` reports it) and its CPU time.
//!
//! Linux folds the spawning process's own peak into a child's `ru_maxrss`
//! when the child calls `exec` (the pre-exec address space is the parent's,
//! or a copy of it), so a child can never report less than the bench
//! process's peak at spawn time. The harness spawns every measured process
//! while it is still small and reports that floor
//! ([`own_peak_rss_kib`]), so a figure at the floor is recognisable.

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One run of a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// From just before spawning to the end of `wait4`.
    pub wall: Duration,
    /// `ru_maxrss`, KiB.
    pub peak_rss_kib: u64,
    /// User plus system CPU time (`ru_utime + ru_stime`): what the run cost
    /// the machine, much less sensitive than wall time to other load.
    pub cpu: Duration,
}

/// Medians (and the spread) over several runs.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// The median wall time.
    pub wall: Duration,
    /// The fastest run.
    pub wall_min: Duration,
    /// The slowest run.
    pub wall_max: Duration,
    /// The median peak RSS, KiB.
    pub peak_rss_kib: u64,
    /// The median CPU time.
    pub cpu: Duration,
}

impl Summary {
    /// Medians over `samples` (at least one).
    pub fn of(samples: &[Sample]) -> Summary {
        assert!(!samples.is_empty(), "no samples");
        let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
        walls.sort();
        let mut rss: Vec<u64> = samples.iter().map(|s| s.peak_rss_kib).collect();
        rss.sort();
        let mut cpu: Vec<Duration> = samples.iter().map(|s| s.cpu).collect();
        cpu.sort();
        Summary {
            wall: walls[walls.len() / 2],
            wall_min: walls[0],
            wall_max: walls[walls.len() - 1],
            peak_rss_kib: rss[rss.len() / 2],
            cpu: cpu[cpu.len() / 2],
        }
    }
}

/// Runs `command` to completion with standard output into `stdout` and
/// standard error into `stderr` (files), and measures it. Fails when it
/// cannot start or does not exit with status 0 (the error quotes the end of
/// its standard error).
pub fn run(command: &mut Command, stdout: &Path, stderr: &Path) -> Result<Sample, String> {
    let out = File::create(stdout).map_err(|e| format!("{}: {e}", stdout.display()))?;
    let err = File::create(stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let started = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    let (status, usage) = wait4(child).map_err(|e| format!("wait4: {e}"))?;
    let wall = started.elapsed();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let log = std::fs::read_to_string(stderr).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{:?} failed (wait status {status:#x}):\n{}",
            command.get_program(),
            tail.join("\n")
        ));
    }
    Ok(Sample {
        wall,
        // Linux reports ru_maxrss in KiB.
        peak_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
    })
}

/// Waits for `child` with `wait4`, which returns the resource usage of
/// exactly that process (not the sum over all children so far).
fn wait4(child: std::process::Child) -> io::Result<(libc::c_int, libc::rusage)> {
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data, for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std reaps only in
        // `wait`/`try_wait`, which are never called on it); both pointers are
        // to live locals of the right types.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    // Reaped above; dropping a `Child` neither waits nor kills.
    drop(child);
    Ok((status, usage))
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
}

/// This process's own peak RSS so far (`VmHWM`), KiB: the floor under any
/// child's `ru_maxrss` (see the module documentation).
pub fn own_peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Milliseconds, for tables.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// MiB from KiB, for tables.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
