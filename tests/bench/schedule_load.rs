//! A sequential `schedule.json` load generator for `tests/bench/jobs.py`: one keep-alive
//! connection, one request at a time, each a single write of prepared bytes.
//!
//! Why a compiled client beside the bench's Python ones: a sequential client's own time per
//! request is part of every figure it measures, and the interpreter's share of it is large
//! against scrapyd-rs's quarter of a millisecond per request (measured here: from the bench's
//! leanest Python client to this one, scrapyd-rs's rate rose by a median of 13%, stock's by 6%).
//! Load generators such as `ab` and `wrk` are compiled for that reason; this is the same idea
//! without installing one. It checks every answer (status 200 and `"status": "ok"`), so a daemon
//! that refuses jobs cannot look fast.
//!
//! ```text
//! schedule_load PORT COUNT BODY_PREFIX
//! ```
//!
//! Request `i` posts `BODY_PREFIX` followed by `i` (for example `project=demo&spider=args&jobid=c`
//! gives job ids `c0`, `c1`, ...). Prints `<requests per second>` on one line.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, count, body_prefix] = args.as_slice() else {
        eprintln!("usage: schedule_load PORT COUNT BODY_PREFIX");
        return ExitCode::from(2);
    };
    let (Ok(port), Ok(count)) = (port.parse::<u16>(), count.parse::<u32>()) else {
        eprintln!("PORT and COUNT must be numbers");
        return ExitCode::from(2);
    };
    match run(port, count, body_prefix) {
        Ok(per_second) => {
            println!("{per_second:.1}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("schedule_load: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Sends `count` schedules one after another and returns how many were answered per second.
fn run(port: u16, count: u32, body_prefix: &str) -> io::Result<f64> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    let mut answers = Answers::default();
    let mut request = Vec::with_capacity(512);
    let started = Instant::now();
    for i in 0..count {
        let body = format!("{body_prefix}{i}");
        request.clear();
        write!(
            request,
            "POST /schedule.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        stream.write_all(&request)?;
        let (status, answer) = answers.next(&mut stream)?;
        if status != 200 || !contains(answer, br#""status": "ok""#) {
            let answer = String::from_utf8_lossy(answer);
            return Err(io::Error::other(format!("request {i} was answered {status}: {answer}")));
        }
    }
    Ok(f64::from(count) / started.elapsed().as_secs_f64())
}

/// Reads whole answers, one at a time, off a keep-alive connection.
#[derive(Default)]
struct Answers {
    buffer: Vec<u8>,
    /// Where the previous answer ended in `buffer`.
    consumed: usize,
}

impl Answers {
    /// The next answer's status and body (which needs a `Content-Length`, as both daemons send).
    fn next(&mut self, stream: &mut TcpStream) -> io::Result<(u16, &[u8])> {
        self.buffer.drain(..self.consumed);
        self.consumed = 0;
        loop {
            if let Some(end) = self.buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).to_ascii_lowercase();
                let status_line = head.lines().next().unwrap_or_default();
                let status = status_line.split(' ').nth(1).and_then(|code| code.parse().ok());
                let length = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse::<usize>().ok());
                let (Some(status), Some(length)) = (status, length) else {
                    return Err(io::Error::other(format!("an answer without a status or length: {head}")));
                };
                let body = end + 4;
                if self.buffer.len() >= body + length {
                    self.consumed = body + length;
                    return Ok((status, &self.buffer[body..body + length]));
                }
            }
            let mut chunk = [0; 16 * 1024];
            let read = stream.read(&mut chunk)?;
            if read == 0 {
                return Err(io::Error::other("the daemon closed the connection"));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}
