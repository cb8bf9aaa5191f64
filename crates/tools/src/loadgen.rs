//! `yeyak loadgen`: a small, bounded load generator against a running `yeyak serve` on
//! loopback. Phase 1 runs whole citizen flows (verify -> queue -> poll until admitted -> book)
//! over `connections` keep-alive connections; phase 2 is `read_s` seconds of the reads a
//! waiting page makes (the light, its ticket). It reports requests per second and latency
//! percentiles per phase, and one JSON line last.
//!
//! Measure the API, not the simulated providers: start the server with `--instant-providers`
//! and an outflow rate above the load (`--admit-per-s 100000`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub url: String,
    pub admin_token: String,
    pub people: u32,
    pub connections: u32,
    pub read_s: u64,
}

/// The most connections the generator opens.
pub const CONNECTIONS_MAX: u32 = 512;
/// Longest a person polls for an admission before the run is given up.
pub const ADMISSION_WAIT_MAX: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the URL must look like http://127.0.0.1:8080, got {0}")]
    Url(String),
    #[error("cannot reach the server: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server answered {status} to {what}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error("the server's answer could not be read: {0}")]
    Protocol(String),
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Connection {
    async fn open(addr: &str) -> Result<Connection, LoadError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufReader::new(stream),
            host: addr.to_owned(),
        })
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), LoadError> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = token
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| LoadError::Protocol(format!("status line {line:?}")))?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value
                        .trim()
                        .parse()
                        .map_err(|_| LoadError::Protocol("content-length".into()))?;
                }
            }
        }
        let mut bytes = vec![0u8; length];
        self.stream.read_exact(&mut bytes).await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }
}

fn expect(what: &str, (status, body): (u16, Value), ok: &[u16]) -> Result<Value, LoadError> {
    if ok.contains(&status) {
        Ok(body)
    } else {
        Err(LoadError::Refused {
            what: what.to_owned(),
            status,
            body: body.to_string(),
        })
    }
}

#[derive(Debug, Default)]
struct Tally {
    latencies_us: Vec<u64>,
}

