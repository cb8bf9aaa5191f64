//! A child process's output, line by line, read on a thread of its own until the child closes
//! it, so that a test waiting for a line gives up after a timeout instead of blocking on a
//! silent child.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub struct Lines {
    lines: Receiver<String>,
    /// Every line read so far, for failure messages.
    pub seen: String,
}

impl Lines {
    /// Follows `output` (a child's stderr or stdout) until it closes.
    pub fn follow(output: impl Read + Send + 'static) -> Lines {
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines() {
                let Ok(line) = line else { break };
                // Nobody listening any more: keep reading, so the child never writes into a
                // closed pipe.
                send.send(line).ok();
            }
        });
        Lines {
            lines,
            seen: String::new(),
        }
    }

    /// The first line containing `needle`, or `None` when the output closes or `timeout`
    /// passes first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Everything until the output closes (or `timeout` passes), appended to `seen`.
    pub fn drain(&mut self, timeout: Duration) {
        self.wait_for("\u{0}never\u{0}", timeout);
    }
}

/// Starts `yeyak ARGS` (a `serve`) with none of the caller's environment, and waits for it to
/// listen: the child, the address it listens on ("127.0.0.1:PORT", from its "listening on
/// http://" line on stderr) and its stderr to follow further. A server that does not start
/// within `timeout` is killed and the test fails with what it printed.
pub fn serve(args: &[&str], timeout: Duration) -> (std::process::Child, String, Lines) {
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn yeyak");
    let mut stderr = Lines::follow(server.stderr.take().expect("stderr piped"));
    let Some(line) = stderr.wait_for("listening on http://", timeout) else {
        server.kill().ok();
        panic!("the server did not start:\n{}", stderr.seen);
    };
    let after = line
        .split("listening on http://")
        .nth(1)
        .unwrap_or_default();
    let addr = after
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    (server, addr, stderr)
}
