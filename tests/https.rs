//! `yeyak serve --tls-cert --tls-key` answers HTTPS itself: a client trusting the certificate's
//! CA gets the API over TLS, one trusting another CA is refused in the handshake, and plain
//! HTTP gets no answer from the API. Runs the real binary on the embedded log (no services);
//! the certificates are made here with OpenSSL.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslMethod};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509Name};

/// A certificate and its key.
struct Issued {
    cert: X509,
    key: PKey<Private>,
}

fn name(common_name: &str) -> X509Name {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)
        .unwrap();
    name.build()
}

/// A certificate for `subject`, signed by `issuer` (itself when `None`: a CA).
fn issue(subject: &str, issuer: Option<&Issued>) -> Issued {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand_serial())
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    builder.set_serial_number(&serial).unwrap();
    builder.set_subject_name(&name(subject)).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    match issuer {
        None => {
            builder.set_issuer_name(&name(subject)).unwrap();
            let ca = BasicConstraints::new().critical().ca().build().unwrap();
            builder.append_extension(ca).unwrap();
            let usage = KeyUsage::new().critical().key_cert_sign().build().unwrap();
            builder.append_extension(usage).unwrap();
            builder.sign(&key, MessageDigest::sha256()).unwrap();
        }
        Some(ca) => {
            builder.set_issuer_name(ca.cert.subject_name()).unwrap();
            let san = SubjectAlternativeName::new()
                .ip("127.0.0.1")
                .dns("localhost")
                .build(&builder.x509v3_context(Some(&ca.cert), None))
                .unwrap();
            builder.append_extension(san).unwrap();
            builder.sign(&ca.key, MessageDigest::sha256()).unwrap();
        }
    }
    Issued {
        cert: builder.build(),
        key,
    }
}

fn rand_serial() -> u32 {
    uuid::Uuid::now_v7().as_u128() as u32
}

/// `yeyak serve` over HTTPS on a free port of 127.0.0.1; killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(error) = self.child.kill() {
            eprintln!("cannot stop yeyak serve: {error}");
        }
        self.child.wait().ok();
    }
}

fn serve_https(dir: &Path, server: &Issued, ca: &Issued) -> Server {
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    let mut chain = server.cert.to_pem().unwrap();
    chain.extend(ca.cert.to_pem().unwrap());
    std::fs::write(&cert, chain).unwrap();
    std::fs::write(&key, server.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--clock",
            "2021-08-09T20:00:00+09:00",
        ])
        .arg("--data")
        .arg(dir.join("log"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        // The embedded log, whatever services the test run has.
        .env_remove("YEYAK_KAFKA")
        .env_remove("YEYAK_POSTGRES")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start yeyak serve");
    let mut stderr = common::lines::Lines::follow(child.stderr.take().unwrap());
    let listening = stderr
        .wait_for("listening on ", Duration::from_secs(60))
        .filter(|line| line.contains("listening on https://"));
    let mut server = Server {
        child,
        addr: String::new(),
    };
    let Some(line) = listening else {
        panic!("yeyak serve is not listening on https:\n{}", stderr.seen);
    };
    let rest = line.split("listening on https://").nth(1).unwrap();
    server.addr = rest.split_whitespace().next().unwrap().to_owned();
    server
}

/// `GET path` over TLS, trusting `ca` only; the whole response.
fn get_https(
    addr: &str,
    ca: &X509,
    path: &str,
) -> Result<String, openssl::ssl::HandshakeError<TcpStream>> {
    let mut connector = SslConnector::builder(SslMethod::tls()).unwrap();
    connector.cert_store_mut().add_cert(ca.clone()).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = connector.build().connect("127.0.0.1", tcp)?;
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).ok();
    Ok(response)
}

#[test]
fn serve_answers_https_to_a_client_trusting_its_ca_and_refuses_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = issue("yeyak test CA", None);
    let other_ca = issue("yeyak other CA", None);
    let server_cert = issue("localhost", Some(&ca));
    let server = serve_https(dir.path(), &server_cert, &ca);

    let response = get_https(&server.addr, &ca.cert, "/v1/congestion").expect("a TLS handshake");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("recommended"), "{response}");

    let refused = get_https(&server.addr, &other_ca.cert, "/v1/congestion");
    assert!(
        refused.is_err(),
        "a client trusting another CA completed the handshake"
    );

    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let mut plain = TcpStream::connect(&server.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        plain,
        "GET /v1/congestion HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    plain.read_to_end(&mut answer).ok();
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "plain HTTP was answered"
    );
}

/// The HTTPS server holds the plain server's bounds: a client that connects and never finishes
/// its TLS handshake is cut off within the head's read time, one over the connection bound is
/// closed at once, and a client that completes the handshake is answered.
#[test]
fn https_holds_the_same_bounds_as_http() {
    use yeyak_front::server::{HttpLimits, TlsFiles};
    let dir = tempfile::tempdir().unwrap();
    let ca = issue("yeyak test CA", None);
    let server_cert = issue("localhost", Some(&ca));
    let files = TlsFiles {
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
    };
    std::fs::write(&files.cert, server_cert.cert.to_pem().unwrap()).unwrap();
    std::fs::write(
        &files.key,
        server_cert.key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let backend = yeyak_front::backend::Backend::embedded_dir(
        &dir.path().join("log"),
        yeyak_domain::Campaign::default_2021(),
        yeyak_log::FsyncPolicy::Never,
    )
    .unwrap();
    let config = yeyak_front::FrontConfig {
        http: HttpLimits {
            header_read_timeout: Duration::from_secs(1),
            connections_max: 2,
            ..HttpLimits::default()
        },
        ..yeyak_front::FrontConfig::fast()
    };
    let front = yeyak_front::api::Front::new(
        config,
        backend,
        yeyak_front::tokens::TokenKey::new(vec![9; 32]),
        yeyak_identity::Pseudonymiser::new(
            yeyak_identity::SecretKey::new(b"yeyak https tests key, not secret".to_vec()).unwrap(),
        ),
    );
    let running = runtime
        .block_on(yeyak_front::server::start_https(
            front,
            "127.0.0.1:0".parse().unwrap(),
            &files,
        ))
        .expect("start the HTTPS server");
    let addr = running.addr.to_string();

    // Silent: connected, never a ClientHello. Cut off after about a second.
    let started = std::time::Instant::now();
    let mut silent = TcpStream::connect(&addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(6)))
        .unwrap();
    let mut nothing = Vec::new();
    let read = silent.read_to_end(&mut nothing);
    assert!(
        read.is_ok(),
        "the silent connection was not closed: {read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed only after {:?}",
        started.elapsed()
    );

    // Over the connection bound (two held open): closed at once, no handshake.
    let _held = [
        TcpStream::connect(&addr).unwrap(),
        TcpStream::connect(&addr).unwrap(),
    ];
    std::thread::sleep(Duration::from_millis(200));
    let refused = get_https(&addr, &ca.cert, "/v1/congestion");
    assert!(refused.is_err(), "a connection over the bound was served");
    drop(_held);
    std::thread::sleep(Duration::from_millis(200));
    let response = get_https(&addr, &ca.cert, "/v1/congestion").expect("a TLS handshake");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    runtime.block_on(running.stop());
}
