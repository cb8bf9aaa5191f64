//! Connecting to PostgreSQL: the one way yeyak opens a connection, with TLS as the URL asks
//! for it through libpq's `sslmode` and `sslrootcert` parameters (the `postgres` crate knows
//! only `disable`, `prefer` and `require`, and no CA file). Not a pool, and no client
//! certificates.
//!
//! | `sslmode` | TLS | the server's certificate |
//! | --- | --- | --- |
//! | `disable` | never | - |
//! | `prefer` (the default, as in libpq) | when the server offers it | not checked |
//! | `require` | always | not checked; checked against `sslrootcert` when given (libpq's rule) |
//! | `verify-ca` | always | signed by the CA in `sslrootcert` |
//! | `verify-full` | always | signed by that CA, and issued for the host of the URL |

use std::path::PathBuf;

use openssl::error::ErrorStack;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres::{Client, NoTls};
use postgres_openssl::MakeTlsConnector;

/// libpq's `sslmode`, the values yeyak supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, PgConnectError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(PgConnectError::UnsupportedSslMode(other.to_owned())),
        })
    }

    /// What the `postgres` crate is told: it only negotiates, the connector verifies.
    fn negotiation(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PgConnectError {
    #[error("sslmode={0:?} is not supported (disable, prefer, require, verify-ca or verify-full)")]
    UnsupportedSslMode(String),
    #[error("sslmode={0} needs sslrootcert=FILE, the certificate authority to trust")]
    MissingRootCert(&'static str),
    #[error("cannot use the certificate authority in {}", path.display())]
    RootCert {
        path: PathBuf,
        #[source]
        cause: ErrorStack,
    },
    #[error("cannot set up TLS")]
    Tls(#[source] ErrorStack),
    #[error("cannot connect to PostgreSQL")]
    Connect(#[source] postgres::Error),
}

/// The TLS a connection string asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRequest {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
}

/// Connects to `url` (`postgres://...` or `key=value ...`) with the TLS it asks for.
pub fn connect(url: &str) -> Result<Client, PgConnectError> {
    let (url, tls) = split_tls(url)?;
    let client = match tls.mode {
        SslMode::Disable => Client::connect(&url, NoTls),
        _ => Client::connect(&url, connector(&tls)?),
    };
    client.map_err(PgConnectError::Connect)
}

/// The connection string the `postgres` crate accepts (`sslmode` one it knows, no
/// `sslrootcert`), and the TLS the original asks for.
pub fn split_tls(url: &str) -> Result<(String, TlsRequest), PgConnectError> {
    let mut tls = TlsRequest {
        mode: SslMode::Prefer,
        root_cert: None,
    };
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let (head, params, separator) = if is_url {
        match url.split_once('?') {
            Some((head, query)) => (head, query.split('&').collect::<Vec<_>>(), "&"),
            None => (url, Vec::new(), "&"),
        }
    } else {
        ("", url.split_whitespace().collect(), " ")
    };
    let mut kept = Vec::new();
    for param in params.into_iter().filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some(("sslmode", value)) => tls.mode = SslMode::parse(&percent_decode(value))?,
            Some(("sslrootcert", value)) => tls.root_cert = Some(percent_decode(value).into()),
            _ => kept.push(param.to_owned()),
        }
    }
    if matches!(tls.mode, SslMode::VerifyCa | SslMode::VerifyFull) && tls.root_cert.is_none() {
        let mode = if tls.mode == SslMode::VerifyCa {
            "verify-ca"
        } else {
            "verify-full"
        };
        return Err(PgConnectError::MissingRootCert(mode));
    }
    kept.push(format!("sslmode={}", tls.mode.negotiation()));
    let joined = kept.join(separator);
    let url = match (is_url, head) {
        (true, head) => format!("{head}?{joined}"),
        (false, _) => joined,
    };
    Ok((url, tls))
}

fn connector(tls: &TlsRequest) -> Result<MakeTlsConnector, PgConnectError> {
    let mut builder = SslConnector::builder(SslMethod::tls()).map_err(PgConnectError::Tls)?;
    match (tls.mode, &tls.root_cert) {
        // verify-ca and verify-full always have one (split_tls); require checks when given one.
        (SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull, Some(path)) => builder
            .set_ca_file(path)
            .map_err(|cause| PgConnectError::RootCert {
                path: path.clone(),
                cause,
            })?,
        _ => builder.set_verify(SslVerifyMode::NONE),
    }
    let mut connector = MakeTlsConnector::new(builder.build());
    let verify_hostname = tls.mode == SslMode::VerifyFull;
    connector.set_callback(move |config, _host| {
        config.set_verify_hostname(verify_hostname);
        Ok(())
    });
    Ok(connector)
}

/// `%XX` escapes of a URL parameter (a CA file's path may hold some).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| value.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A database URL as logs, errors and `Debug` may show it: the password of
/// `scheme://user:password@host` replaced by `***` (and of a libpq `password=...` setting).
pub fn shown_url(url: &str) -> String {
    let masked = url
        .split_once("://")
        .and_then(|(scheme, rest)| {
            let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
            let at = authority.rfind('@')?;
            let (user, _) = rest[..at].split_once(':')?;
            Some(format!("{scheme}://{user}:***{}", &rest[at..]))
        })
        .unwrap_or_else(|| url.to_owned());
    masked
        .split(' ')
        .map(|word| match word.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_url_has_no_password() {
        assert_eq!(
            shown_url("postgres://yeyak:hunter2@db:5432/yeyak?sslmode=verify-full"),
            "postgres://yeyak:***@db:5432/yeyak?sslmode=verify-full"
        );
        assert_eq!(
            shown_url("host=db password=hunter2"),
            "host=db password=***"
        );
        assert_eq!(shown_url("postgres://db/yeyak"), "postgres://db/yeyak");
    }

    #[test]
    fn verify_modes_become_require_and_lose_the_root_cert() {
        let (url, tls) = split_tls(
            "postgres://u:p@db:5432/y?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&options=-c%20x",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://u:p@db:5432/y?options=-c%20x&sslmode=require"
        );
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/etc/ca.pem")));

        let (url, tls) = split_tls("host=db user=u sslmode=verify-ca sslrootcert=/ca.pem").unwrap();
        assert_eq!(url, "host=db user=u sslmode=require");
        assert_eq!(tls.mode, SslMode::VerifyCa);
    }

    #[test]
    fn without_sslmode_tls_is_preferred_as_in_libpq() {
        let (url, tls) = split_tls("postgres://u:p@127.0.0.1:15432/y").unwrap();
        assert_eq!(url, "postgres://u:p@127.0.0.1:15432/y?sslmode=prefer");
        assert_eq!(tls.mode, SslMode::Prefer);
    }

    #[test]
    fn refusals_name_the_parameter() {
        let e = split_tls("postgres://db/y?sslmode=verify-full").unwrap_err();
        assert!(e.to_string().contains("sslrootcert"), "{e}");
        let e = split_tls("postgres://db/y?sslmode=allow").unwrap_err();
        assert!(e.to_string().contains("sslmode=\"allow\""), "{e}");
    }
}
