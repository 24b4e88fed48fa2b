//! Memory, CPU, threads, open files and TCP connections of processes, read from `/proc`.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use tokio::task::JoinHandle;

/// Memory of a process from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size since start (`VmHWM`).
    pub hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`.
pub fn memory(pid: i32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status(&text).with_context(|| format!("{path} has no VmRSS/VmHWM"))
}

fn parse_status(text: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some(Memory { rss_kib: field("VmRSS:")?, hwm_kib: field("VmHWM:")? })
}

/// Threads of `pid` (`Threads` of `/proc/<pid>/status`).
pub fn threads(pid: i32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status_number(&text, "Threads:").with_context(|| format!("{path} has no Threads"))
}

fn status_number(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// Open file descriptors of `pid` (the entries of `/proc/<pid>/fd`).
pub fn open_fds(pid: i32) -> anyhow::Result<usize> {
    let path = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&path).with_context(|| format!("reading {path}"))?.count())
}

/// One established TCP connection of a process, by its ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConnection {
    /// The process's own port.
    pub local_port: u16,
    /// The port it is connected to (5432 for PostgreSQL, 5672 for RabbitMQ).
    pub remote_port: u16,
}

/// The established TCP connections (IPv4 and IPv6) whose sockets `pid` holds open:
/// its socket inodes from `/proc/<pid>/fd`, looked up in `/proc/<pid>/net/tcp{,6}`.
pub fn tcp_connections(pid: i32) -> anyhow::Result<Vec<TcpConnection>> {
    let fd_dir = format!("/proc/{pid}/fd");
    let inodes: std::collections::HashSet<u64> = std::fs::read_dir(&fd_dir)
        .with_context(|| format!("reading {fd_dir}"))?
        .flatten()
        .filter_map(|entry| socket_inode(&std::fs::read_link(entry.path()).ok()?.to_string_lossy()))
        .collect();
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let path = format!("/proc/{pid}/net/{table}");
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        out.extend(parse_tcp_table(&text).filter(|(inode, _)| inodes.contains(inode)).map(|(_, c)| c));
    }
    Ok(out)
}

/// The inode of a `socket:[12345]` link target.
fn socket_inode(target: &str) -> Option<u64> {
    target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// `(inode, connection)` of every ESTABLISHED row of a `/proc/net/tcp` or `tcp6` table.
fn parse_tcp_table(text: &str) -> impl Iterator<Item = (u64, TcpConnection)> + '_ {
    const ESTABLISHED: &str = "01";
    let port = |address: &str| u16::from_str_radix(address.rsplit(':').next()?, 16).ok();
    text.lines().skip(1).filter_map(move |line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(3)? != &ESTABLISHED {
            return None;
        }
        let connection = TcpConnection { local_port: port(fields.get(1)?)?, remote_port: port(fields.get(2)?)? };
        Some((fields.get(9)?.parse().ok()?, connection))
    })
}

/// User plus system CPU time of `pid` in seconds (`utime + stime` of
/// `/proc/<pid>/stat`, divided by `clk_tck`).
pub fn cpu_seconds(pid: i32, clk_tck: f64) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ticks = parse_stat_ticks(&text).with_context(|| format!("{path} is not in the expected format"))?;
    Ok(ticks as f64 / clk_tck)
}

/// User plus system CPU time, in seconds, of the children `pid` has waited
/// for (`cutime + cstime`): the shells a worker ran for `bash` tasks.
pub fn children_cpu_seconds(pid: i32, clk_tck: f64) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ticks = parse_stat_children_ticks(&text).with_context(|| format!("{path} is not in the expected format"))?;
    Ok(ticks as f64 / clk_tck)
}

/// The sum of two numeric fields of `/proc/<pid>/stat`, counted from field 3 (state) as index 0.
fn stat_fields_sum(text: &str, first: usize) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces;
    // fields after the last ')' start at field 3.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let a: u64 = fields.get(first)?.parse().ok()?;
    let b: u64 = fields.get(first + 1)?.parse().ok()?;
    Some(a + b)
}

/// utime + stime: fields 14 and 15.
fn parse_stat_ticks(text: &str) -> Option<u64> {
    stat_fields_sum(text, 11)
}

/// cutime + cstime: fields 16 and 17.
fn parse_stat_children_ticks(text: &str) -> Option<u64> {
    stat_fields_sum(text, 13)
}

/// Summed CPU seconds of every live process whose command name (`/proc/<pid>/comm`) is
/// one of `names`, e.g. the PostgreSQL backends or RabbitMQ's `beam.smp`.
/// A process that exits between two readings drops out of the sum, so read
/// it around a window in which the processes of interest stay up.
pub fn cpu_seconds_of_commands(names: &[&str], clk_tck: f64) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| names.contains(&comm.trim()))
        })
        .filter_map(|pid| cpu_seconds(pid, clk_tck).ok())
        .sum()
}

/// Busy CPU seconds of the whole machine, summed over cores (`/proc/stat`:
/// everything but idle and iowait), or `None` when it cannot be read.
pub fn machine_busy_seconds(clk_tck: f64) -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_busy(&text).map(|ticks| ticks as f64 / clk_tck)
}

fn parse_machine_busy(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map(str::parse).collect::<Result<_, _>>().ok()?;
    // user nice system idle iowait irq softirq steal ...
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some(ticks.iter().take(8).sum::<u64>() - idle)
}

/// Clock ticks per second for `/proc/<pid>/stat` (from `getconf CLK_TCK`, 100 if unknown).
pub async fn clk_tck() -> f64 {
    crate::procs::output_of("getconf", &["CLK_TCK"]).await.and_then(|s| s.parse().ok()).unwrap_or(100.0)
}

/// Largest values a [`Sampler`] saw for one process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peak {
    /// Largest `VmRSS` sampled.
    pub max_rss_kib: u64,
    /// Last `VmHWM` read (the kernel's own peak).
    pub hwm_kib: u64,
    /// Number of successful samples.
    pub samples: usize,
}

/// Samples the memory of some processes every `every` in the background.
pub struct Sampler {
    peaks: Arc<Mutex<Vec<Peak>>>,
    task: JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling `pids` every `every`.
    pub fn start(pids: Vec<i32>, every: Duration) -> Sampler {
        let peaks = Arc::new(Mutex::new(vec![Peak::default(); pids.len()]));
        let shared = peaks.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let readings: Vec<Option<Memory>> = pids.iter().map(|&pid| memory(pid).ok()).collect();
                let mut peaks = shared.lock().expect("sampler lock");
                for (peak, reading) in peaks.iter_mut().zip(readings) {
                    if let Some(m) = reading {
                        peak.max_rss_kib = peak.max_rss_kib.max(m.rss_kib);
                        peak.hwm_kib = m.hwm_kib;
                        peak.samples += 1;
                    }
                }
            }
        });
        Sampler { peaks, task }
    }

    /// Stops sampling and returns the peaks, in the order of the pids.
    pub fn stop(self) -> Vec<Peak> {
        self.task.abort();
        let peaks = self.peaks.lock().expect("sampler lock").clone();
        peaks
    }
}

/// KiB to MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kib() {
        let text = "Name:\tgust-worker\nVmPeak:\t  500 kB\nVmHWM:\t   12345 kB\nVmRSS:\t    9876 kB\n";
        assert_eq!(parse_status(text), Some(Memory { rss_kib: 9876, hwm_kib: 12345 }));
        assert_eq!(parse_status("Name: x\n"), None);
    }

    #[test]
    fn stat_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
        let text = "42 (gust (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1000";
        assert_eq!(parse_stat_ticks(text), Some(300));
        let with_children = "42 (gust (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 70 7 20 0 4 0 1000";
        assert_eq!(parse_stat_children_ticks(with_children), Some(77));
    }

    #[test]
    fn machine_busy_time_excludes_idle_and_iowait() {
        let text = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(parse_machine_busy(text), Some(161));
        assert_eq!(parse_machine_busy("intr 1 2 3\n"), None);
    }

    #[test]
    fn threads_are_read_from_the_status_file() {
        let text = "Name:\tgust-worker\nThreads:\t7\nVmRSS:\t 9876 kB\n";
        assert_eq!(status_number(text, "Threads:"), Some(7));
        assert_eq!(status_number(text, "Missing:"), None);
    }

    #[test]
    fn only_established_connections_are_read_from_a_tcp_table_with_their_ports_and_inodes() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 1111 1 0 100 0 0 10 0\n\
           1: 0100007F:D3A2 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0 20 4 30 10 -1\n\
           2: 0100007F:9C40 0100007F:1628 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0 20 4 30 10 -1\n";
        let rows: Vec<(u64, TcpConnection)> = parse_tcp_table(text).collect();
        assert_eq!(
            rows,
            vec![
                (2222, TcpConnection { local_port: 0xD3A2, remote_port: 5432 }),
                (3333, TcpConnection { local_port: 0x9C40, remote_port: 5672 }),
            ]
        );
        assert_eq!(socket_inode("socket:[2222]"), Some(2222));
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn our_own_process_can_be_read() {
        let pid = std::process::id() as i32;
        assert!(memory(pid).unwrap().rss_kib > 0);
        assert!(cpu_seconds(pid, 100.0).unwrap() >= 0.0);
        assert!(threads(pid).unwrap() >= 1);
        assert!(open_fds(pid).unwrap() >= 3, "stdin, stdout and stderr at least");
    }

    #[test]
    fn a_connection_we_hold_is_found_by_its_ports() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server_port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", server_port)).unwrap();
        let client_port = client.local_addr().unwrap().port();
        let ours = tcp_connections(std::process::id() as i32).unwrap();
        assert!(
            ours.contains(&TcpConnection { local_port: client_port, remote_port: server_port }),
            "{ours:?} lacks {client_port} → {server_port}"
        );
    }
}
