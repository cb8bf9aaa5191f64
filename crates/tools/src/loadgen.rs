//! `yeyak loadgen`: a small, bounded load generator against a running `yeyak serve` on
//! loopback. Phase 1 runs whole citizen flows (verify -> queue -> poll until admitted -> book)
//! over `connections` keep-alive connections; phase 2 is `read_s` seconds of the reads a
//! waiting page makes (the light, its ticket). It reports requests per second and latency
//! percentiles per phase, and one JSON line last.
//!
//! Workload: the shared generator's crowd of the first booking day ([`crate::workload`]): made-up
//! resident numbers of eligible people born on a day ending in its digit, their devices, each
//! person's verification method and choice of clinic and date, and clinics with doses for all of
//! them (or for `doses_percent` of them: then popular shares sell out). The server's clock is set just after that day opens; people come as fast as the
//! connections allow (a stampede), or at a pace (`rate`: person `n` starts `n / rate` seconds
//! in). Each person verifies once (no second device). A `503` (the ledger did not answer in
//! time, or is unavailable) is asked again after a second, as the page does, for at most
//! [`RETRY_WINDOW`]; the verification and the booking carry an `Idempotency-Key`, so a retry
//! whose first try was decided is answered with that decision; an answer lost anyway is
//! counted, never taken for a refusal.
//!
//! Every `201` booking's reservation id can be written to a file (`answered`): the chaos suite
//! checks that each one is a reservation in PostgreSQL. Progress goes to stderr once a second,
//! with the wall clock (`unix_ms`), so a fault's effect can be timed from outside.
//!
//! Measure the API, not the simulated providers: start the server with `--instant-providers`
//! and an outflow rate above the load (`--admit-per-s 100000`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use yeyak_domain::Campaign;

