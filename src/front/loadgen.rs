//! `yeyak loadgen`: a small, bounded load generator against a running `yeyak serve`.

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub url: String,
    pub admin_token: String,
    pub people: u32,
    pub connections: u32,
    pub read_s: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot reach {url}: {reason}")]
    Connect { url: String, reason: String },
}

pub async fn run(_config: &LoadConfig) -> Result<String, LoadError> {
    Ok(String::new())
}
