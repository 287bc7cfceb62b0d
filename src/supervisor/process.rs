//! Facts about processes the supervisor needs from the kernel: signals, and the start time that
//! tells a crawl from an unrelated process that got its pid later.

use std::io;

/// A process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22), or `None` if
/// there is no such process.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces or parentheses.
    let after_name = &stat[stat.rfind(')')? + 2..];
    // `after_name` starts at field 3, so field 22 is its 20th word.
    after_name.split(' ').nth(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `ticks` (and has not exited into a zombie
/// we are responsible for reaping: a zombie's start time is still readable, so check the state).
pub fn is_alive(pid: u32, ticks: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let Some(close) = stat.rfind(')') else { return false };
    let mut fields = stat[close + 2..].split(' ');
    let state = fields.next().unwrap_or("");
    let started = fields.nth(18).and_then(|f| f.parse::<u64>().ok());
    state != "Z" && state != "X" && started == Some(ticks)
}

/// The process (and its start time) whose environment holds exactly `entry` (`NAME=value`): how
/// a crawl is found when neither the daemon nor the runner could record its pid before a crash.
/// A scan of `/proc`, only ever needed in that rare case; processes of other users are not
/// readable and are skipped.
pub fn find_by_environment(entry: &str) -> Option<(u32, u64)> {
    let wanted = entry.as_bytes();
    for dir in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = dir.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(environ) = std::fs::read(dir.path().join("environ")) else { continue };
        if environ.split(|&b| b == 0).any(|variable| variable == wanted)
            && let Some(ticks) = start_ticks(pid)
        {
            return Some((pid, ticks));
        }
    }
    None
}

/// Sends `signal` to one process.
pub fn signal(pid: u32, signal: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) only reads its two integer arguments.
    if unsafe { libc::kill(pid, signal) } == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Sends `signal` to a whole process group, so helpers a crawl started (browsers, drivers) get it too.
pub fn signal_group(pgid: u32, signal: i32) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: killpg(2) only reads its two integer arguments.
    if unsafe { libc::killpg(pgid, signal) } == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// `cancel.json`'s `signal`, converted as stock converts it: a string of ASCII digits is a number,
/// `HUP`, `STOP`, `INT`, `KILL` and `TERM` are names; anything else is stock's `TypeError`, and a
/// number the kernel does not know is its `OSError`. Errors are `(exception class, text)`.
pub fn parse_signal(text: &str) -> Result<i32, (&'static str, &'static str)> {
    let number = match text {
        "HUP" => libc::SIGHUP,
        "STOP" => libc::SIGSTOP,
        "INT" => libc::SIGINT,
        "KILL" => libc::SIGKILL,
        "TERM" => libc::SIGTERM,
        digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => match digits.parse::<i32>() {
            Ok(number) if (0..=64).contains(&number) => number,
            _ => return Err(("OSError", "[Errno 22] Invalid argument")),
        },
        _ => return Err(("TypeError", "'str' object cannot be interpreted as an integer")),
    };
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_start_time_is_readable_and_alive() {
        let pid = std::process::id();
        let ticks = start_ticks(pid).expect("our own stat");
        assert!(is_alive(pid, ticks));
        assert!(!is_alive(pid, ticks + 1), "another start time is another process");
        assert_eq!(start_ticks(u32::MAX / 2), None);
    }

    #[test]
    fn a_process_is_found_by_its_environment() {
        let marker = format!("SCRAPYD_RS_TEST_MARKER={}", std::process::id());
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .env("SCRAPYD_RS_TEST_MARKER", std::process::id().to_string())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut found = find_by_environment(&marker);
        while found.is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = find_by_environment(&marker);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found.map(|(pid, _)| pid), Some(child.id()));
        assert_eq!(find_by_environment("SCRAPYD_RS_TEST_MARKER=nobody"), None);
    }

    #[test]
    fn signals_parse_as_stock() {
        assert_eq!(parse_signal("INT"), Ok(2));
        assert_eq!(parse_signal("TERM"), Ok(15));
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("0"), Ok(0));
        for bad in ["BOGUS", "SIGTERM", "term", "-9", ""] {
            assert_eq!(parse_signal(bad), Err(("TypeError", "'str' object cannot be interpreted as an integer")));
        }
        assert_eq!(parse_signal("99999"), Err(("OSError", "[Errno 22] Invalid argument")));
    }
}