impl Tally {
    fn add(&mut self, started: Instant) {
        self.latencies_us.push(started.elapsed().as_micros() as u64);
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

/// One person's whole flow; every request is timed.
async fn person(c: &mut Connection, n: u32, tally: &mut Tally) -> Result<bool, LoadError> {
    let born = chrono::NaiveDate::from_ymd_opt(
        1980 + (n % 20) as i32,
        1 + n % 12,
        [9, 19, 29][(n % 3) as usize],
    )
    .ok_or_else(|| LoadError::Protocol("birth date".into()))?;
    let resident_id = yeyak_identity::synthetic_number(born, n % 2 == 1, n);
    let t = Instant::now();
    let verify = json!({"method": "kakao", "resident_id": resident_id, "name": "load", "device_id": format!("load-{n}")});
    let session = expect(
        "verify",
        c.call("POST", "/v1/verify", None, Some(&verify)).await?,
        &[200],
    )?;
    tally.add(t);
    let session = session["session_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let t = Instant::now();
    let ticket = expect(
        "queue",
        c.call("POST", "/v1/queue", Some(&session), None).await?,
        &[200, 201],
    )?;
    tally.add(t);
    let ticket = ticket["ticket"].as_u64().unwrap_or(u64::MAX);
    let until = Instant::now() + ADMISSION_WAIT_MAX;
    let admission = loop {
        let t = Instant::now();
        let status = expect(
            "poll",
            c.call("GET", &format!("/v1/queue/{ticket}"), Some(&session), None)
                .await?,
            &[200],
        )?;
        tally.add(t);
        if let Some(token) = status["admission_token"].as_str() {
            break token.to_owned();
        }
        if Instant::now() > until {
            return Err(LoadError::Protocol(format!(
                "ticket {ticket} not admitted in time"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let t = Instant::now();
    let book = json!({"clinic_id": "load", "date": "2021-08-31"});
    let (status, body) = c
        .call("POST", "/v1/reservations", Some(&admission), Some(&book))
        .await?;
    tally.add(t);
    expect("book", (status, body), &[201, 409]).map(|_| status == 201)
}

fn phase_line(name: &str, tally: &mut Tally, took: Duration) -> (String, f64, f64, f64) {
    tally.latencies_us.sort_unstable();
    let rps = tally.latencies_us.len() as f64 / took.as_secs_f64().max(1e-9);
    let (p50, p99) = (
        percentile(&tally.latencies_us, 0.5),
        percentile(&tally.latencies_us, 0.99),
    );
    (
        format!(
            "{name:<8} {:>9} requests in {:>6.2} s  {rps:>9.0} req/s  p50 {p50:>7.2} ms  p99 {p99:>7.2} ms",
            tally.latencies_us.len(),
            took.as_secs_f64()
        ),
        rps,
        p50,
        p99,
    )
}

pub async fn run(config: &LoadConfig) -> Result<String, LoadError> {
    let addr = config
        .url
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/').to_owned())
        .ok_or_else(|| LoadError::Url(config.url.clone()))?;
    let connections = config.connections.clamp(1, CONNECTIONS_MAX);
    let mut admin = Connection::open(&addr).await?;
    let token = Some(config.admin_token.as_str());
    expect(
        "clock",
        admin
            .call(
                "POST",
                "/admin/clock",
                token,
                Some(&json!({"now": "2021-08-09T20:05:00+09:00"})),
            )
            .await?,
        &[200],
    )?;
    let doses = config.people.saturating_mul(10).max(10);
    let supply = json!({"clinic_id": "load", "name": "Load Clinic", "region": "seoul", "date": "2021-08-31", "doses": doses});
    expect(
        "supply",
        admin
            .call("POST", "/admin/supply", token, Some(&supply))
            .await?,
        &[201, 409],
    )?;

    eprintln!(
        "loadgen: {} people over {connections} connections",
        config.people
    );
    let next = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (addr, next, people) = (addr.clone(), next.clone(), config.people);
        workers.spawn(async move {
            let mut c = Connection::open(&addr).await?;
            let mut tally = Tally::default();
            let mut booked = 0u32;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= people {
                    return Ok::<_, LoadError>((tally, booked));
                }
                if n % 1000 == 0 {
                    eprintln!("loadgen: person {n}");
                }
                booked += u32::from(person(&mut c, n, &mut tally).await?);
            }
        });
    }
    let mut flows = Tally::default();
    let mut booked = 0;
    while let Some(done) = workers.join_next().await {
        let (tally, b) = done.map_err(|e| LoadError::Protocol(e.to_string()))??;
        flows.latencies_us.extend(tally.latencies_us);
        booked += b;
    }
    let flows_took = started.elapsed();

    eprintln!("loadgen: {} s of reads", config.read_s);
    let read_until = Instant::now() + Duration::from_secs(config.read_s);
    let started = Instant::now();
    for w in 0..connections {
        let addr = addr.clone();
        workers.spawn(async move {
            let mut c = Connection::open(&addr).await?;
            let mut tally = Tally::default();
            let mut i = 0u64;
            while Instant::now() < read_until {
                let t = Instant::now();
                let path = if i % 2 == 0 {
                    "/v1/congestion".to_owned()
                } else {
                    format!("/v1/queue/{}", (i + u64::from(w)) % 1000)
                };
                let (status, _) = c.call("GET", &path, None, None).await?;
                if status != 200 && status != 404 {
                    return Err(LoadError::Refused {
                        what: path,
                        status,
                        body: String::new(),
                    });
                }
                tally.add(t);
                i += 1;
            }
            Ok((tally, 0))
        });
    }
    let mut reads = Tally::default();
    while let Some(done) = workers.join_next().await {
        let (tally, _) = done.map_err(|e| LoadError::Protocol(e.to_string()))??;
        reads.latencies_us.extend(tally.latencies_us);
    }
    let reads_took = started.elapsed();

    let (flow_line, flow_rps, flow_p50, flow_p99) = phase_line("flows", &mut flows, flows_took);
    let (read_line, read_rps, read_p50, read_p99) = phase_line("reads", &mut reads, reads_took);
    let reservations_per_s = f64::from(booked) / flows_took.as_secs_f64().max(1e-9);
    let machine = json!({
        "people": config.people, "connections": connections, "booked": booked,
        "flow_requests_per_s": flow_rps.round(), "flow_p50_ms": flow_p50, "flow_p99_ms": flow_p99,
        "reservations_per_s": reservations_per_s.round(),
        "read_requests_per_s": read_rps.round(), "read_p50_ms": read_p50, "read_p99_ms": read_p99,
    });
    Ok(format!(
        "{flow_line}\n{read_line}\nbooked   {booked} reservations, {reservations_per_s:.0} per second (verify, queue, polls, book each)\n{machine}"
    ))
}
