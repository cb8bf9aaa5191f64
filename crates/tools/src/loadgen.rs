//! `yeyak loadgen`: a small, bounded load generator against a running `yeyak serve` on
//! loopback. Phase 1 runs whole citizen flows (verify -> queue -> poll until admitted -> book)
//! over `connections` keep-alive connections; phase 2 is `read_s` seconds of the reads a
//! waiting page makes (the light, its ticket). It reports requests per second and latency
//! percentiles per phase, and one JSON line last.
//!
//! Workload: the shared generator's crowd of the first booking day ([`crate::workload`]): made-up
//! resident numbers of eligible people born on a day ending in its digit, their devices, each
//! person's verification method and choice of clinic and date, and clinics with doses for all of
//! them. The server's clock is set just after that day opens; people come as fast as the
//! connections allow (a stampede). Each person verifies once (no second device, no retry).
//!
//! Measure the API, not the simulated providers: start the server with `--instant-providers`
//! and an outflow rate above the load (`--admit-per-s 100000`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use yeyak_domain::Campaign;

use crate::workload::{Arrival, Person, Plan, Workload, WorkloadConfig, WorkloadError};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub url: String,
    /// The campaign the server runs: the crowd is that of its first booking day.
    pub campaign: Campaign,
    pub admin_token: String,
    pub people: u32,
    pub connections: u32,
    pub read_s: u64,
}

/// The most connections the generator opens.
pub const CONNECTIONS_MAX: u32 = 512;
/// Longest a person polls for an admission before the run is given up.
pub const ADMISSION_WAIT_MAX: Duration = Duration::from_secs(120);
/// The seed of the generated people and their choices.
pub const SEED: u64 = 2021;
/// Clinics the load books at.
pub const CLINICS: u32 = 10;
/// How long after the booking day's opening the server's clock is set.
const CLOCK_AFTER_OPENING_MS: i64 = 5 * 60_000;

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
    #[error("the workload cannot be generated")]
    Workload(#[from] WorkloadError),
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
async fn person(
    c: &mut Connection,
    who: &Person,
    plan: &Plan,
    workload: &Workload,
    tally: &mut Tally,
) -> Result<bool, LoadError> {
    let t = Instant::now();
    let verify = json!({
        "method": plan.visit.method.as_str(), "resident_id": who.resident_number,
        "name": "load", "device_id": who.device.as_str(),
    });
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
    let book = json!({
        "clinic_id": workload.clinics[plan.pick.clinic].id.as_str(),
        "date": workload.dates[plan.pick.date].to_string(),
    });
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

/// The first booking day's crowd, and what each person will do.
struct Crowd {
    workload: Workload,
    plans: Vec<Plan>,
}

impl Crowd {
    fn generate(campaign: &Campaign, people: u32) -> Result<Crowd, LoadError> {
        let config = WorkloadConfig::booking_day(SEED, people, CLINICS, Arrival::Stampede);
        let mut workload = Workload::generate(&config, campaign)?;
        let plans = workload.choices.plans(workload.people.len());
        Ok(Crowd { workload, plans })
    }
}

/// Sets the server's clock just after the first booking day opens, and registers the crowd's
/// clinics and their doses.
async fn prepare(
    admin: &mut Connection,
    token: &str,
    campaign: &Campaign,
    workload: &Workload,
) -> Result<(), LoadError> {
    let opening = campaign.booking_days[0].window.opens_at_ms + CLOCK_AFTER_OPENING_MS;
    let now = chrono::DateTime::from_timestamp_millis(opening)
        .ok_or_else(|| LoadError::Protocol("the campaign's opening".into()))?
        .with_timezone(&campaign.utc_offset)
        .to_rfc3339();
    let clock = admin
        .call(
            "POST",
            "/admin/clock",
            Some(token),
            Some(&json!({ "now": now })),
        )
        .await?;
    expect("clock", clock, &[200])?;
    for clinic in &workload.clinics {
        for supply in &clinic.supply {
            let body = json!({
                "clinic_id": clinic.id.as_str(), "name": clinic.name, "region": clinic.region,
                "date": supply.date.to_string(), "doses": supply.doses,
            });
            let answer = admin
                .call("POST", "/admin/supply", Some(token), Some(&body))
                .await?;
            expect("supply", answer, &[201, 409])?;
        }
    }
    Ok(())
}

/// Phase 1: every person's flow, over `connections` connections; the requests' latencies and
/// how many people booked.
async fn flows(addr: &str, connections: u32, crowd: Arc<Crowd>) -> Result<(Tally, u32), LoadError> {
    let next = Arc::new(AtomicU32::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (addr, next, crowd) = (addr.to_owned(), next.clone(), crowd.clone());
        workers.spawn(async move {
            let mut c = Connection::open(&addr).await?;
            let mut tally = Tally::default();
            let mut booked = 0u32;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                let (Some(who), Some(plan)) = (crowd.workload.people.get(n), crowd.plans.get(n))
                else {
                    return Ok::<_, LoadError>((tally, booked));
                };
                if n % 1000 == 0 {
                    eprintln!("loadgen: person {n}");
                }
                let done = person(&mut c, who, plan, &crowd.workload, &mut tally).await?;
                booked += u32::from(done);
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
    Ok((flows, booked))
}

/// Phase 2: `read_s` seconds of the reads a waiting page makes.
async fn reads(addr: &str, connections: u32, read_s: u64) -> Result<Tally, LoadError> {
    let read_until = Instant::now() + Duration::from_secs(read_s);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..connections {
        let addr = addr.to_owned();
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
            Ok(tally)
        });
    }
    let mut reads = Tally::default();
    while let Some(done) = workers.join_next().await {
        let tally = done.map_err(|e| LoadError::Protocol(e.to_string()))??;
        reads.latencies_us.extend(tally.latencies_us);
    }
    Ok(reads)
}

pub async fn run(config: &LoadConfig) -> Result<String, LoadError> {
    let addr = config
        .url
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/').to_owned())
        .ok_or_else(|| LoadError::Url(config.url.clone()))?;
    let connections = config.connections.clamp(1, CONNECTIONS_MAX);
    let campaign = &config.campaign;
    let crowd = Arc::new(Crowd::generate(campaign, config.people)?);
    let mut admin = Connection::open(&addr).await?;
    prepare(&mut admin, &config.admin_token, campaign, &crowd.workload).await?;

    eprintln!(
        "loadgen: {} people over {connections} connections",
        config.people
    );
    let started = Instant::now();
    let (mut flows, booked) = flows(&addr, connections, crowd).await?;
    let flows_took = started.elapsed();

    eprintln!("loadgen: {} s of reads", config.read_s);
    let started = Instant::now();
    let mut reads = reads(&addr, connections, config.read_s).await?;
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
