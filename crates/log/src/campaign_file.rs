//! The campaign file on disk: the one reader of `--campaign FILE` for every role and tool
//! (`serve`, `process`, `rebalance`, `replay`, `simulate`, `demo`, `loadgen`, `yeyak-bench`).
//! The domain parses and validates ([`Campaign::from_toml`]); this reads the file and names
//! it in the error. Here because this is the lowest crate with IO that all of them link.

use std::path::{Path, PathBuf};

use yeyak_domain::{Campaign, CampaignError};

#[derive(Debug, thiserror::Error)]
pub enum CampaignFileError {
    #[error("cannot read the campaign file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("the campaign file {} is invalid", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        cause: CampaignError,
    },
}

impl CampaignFileError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CampaignFileError::Read { .. } => "campaign_file_unreadable",
            CampaignFileError::Invalid { .. } => "campaign_file_invalid",
        }
    }
}

/// The campaign of `path`, or the built-in 2021 18-49 campaign when there is none.
pub fn load_campaign(path: Option<&Path>) -> Result<Campaign, CampaignFileError> {
    let Some(path) = path else {
        return Ok(Campaign::default_2021());
    };
    let text = std::fs::read_to_string(path).map_err(|cause| CampaignFileError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    Campaign::from_toml(&text).map_err(|cause| CampaignFileError::Invalid {
        path: path.to_path_buf(),
        cause,
    })
}
