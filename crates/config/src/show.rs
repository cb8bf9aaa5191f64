//! `yeyak config`: a role's effective configuration as TOML in the file's layout, each value
//! with its source, secrets masked (an argument whose environment value clap hides, and the
//! password of any URL).

use clap::{ArgMatches, Command};

use crate::keys::{self, NOT_KEYS};
use crate::plan::{Scalar, is_multiple};
use crate::{Plan, Source};

/// What replaces a secret wherever the configuration is shown.
pub const MASK: &str = "***";

/// One key of a role's effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The file's table (`kafka`, `serve`, `kafka.properties`); `None`: the top level.
    pub section: Option<String>,
    /// The key in that table (`bootstrap`, `listen`, `sasl.password`).
    pub name: String,
    /// The value as TOML, masked if secret; `None`: not set.
    pub value: Option<String>,
    pub source: Option<Source>,
}

/// Every key of `role` (its `command` as parsed into `matches`) with its value and source.
pub fn effective(plan: &Plan, role: &str, command: &Command, matches: &ArgMatches) -> Vec<Shown> {
    command
        .get_arguments()
        .filter(|arg| !NOT_KEYS.contains(&arg.get_id().as_str()))
        .map(|arg| {
            let id = arg.get_id().as_str();
            let values: Option<Vec<String>> = matches
                .get_raw(id)
                .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect());
            let secret = arg.is_hide_env_values_set();
            let scalar = Scalar::of(arg);
            let value = values.map(|values| {
                let items: Vec<String> =
                    values.iter().map(|v| as_toml(scalar, v, secret)).collect();
                if is_multiple(arg) {
                    format!("[{}]", items.join(", "))
                } else {
                    items.join(", ")
                }
            });
            let key = keys::key_of(role, id);
            let (section, name) = match key.split_once('.') {
                Some((section, name)) => (Some(section.to_owned()), name.to_owned()),
                None => (None, key),
            };
            Shown {
                section,
                name,
                value,
                source: plan.source(role, id, matches),
            }
        })
        .collect()
}

fn as_toml(scalar: Scalar, text: &str, secret: bool) -> String {
    let text = if secret {
        MASK.to_owned()
    } else {
        mask_password(text)
    };
    let bare = match scalar {
        Scalar::Bool => text.parse::<bool>().is_ok(),
        Scalar::Integer => text.parse::<i64>().is_ok(),
        Scalar::Float => text.parse::<f64>().is_ok_and(f64::is_finite),
        Scalar::Text => false,
    };
    if bare {
        text
    } else {
        toml::Value::String(text).to_string()
    }
}

/// `text` with the password of a URL (`scheme://user:password@host`) or of a libpq
/// `password=...` setting replaced by [`MASK`].
pub fn mask_password(text: &str) -> String {
    let masked = match text.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => match rest[..at].split_once(':') {
                    Some((user, _)) => format!("{scheme}://{user}:{MASK}{}", &rest[at..]),
                    None => text.to_owned(),
                },
                None => text.to_owned(),
            }
        }
        None => text.to_owned(),
    };
    masked
        .split(' ')
        .map(|word| match word.split_once('=') {
            Some(("password", _)) => format!("password={MASK}"),
            _ => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The name of a source in `yeyak config`'s comments.
pub fn source_name(source: Option<Source>) -> &'static str {
    match source {
        Some(Source::Flag) => "flag",
        Some(Source::Env) => "env",
        Some(Source::File) => "file",
        Some(Source::Default) | None => "default",
    }
}

/// The order of the file's tables: the shared ones, then the role's.
fn section_rank(section: &Option<String>) -> usize {
    const SHARED: [&str; 4] = ["kafka", "kafka.properties", "postgres", "keys"];
    match section {
        None => 0,
        Some(name) => SHARED
            .iter()
            .position(|s| s == name)
            .map_or(SHARED.len() + 1, |rank| rank + 1),
    }
}

/// The configuration as TOML, in the file's layout: top-level keys first, then the shared
/// tables, then the role's, each sorted by key; an unset key is a comment.
pub fn render(shown: &[Shown]) -> String {
    let mut shown: Vec<&Shown> = shown.iter().collect();
    shown.sort_by(|a, b| {
        (section_rank(&a.section), &a.section, &a.name).cmp(&(
            section_rank(&b.section),
            &b.section,
            &b.name,
        ))
    });
    let mut sections: Vec<(&String, Vec<&Shown>)> = Vec::new();
    let mut top = Vec::new();
    for item in shown {
        match &item.section {
            None => top.push(item),
            Some(section) => match sections.iter_mut().find(|(s, _)| *s == section) {
                Some((_, items)) => items.push(item),
                None => sections.push((section, vec![item])),
            },
        }
    }
    let mut out = String::new();
    lines(&mut out, &top);
    for (section, items) in sections {
        out.push_str(&format!("\n[{section}]\n"));
        lines(&mut out, &items);
    }
    out
}

fn lines(out: &mut String, items: &[&Shown]) {
    for item in items {
        let bare = !item.name.is_empty()
            && item
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let name = if bare {
            item.name.clone()
        } else {
            toml::Value::String(item.name.clone()).to_string()
        };
        match &item.value {
            Some(value) => out.push_str(&format!(
                "{name} = {value}  # {}\n",
                source_name(item.source)
            )),
            None => out.push_str(&format!("# {name}: not set\n")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(section: Option<&str>, name: &str, value: Option<&str>, source: Source) -> Shown {
        Shown {
            section: section.map(str::to_owned),
            name: name.to_owned(),
            value: value.map(str::to_owned),
            source: value.map(|_| source),
        }
    }

    #[test]
    fn the_configuration_renders_in_the_files_layout() {
        let shown = [
            item(Some("kafka"), "bootstrap", Some("\"k:9092\""), Source::Env),
            item(
                Some("serve"),
                "listen",
                Some("\"0.0.0.0:80\""),
                Source::File,
            ),
            item(None, "campaign", None, Source::Default),
            item(Some("kafka"), "replication", None, Source::Default),
            item(
                Some("kafka.properties"),
                "sasl.password",
                Some("\"***\""),
                Source::Flag,
            ),
        ];
        let text = render(&shown);
        let expected = "# campaign: not set\n\
            \n[kafka]\nbootstrap = \"k:9092\"  # env\n# replication: not set\n\
            \n[kafka.properties]\n\"sasl.password\" = \"***\"  # flag\n\
            \n[serve]\nlisten = \"0.0.0.0:80\"  # file\n";
        assert_eq!(text, expected);
        let parsed: toml::Table = text.parse().unwrap();
        assert_eq!(parsed["kafka"]["bootstrap"].as_str(), Some("k:9092"));
    }

    #[test]
    fn passwords_are_masked_in_urls_and_libpq_settings() {
        assert_eq!(
            mask_password("postgres://yeyak:hunter2@db:5432/yeyak?sslmode=verify-full"),
            "postgres://yeyak:***@db:5432/yeyak?sslmode=verify-full"
        );
        assert_eq!(
            mask_password("host=db user=yeyak password=hunter2"),
            "host=db user=yeyak password=***"
        );
        assert_eq!(mask_password("postgres://db/yeyak"), "postgres://db/yeyak");
        assert_eq!(mask_password("127.0.0.1:9092"), "127.0.0.1:9092");
    }
}
