//! Where the file is and what it holds: a TOML table, kept out of `Debug` (it may hold secrets).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::ConfigError;

/// The environment variable naming the file when `--config` is not given.
pub const CONFIG_ENV: &str = "YEYAK_CONFIG";

/// The file's path: `--config PATH` or `--config=PATH` among the arguments (before a `--`),
/// else `YEYAK_CONFIG`. `args` are the process's arguments, the binary's name first.
pub fn locate(args: &[OsString]) -> Option<PathBuf> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return rest.next().map(PathBuf::from);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(CONFIG_ENV)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
}

/// A configuration file, parsed but not yet checked against the roles ([`crate::Plan`]).
pub struct ConfigFile {
    pub(crate) path: PathBuf,
    pub(crate) table: toml::Table,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        ConfigFile::parse(path, &text)
    }

    /// Parses `text` as the file at `path`. A syntax error gives its line and toml's message,
    /// never the line itself (it may hold a secret).
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        let table = text
            .parse::<toml::Table>()
            .map_err(|error| ConfigError::Syntax {
                path: path.to_owned(),
                line: error
                    .span()
                    .map_or(1, |span| text[..span.start].matches('\n').count() + 1),
                message: error.message().trim().to_owned(),
            })?;
        Ok(ConfigFile {
            path: path.to_owned(),
            table,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigFile")
            .field("path", &self.path)
            .field("sections", &self.table.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_flag_is_found_in_either_form_before_a_double_dash() {
        let found = locate(&args(&["yeyak", "serve", "--config", "a.toml"]));
        assert_eq!(found, Some(PathBuf::from("a.toml")));
        let found = locate(&args(&["yeyak", "--config=b.toml", "serve"]));
        assert_eq!(found, Some(PathBuf::from("b.toml")));
        let found = locate(&args(&["yeyak", "config", "--", "--config", "c.toml"]));
        assert_ne!(found, Some(PathBuf::from("c.toml")));
    }

    #[test]
    fn a_syntax_error_never_quotes_the_line() {
        let error = ConfigFile::parse(Path::new("y.toml"), "[keys]\ntoken_key = hunter2\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