use crate::workload::{Arrival, Person, Plan, Supply, Workload, WorkloadConfig, WorkloadError};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The gateways' base URLs (`http://host:port`): worker `w` starts on target `w % n` and
    /// moves to the next when its connection fails.
    pub targets: Vec<String>,
    /// The campaign the server runs: the crowd is that of its first booking day.
    pub campaign: Campaign,
    pub admin_token: String,
    pub people: u32,
    pub connections: u32,
    pub read_s: u64,
    /// People started per second (`None`: as fast as the connections allow).
    pub rate: Option<f64>,
    /// Where to write the reservation id of every booking answered `201`, one per line.
    pub answered: Option<PathBuf>,
    /// Doses for this percentage of the crowd (`None`: for everyone, nobody meets a sold-out
    /// share).
    pub doses_percent: Option<u32>,
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
/// How long a request answered `503` is asked again (once a second) before the run fails.
pub const RETRY_WINDOW: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("a target must look like http://127.0.0.1:8080, got {0}")]
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
    #[error("an HTTP connection failed (and every target tried after it)")]
    Http(#[source] hyper::Error),
    #[error("the workload cannot be generated")]
    Workload(#[from] WorkloadError),
    #[error("cannot write the answered reservations to {path}")]
    Answered {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One keep-alive HTTP/1.1 connection (hyper's client) to one of the targets. When the
/// connection fails (refused, reset, closed mid-answer), the request is sent again on a new
/// connection to the next target: a gateway killed under load moves its workers to the others.
struct Connection {
    targets: Arc<[String]>,
    /// Index in `targets` of the gateway this connection talks to.
    at: usize,
    sender: SendRequest<Full<Bytes>>,
    /// Requests sent again on the next target after a connection failed.
    failovers: u64,
    /// The last request was sent more than once (after a failed connection or a `503`): the
    /// first may have been decided, its answer lost.
    last_was_repeated: bool,
    /// Requests asked again after a `503`.
    retries: u64,
}

/// Opens an HTTP/1.1 connection to `addr`; hyper drives it on a task of its own.
async fn handshake(addr: &str) -> Result<SendRequest<Full<Bytes>>, LoadError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(LoadError::Http)?;
    let addr = addr.to_owned();
    tokio::spawn(async move {
        // The sender sees the same failure on its next request, and fails over then.
        if let Err(error) = connection.await {
            tracing::debug!(%addr, %error, "a load generator connection ended");
        }
    });
    Ok(sender)
}

impl Connection {
    /// A connection to the first target that accepts one, from `targets[first]` on.
    async fn open(targets: Arc<[String]>, first: usize) -> Result<Connection, LoadError> {
        let mut last = None;
        for k in 0..targets.len() {
            let at = (first + k) % targets.len();
            match handshake(&targets[at]).await {
                Ok(sender) => {
                    return Ok(Connection {
                        targets,
                        at,
                        sender,
                        failovers: 0,
                        last_was_repeated: false,
                        retries: 0,
                    });
                }
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| LoadError::Url("no target".into())))
    }

    /// Moves to the next target that accepts a connection.
    async fn fail_over(&mut self) -> Result<(), LoadError> {
        let next = Connection::open(self.targets.clone(), self.at + 1).await?;
        self.at = next.at;
        self.sender = next.sender;
        self.failovers += 1;
        Ok(())
    }

    /// One request, sent again on the next target when the connection fails, and again after
    /// a second when answered `503` (within [`RETRY_WINDOW`]).
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), LoadError> {
        self.call_keyed(method, path, token, body, None).await
    }

    /// [`Connection::call`] with an `Idempotency-Key`, the same on every retry: the gateway
    /// answers a retry whose first try was decided with that decision.
    async fn call_keyed(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<(u16, Value), LoadError> {
        self.last_was_repeated = false;
        let until = Instant::now() + RETRY_WINDOW;
        let mut failed = 0;
        loop {
            match self.send(method, path, token, body, key).await {
                Ok((503, _)) if Instant::now() < until => {
                    self.retries += 1;
                    self.last_was_repeated = true;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Ok(answer) => return Ok(answer),
                Err(LoadError::Http(_)) if failed < self.targets.len() => {
                    failed += 1;
                    self.last_was_repeated = true;
                    self.fail_over().await?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One request on this connection; a failed connection is `LoadError::Http`.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<(u16, Value), LoadError> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.targets[self.at].as_str())
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| LoadError::Protocol(e.to_string()))?;
        self.sender.ready().await.map_err(LoadError::Http)?;
        let answer = self
            .sender
            .send_request(request)
            .await
            .map_err(LoadError::Http)?;
        let status = answer.status().as_u16();
        let bytes = answer
            .into_body()
            .collect()
            .await
            .map_err(LoadError::Http)?
            .to_bytes();
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
    /// Requests sent again on another target after a connection failed.
    failovers: u64,
    /// Requests asked again after a `503`.
    retries: u64,
    /// People whose verification was answered by a gateway that failed (or did not answer in
    /// time) before its answer arrived: the next answer refuses them for 10 minutes.
    lost: u64,
    /// Bookings sent again after a lost answer and then refused as already reserved: the
    /// first one booked, its `201` lost.
    booked_unanswered: u64,
    /// The reservation id of every booking answered `201`.
    reservations: Vec<String>,
    /// Bookings refused because the share chosen was sold out.
    sold_out: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.failovers += other.failovers;
        self.retries += other.retries;
        self.lost += other.lost;
        self.booked_unanswered += other.booked_unanswered;
        self.reservations.extend(other.reservations);
        self.sold_out += other.sold_out;
    }
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

/// One person's whole flow; every request is timed. The verification and the booking carry
/// an `Idempotency-Key` of this run (`run`) and the person's device, so that a retry after a
/// lost answer is answered with the first decision.
async fn person(
    c: &mut Connection,
    who: &Person,
    plan: &Plan,
    workload: &Workload,
    tally: &mut Tally,
    run: &str,
) -> Result<bool, LoadError> {
    let t = Instant::now();
    let verify = json!({
        "method": plan.visit.method.as_str(), "resident_id": who.resident_number,
        "name": "load", "device_id": who.device.as_str(),
    });
    let key = format!("{run}.{}.verify", who.device.as_str());
    let answer = c
        .call_keyed("POST", "/v1/verify", None, Some(&verify), Some(&key))
        .await?;
    tally.add(t);
    if answer.0 == 429 && c.last_was_repeated {
        // Verified by the gateway whose connection failed, its answer lost: the next one
        // applies the 10-minute rule. This person is lost to the failover.
        tally.lost += 1;
        return Ok(false);
    }
    let session = expect("verify", answer, &[200])?;
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
    let key = format!("{run}.{}.book", who.device.as_str());
    let (status, body) = c
        .call_keyed(
            "POST",
            "/v1/reservations",
            Some(&admission),
            Some(&book),
            Some(&key),
        )
        .await?;
    tally.add(t);
    let body = expect("book", (status, body), &[201, 409])?;
    if status == 409 && body["error"] == "sold_out" {
        tally.sold_out += 1;
    }
    // Asked again and refused as already reserved: the first one booked, its 201 lost.
    if status == 409 && body["error"] == "already_reserved" && c.last_was_repeated {
        tally.booked_unanswered += 1;
    }
    if status == 201 {
        let id = body["reservation_id"].as_str().unwrap_or_default();
        tally.reservations.push(id.to_owned());
    }
    Ok(status == 201)
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
    fn generate(
        campaign: &Campaign,
        people: u32,
        doses_percent: Option<u32>,
    ) -> Result<Crowd, LoadError> {
        let mut config = WorkloadConfig::booking_day(SEED, people, CLINICS, Arrival::Stampede);
        if let Some(percent) = doses_percent {
            config.supply = Supply::CrowdPercent(percent);
        }
        let mut workload = Workload::generate(&config, campaign)?;
        let plans = workload.choices.plans(workload.people.len());
        Ok(Crowd { workload, plans })
    }
}

/// Sets the clock of every target that answers just after the first booking day opens, and
/// registers the crowd's clinics and their doses (once: the gateways share the ledger).
async fn prepare(
    targets: &Arc<[String]>,
    token: &str,
    campaign: &Campaign,
    workload: &Workload,
) -> Result<(), LoadError> {
    let opening = campaign.booking_days[0].window.opens_at_ms + CLOCK_AFTER_OPENING_MS;
    let now = chrono::DateTime::from_timestamp_millis(opening)
        .ok_or_else(|| LoadError::Protocol("the campaign's opening".into()))?
        .with_timezone(&campaign.utc_offset)
        .to_rfc3339();
    for (n, target) in targets.iter().enumerate() {
        let Ok(mut gateway) = Connection::open(targets.clone(), n).await else {
            eprintln!("loadgen: {target} does not answer; its clock is not set");
            continue;
        };
        if gateway.at != n {
            eprintln!("loadgen: {target} does not answer; its clock is not set");
            continue;
        }
        let now = json!({ "now": now });
        let clock = gateway
            .call("POST", "/admin/clock", Some(token), Some(&now))
            .await?;
        expect("clock", clock, &[200])?;
    }
    let mut admin = Connection::open(targets.clone(), 0).await?;
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

/// How far the flows are, shared by the workers and the progress line.
#[derive(Default)]
struct Progress {
    started: AtomicU32,
    booked: AtomicU32,
}

/// Prints the flows' progress once a second, with the wall clock, until aborted.
async fn report_progress(progress: Arc<Progress>, people: usize, t0: tokio::time::Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        eprintln!(
            "loadgen: {:>6.1} s: {} booked, {} of {people} started (unix_ms {unix_ms})",
            t0.elapsed().as_secs_f64(),
            progress.booked.load(Ordering::Relaxed),
            progress.started.load(Ordering::Relaxed),
        );
    }
}

/// Phase 1: every person's flow, over `connections` connections, person `n` starting
/// `n / rate` seconds in when paced; the requests' latencies and how many people booked.
async fn flows(
    targets: &Arc<[String]>,
    connections: u32,
    crowd: Arc<Crowd>,
    rate: Option<f64>,
) -> Result<(Tally, u32), LoadError> {
    let next = Arc::new(AtomicU32::new(0));
    let progress = Arc::new(Progress::default());
    let t0 = tokio::time::Instant::now();
    let reporter = tokio::spawn(report_progress(
        progress.clone(),
        crowd.workload.people.len(),
        t0,
    ));
    let mut workers = tokio::task::JoinSet::new();
    // This run's part of every Idempotency-Key: another run's people are other requests.
    let run: Arc<str> = uuid::Uuid::now_v7().simple().to_string()[20..].into();
    for w in 0..connections {
        let (targets, next, crowd) = (targets.clone(), next.clone(), crowd.clone());
        let run = run.clone();
        let progress = progress.clone();
        workers.spawn(async move {
            let mut c = Connection::open(targets, w as usize).await?;
            let mut tally = Tally::default();
            let mut booked = 0u32;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                let (Some(who), Some(plan)) = (crowd.workload.people.get(n), crowd.plans.get(n))
                else {
                    tally.failovers = c.failovers;
                    tally.retries = c.retries;
                    return Ok::<_, LoadError>((tally, booked));
                };
                if let Some(rate) = rate {
                    tokio::time::sleep_until(t0 + Duration::from_secs_f64(n as f64 / rate)).await;
                }
                progress.started.fetch_add(1, Ordering::Relaxed);
                let done = person(&mut c, who, plan, &crowd.workload, &mut tally, &run).await?;
                booked += u32::from(done);
                progress
                    .booked
                    .fetch_add(u32::from(done), Ordering::Relaxed);
            }
        });
    }
    let joined = join_flows(workers).await;
    reporter.abort();
    joined
}

/// The workers' tallies merged; the first failure ends the others (the set is dropped).
async fn join_flows(
    mut workers: tokio::task::JoinSet<Result<(Tally, u32), LoadError>>,
) -> Result<(Tally, u32), LoadError> {
    let mut flows = Tally::default();
    let mut booked = 0;
    while let Some(done) = workers.join_next().await {
        let (tally, b) = done.map_err(|e| LoadError::Protocol(e.to_string()))??;
        flows.merge(tally);
        booked += b;
    }
    Ok((flows, booked))
}

/// Phase 2: `read_s` seconds of the reads a waiting page makes.
async fn reads(targets: &Arc<[String]>, connections: u32, read_s: u64) -> Result<Tally, LoadError> {
    let read_until = Instant::now() + Duration::from_secs(read_s);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..connections {
        let targets = targets.clone();
        workers.spawn(async move {
            let mut c = Connection::open(targets, w as usize).await?;
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
            tally.failovers = c.failovers;
            tally.retries = c.retries;
            Ok(tally)
        });
    }
    let mut reads = Tally::default();
    while let Some(done) = workers.join_next().await {
        let tally = done.map_err(|e| LoadError::Protocol(e.to_string()))??;
        reads.merge(tally);
    }
    Ok(reads)
}

/// `host:port` of `http://host:port`.
fn address(url: &str) -> Result<String, LoadError> {
    url.strip_prefix("http://")
        .map(|a| a.trim_end_matches('/').to_owned())
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| LoadError::Url(url.to_owned()))
}

pub async fn run(config: &LoadConfig) -> Result<String, LoadError> {
    if config.targets.is_empty() {
        return Err(LoadError::Url("no target".into()));
    }
    let targets: Vec<String> = config
        .targets
        .iter()
        .map(|url| address(url))
        .collect::<Result<_, _>>()?;
    let targets: Arc<[String]> = targets.into();
    let connections = config.connections.clamp(1, CONNECTIONS_MAX);
    let campaign = &config.campaign;
    let crowd = Arc::new(Crowd::generate(
        campaign,
        config.people,
        config.doses_percent,
    )?);
    prepare(&targets, &config.admin_token, campaign, &crowd.workload).await?;

    match config.rate {
        Some(rate) => eprintln!(
            "loadgen: {} people over {connections} connections, {rate} per second",
            config.people
        ),
        None => eprintln!(
            "loadgen: {} people over {connections} connections",
            config.people
        ),
    }
    let started = Instant::now();
    let (mut flows, booked) = flows(&targets, connections, crowd, config.rate).await?;
    let flows_took = started.elapsed();
    if let Some(path) = &config.answered {
        write_answered(path, &flows.reservations)?;
    }

    eprintln!("loadgen: {} s of reads", config.read_s);
    let started = Instant::now();
    let mut reads = reads(&targets, connections, config.read_s).await?;
    let reads_took = started.elapsed();

    let (flow_line, flow_rps, flow_p50, flow_p99) = phase_line("flows", &mut flows, flows_took);
    let (read_line, read_rps, read_p50, read_p99) = phase_line("reads", &mut reads, reads_took);
    let reservations_per_s = f64::from(booked) / flows_took.as_secs_f64().max(1e-9);
    let machine = json!({
        "people": config.people, "connections": connections, "booked": booked,
        "requests": flows.latencies_us.len() + reads.latencies_us.len(),
        "flow_requests_per_s": flow_rps.round(), "flow_p50_ms": flow_p50, "flow_p99_ms": flow_p99,
        "reservations_per_s": reservations_per_s.round(),
        "read_requests_per_s": read_rps.round(), "read_p50_ms": read_p50, "read_p99_ms": read_p99,
        "targets": targets.len(), "failovers": flows.failovers + reads.failovers,
        "retries": flows.retries + reads.retries,
        "lost_to_failover": flows.lost, "booked_unanswered": flows.booked_unanswered,
        "sold_out": flows.sold_out,
    });
    let failovers = flows.failovers + reads.failovers;
    let retries = flows.retries + reads.retries;
    Ok(format!(
        "{flow_line}\n{read_line}\nbooked   {booked} reservations, {reservations_per_s:.0} per second (verify, queue, polls, book each); {} refused as sold out\nfailover {failovers} requests sent again on another target, {retries} asked again after a 503; {} people lost to it, {} bookings whose 201 was lost\n{machine}",
        flows.sold_out, flows.lost, flows.booked_unanswered
    ))
}

/// One reservation id per line.
fn write_answered(path: &std::path::Path, reservations: &[String]) -> Result<(), LoadError> {
    let mut text = reservations.join("\n");
    text.push('\n');
    std::fs::write(path, text).map_err(|source| LoadError::Answered {
        path: path.to_owned(),
        source,
    })
}
