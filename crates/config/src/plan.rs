//! A checked file: each key's value(s) as the default of an argument of the roles that have it.

use std::any::TypeId;
use std::fmt;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use toml::Value;

use crate::keys::{self, KAFKA_PROPERTIES, NOT_KEYS};
use crate::{ConfigError, ConfigFile};

/// Where a role's value came from, in precedence order (a flag wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File,
    Default,
}

/// One key of the file, as the default of one argument of one role.
#[derive(Clone)]
struct Setting {
    role: String,
    id: String,
    values: Vec<String>,
}

/// The file checked against the roles: what to inject into each role's command, and the
/// librdkafka properties of `[kafka.properties]`. Its `Debug` shows no value.
#[derive(Default, Clone)]
pub struct Plan {
    path: Option<PathBuf>,
    settings: Vec<Setting>,
    kafka_properties: Vec<(String, String)>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set: Vec<String> = self
            .settings
            .iter()
            .map(|s| format!("{}.{}", s.role, s.id))
            .collect();
        let properties: Vec<&str> = self
            .kafka_properties
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        f.debug_struct("Plan")
            .field("path", &self.path)
            .field("settings", &set)
            .field("kafka_properties", &properties)
            .finish()
    }
}

/// The roles a binary has (section, command), and the sections of other binaries' roles.
struct Roles<'a> {
    own: &'a [(String, Command)],
    others: &'a [&'a str],
}

impl Plan {
    /// Checks every key of `file` against `own` roles (each section with its command): a key
    /// that maps to no argument, a value of the wrong type, or one the argument's value parser
    /// refuses is an error naming the key. A role section of another binary (`others`) is left
    /// alone; a shared key a role lacks is simply not used by that role.
    pub fn new(
        file: &ConfigFile,
        own: &[(String, Command)],
        others: &[&str],
    ) -> Result<Plan, ConfigError> {
        let roles = Roles { own, others };
        let mut plan = Plan {
            path: Some(file.path.clone()),
            ..Plan::default()
        };
        for (name, value) in &file.table {
            match value {
                Value::Table(table) if keys::is_shared_section(name) => {
                    plan.add_shared_section(file, name, table, &roles)?
                }
                Value::Table(table) => plan.add_role_section(file, name, table, &roles)?,
                _ => plan.add_shared(file, name, value, &roles)?,
            }
        }
        Ok(plan)
    }

    /// The file this plan was made from (none without a file).
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// `[kafka.properties]`, each value as text (secret or not: for the clients only).
    pub fn kafka_properties(&self) -> &[(String, String)] {
        &self.kafka_properties
    }

    fn add_shared_section(
        &mut self,
        file: &ConfigFile,
        section: &str,
        table: &toml::Table,
        roles: &Roles,
    ) -> Result<(), ConfigError> {
        for (name, value) in table {
            if section == "kafka" && name == KAFKA_PROPERTIES {
                self.add_properties(file, value)?;
            } else {
                self.add_shared(file, &format!("{section}.{name}"), value, roles)?;
            }
        }
        Ok(())
    }

    fn add_shared(
        &mut self,
        file: &ConfigFile,
        key: &str,
        value: &Value,
        roles: &Roles,
    ) -> Result<(), ConfigError> {
        if !keys::SHARED.iter().any(|(k, _)| *k == key) {
            return Err(unknown(file, key, ""));
        }
        for (role, command) in roles.own {
            let Some(arg) = keys::shared_id(role, key).and_then(|id| find_arg(command, id)) else {
                continue;
            };
            let values = check(file, key, arg, value)?;
            self.push(role, arg, values);
        }
        Ok(())
    }

    fn add_role_section(
        &mut self,
        file: &ConfigFile,
        role: &str,
        table: &toml::Table,
        roles: &Roles,
    ) -> Result<(), ConfigError> {
        let Some((_, command)) = roles.own.iter().find(|(r, _)| r == role) else {
            if roles.others.contains(&role) {
                return Ok(());
            }
            return Err(unknown(file, role, ""));
        };
        for (name, value) in table {
            let key = format!("{role}.{name}");
            if let Some(shared) = keys::shared_key(role, name) {
                return Err(unknown(file, &key, &format!(" (it is {shared})")));
            }
            let arg = find_arg(command, name).ok_or_else(|| unknown(file, &key, ""))?;
            let values = check(file, &key, arg, value)?;
            self.push(role, arg, values);
        }
        Ok(())
    }

    fn add_properties(&mut self, file: &ConfigFile, value: &Value) -> Result<(), ConfigError> {
        let key = format!("kafka.{KAFKA_PROPERTIES}");
        let Value::Table(table) = value else {
            return Err(wrong_type(file, &key, "a table", value));
        };
        for (name, value) in table {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Integer(_) | Value::Float(_) | Value::Boolean(_) => value.to_string(),
                other => {
                    let key = format!("{key}.{name}");
                    return Err(wrong_type(file, &key, "a string, number or boolean", other));
                }
            };
            self.kafka_properties.push((name.clone(), text));
        }
        Ok(())
    }

    fn push(&mut self, role: &str, arg: &Arg, values: Vec<String>) {
        self.settings.push(Setting {
            role: role.to_owned(),
            id: arg.get_id().to_string(),
            values,
        });
    }

    /// `command` (the command of `role`) with the file's values as its arguments' defaults.
    /// An argument the file sets is no longer required on the command line.
    pub fn inject(&self, role: &str, command: Command) -> Command {
        self.settings
            .iter()
            .filter(|s| s.role == role)
            .fold(command, |command, setting| {
                command.mut_arg(&setting.id, |arg| {
                    arg.default_values(setting.values.clone())
                        .required(false)
                        .required_unless_present(clap::builder::Resettable::Reset)
                })
            })
    }

    /// Whether the file sets argument `id` of `role`.
    pub fn sets(&self, role: &str, id: &str) -> bool {
        self.settings.iter().any(|s| s.role == role && s.id == id)
    }

    /// This plan without the file's values of `role` that an explicit argument (a flag or an
    /// environment variable) of `matches` conflicts with (`--data` given, `kafka.bootstrap` in
    /// the file): a value given for this run overrules the file's, as it overrules a default.
    /// `command` is the role's command as parsed.
    pub fn overruled(&self, role: &str, command: &Command, matches: &ArgMatches) -> Option<Plan> {
        let explicit = |id: &clap::Id| {
            matches!(
                matches.value_source(id.as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        // Either side may declare the conflict.
        let conflict = |a: &Arg, b: &Arg| {
            let declares = |x: &Arg, y: &Arg| {
                command
                    .get_arg_conflicts_with(x)
                    .iter()
                    .any(|other| other.get_id() == y.get_id())
            };
            declares(a, b) || declares(b, a)
        };
        let overruled = |setting: &Setting| {
            setting.role == role
                && matches.value_source(&setting.id) == Some(ValueSource::DefaultValue)
                && find_arg(command, &setting.id).is_some_and(|arg| {
                    command
                        .get_arguments()
                        .filter(|other| explicit(other.get_id()))
                        .any(|other| conflict(arg, other))
                })
        };
        if !self.settings.iter().any(&overruled) {
            return None;
        }
        let mut plan = self.clone();
        plan.settings.retain(|s| !overruled(s));
        Some(plan)
    }

    /// Parses `args` (the binary's name first) with the file's defaults on `role`'s command,
    /// made by `command`, dropping the file's values an explicit argument conflicts with
    /// ([`Plan::overruled`]). Returns the matches, the command as parsed and the plan they were
    /// parsed with. Exits on a command-line error, as `Parser::parse` does.
    pub fn parse_role(
        self,
        role: &str,
        command: impl Fn() -> Command,
        args: &[std::ffi::OsString],
    ) -> (ArgMatches, Command, Plan) {
        let mut plan = self;
        loop {
            let mut parsed = plan.inject(role, command());
            let matches = parsed
                .try_get_matches_from_mut(args)
                .unwrap_or_else(|error| error.exit());
            match plan.overruled(role, &parsed, &matches) {
                Some(narrower) => plan = narrower,
                None => return (matches, parsed, plan),
            }
        }
    }

    /// Where the value of argument `id` of `role` came from (`None`: it has none).
    pub fn source(&self, role: &str, id: &str, matches: &ArgMatches) -> Option<Source> {
        Some(match matches.value_source(id)? {
            ValueSource::CommandLine => Source::Flag,
            ValueSource::EnvVariable => Source::Env,
            ValueSource::DefaultValue if self.sets(role, id) => Source::File,
            _ => Source::Default,
        })
    }
}

pub(crate) fn find_arg<'a>(command: &'a Command, id: &str) -> Option<&'a Arg> {
    command
        .get_arguments()
        .find(|arg| arg.get_id() == id && !NOT_KEYS.contains(&id))
}

/// What an argument takes from the file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    Bool,
    Integer,
    Float,
    Text,
}

impl Scalar {
    pub(crate) fn of(arg: &Arg) -> Scalar {
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => return Scalar::Bool,
            ArgAction::Count => return Scalar::Integer,
            _ => {}
        }
        let parsed = arg.get_value_parser().type_id();
        let integers = [
            TypeId::of::<u8>(),
            TypeId::of::<u16>(),
            TypeId::of::<u32>(),
            TypeId::of::<u64>(),
            TypeId::of::<usize>(),
            TypeId::of::<i8>(),
            TypeId::of::<i16>(),
            TypeId::of::<i32>(),
            TypeId::of::<i64>(),
            TypeId::of::<isize>(),
        ];
        if integers.iter().any(|t| parsed == *t) {
            Scalar::Integer
        } else if parsed == TypeId::of::<f64>() || parsed == TypeId::of::<f32>() {
            Scalar::Float
        } else if parsed == TypeId::of::<bool>() {
            Scalar::Bool
        } else {
            Scalar::Text
        }
    }

    fn expected(self, multiple: bool) -> &'static str {
        match (self, multiple) {
            (_, true) => "an array",
            (Scalar::Bool, _) => "a boolean",
            (Scalar::Integer, _) => "an integer",
            (Scalar::Float, _) => "a number",
            (Scalar::Text, _) => "a string",
        }
    }

    /// The value as an argument's text, if it has this type.
    fn text(self, value: &Value) -> Option<String> {
        match (self, value) {
            (Scalar::Bool, Value::Boolean(b)) => Some(b.to_string()),
            (Scalar::Integer | Scalar::Float, Value::Integer(i)) => Some(i.to_string()),
            (Scalar::Float, Value::Float(f)) => Some(f.to_string()),
            (Scalar::Text, Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }
}

pub(crate) fn is_multiple(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// The value(s) of `key` for `arg`, checked: the TOML type, then the argument's value parser.
fn check(
    file: &ConfigFile,
    key: &str,
    arg: &Arg,
    value: &Value,
) -> Result<Vec<String>, ConfigError> {
    let scalar = Scalar::of(arg);
    let multiple = is_multiple(arg);
    let items: Vec<&Value> = match (multiple, value) {
        (true, Value::Array(items)) => items.iter().collect(),
        (false, Value::Array(_) | Value::Table(_)) | (true, _) => {
            return Err(wrong_type(file, key, scalar.expected(multiple), value));
        }
        (false, value) => vec![value],
    };
    items
        .into_iter()
        .map(|item| {
            let text = scalar
                .text(item)
                .ok_or_else(|| wrong_type(file, key, scalar.expected(false), item))?;
            probe(arg, &text).map_err(|reason| ConfigError::Refused {
                path: file.path.clone(),
                key: key.to_owned(),
                reason,
            })?;
            Ok(text)
        })
        .collect()
}

/// Runs `text` through the argument's own value parser (a lone copy of it: the real
/// argument's `requires` and conflicts would need the rest of its command).
fn probe(arg: &Arg, text: &str) -> Result<(), String> {
    let value = Arg::new("value")
        .long("value")
        .value_parser(arg.get_value_parser().clone())
        .allow_hyphen_values(true);
    Command::new("probe")
        .no_binary_name(true)
        .arg(value)
        .try_get_matches_from([format!("--value={text}")])
        .map(drop)
        .map_err(|error| reason(&error))
}

/// Why a value parser refused a value, without the value (it may be a secret).
fn reason(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    if let Some(ContextValue::Strings(valid)) = error.get(ContextKind::ValidValue) {
        return format!("expected one of {}", valid.join(", "));
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("invalid value ({cause})"),
        None => "invalid value".to_owned(),
    }
}

fn unknown(file: &ConfigFile, key: &str, hint: &str) -> ConfigError {
    ConfigError::UnknownKey {
        path: file.path.clone(),
        key: key.to_owned(),
        hint: hint.to_owned(),
    }
}

fn wrong_type(file: &ConfigFile, key: &str, expected: &'static str, found: &Value) -> ConfigError {
    ConfigError::WrongType {
        path: file.path.clone(),
        key: key.to_owned(),
        expected,
        found: found.type_str(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::Path;

    use clap::value_parser;

    use super::*;

    fn serve() -> Command {
        Command::new("serve")
            .arg(
                Arg::new("listen")
                    .long("listen")
                    .value_parser(value_parser!(SocketAddr))
                    .default_value("127.0.0.1:8080"),
            )
            .arg(Arg::new("kafka").long("kafka"))
            .arg(Arg::new("data").long("data").conflicts_with("kafka"))
            .arg(
                Arg::new("admit_per_s")
                    .long("admit-per-s")
                    .value_parser(value_parser!(f64))
                    .default_value("500"),
            )
            .arg(
                Arg::new("fifo_only")
                    .long("fifo-only")
                    .action(ArgAction::SetTrue),
            )
            .arg(Arg::new("roles").long("roles").action(ArgAction::Append))
            .arg(
                Arg::new("token_key")
                    .long("token-key")
                    .hide_env_values(true),
            )
    }

    fn process() -> Command {
        Command::new("process")
            .arg(Arg::new("kafka").long("kafka").required(true))
            .arg(Arg::new("instance").long("instance").default_value("0"))
    }

    fn plan(text: &str) -> Result<Plan, ConfigError> {
        let file = ConfigFile::parse(Path::new("yeyak.toml"), text).unwrap();
        let roles = [
            ("serve".to_owned(), serve()),
            ("process".to_owned(), process()),
        ];
        Plan::new(&file, &roles, &["bench"])
    }

    fn refusal(text: &str) -> String {
        plan(text).unwrap_err().to_string()
    }

    const FILE: &str = r#"
[kafka]
bootstrap = "file:9092"
[keys]
token_key = "hunter2"
[serve]
listen = "0.0.0.0:80"
fifo_only = true
roles = ["gateway", "processor"]
admit_per_s = 250
"#;

    #[test]
    fn the_file_gives_defaults_under_the_flags() {
        let plan = plan(FILE).unwrap();
        let serve = plan.inject("serve", serve());
        let m = serve
            .try_get_matches_from(["serve", "--listen", "10.0.0.1:8080"])
            .unwrap();
        assert_eq!(
            m.get_one::<SocketAddr>("listen").unwrap().to_string(),
            "10.0.0.1:8080"
        );
        assert_eq!(plan.source("serve", "listen", &m), Some(Source::Flag));
        assert_eq!(m.get_one::<String>("kafka").unwrap(), "file:9092");
        assert_eq!(plan.source("serve", "kafka", &m), Some(Source::File));
        assert_eq!(m.get_one::<f64>("admit_per_s"), Some(&250.0));
        assert!(m.get_flag("fifo_only"));
        let roles: Vec<&String> = m.get_many("roles").unwrap().collect();
        assert_eq!(roles, ["gateway", "processor"]);
        assert_eq!(plan.source("serve", "data", &m), None);
        // A required argument is satisfied by the file.
        let m = plan
            .inject("process", process())
            .try_get_matches_from(["process"])
            .unwrap();
        assert_eq!(m.get_one::<String>("kafka").unwrap(), "file:9092");
        assert_eq!(
            plan.source("process", "instance", &m),
            Some(Source::Default)
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let cases = [
            ("[serve]\nlisen = \"0.0.0.0:80\"", "unknown key serve.lisen"),
            (
                "[kafka]\nbootstrapp = \"x\"",
                "unknown key kafka.bootstrapp",
            ),
            ("[servee]\nlisten = \"0.0.0.0:80\"", "unknown key servee"),
            ("listen = \"0.0.0.0:80\"", "unknown key listen"),
            (
                "[serve]\nkafka = \"x\"",
                "unknown key serve.kafka (it is kafka.bootstrap)",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(refusal(text), format!("yeyak.toml: {expected}"), "{text}");
        }
        // Another binary's role, and a shared key no role here has, are no error.
        plan("[bench]\npeople = 5\n[keys]\nsubject_key = \"00\"").unwrap();
    }

    #[test]
    fn wrong_types_and_refused_values_are_named() {
        let cases = [
            (
                "[serve]\nadmit_per_s = \"fast\"",
                "serve.admit_per_s must be a number, not string",
            ),
            (
                "[serve]\nfifo_only = \"yes\"",
                "serve.fifo_only must be a boolean, not string",
            ),
            (
                "[serve]\nroles = \"gateway\"",
                "serve.roles must be an array, not string",
            ),
            (
                "[serve]\nlisten = 80",
                "serve.listen must be a string, not integer",
            ),
            (
                "[kafka]\nbootstrap = [\"a\"]",
                "kafka.bootstrap must be a string, not array",
            ),
            (
                "[kafka.properties]\n\"linger.ms\" = [5]",
                "kafka.properties.linger.ms must be a string, number or boolean, not array",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(refusal(text), format!("yeyak.toml: {expected}"), "{text}");
        }
        let refused = refusal("[serve]\nlisten = \"nowhere\"");
        assert!(
            refused.starts_with("yeyak.toml: serve.listen: invalid value"),
            "{refused}"
        );
        assert!(!refused.contains("nowhere"), "{refused}");
    }

    #[test]
    fn debug_shows_no_value() {
        let plan = plan(FILE).unwrap();
        let shown = format!("{plan:?}");
        assert!(shown.contains("serve.token_key"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn an_explicit_argument_overrules_a_file_value_it_conflicts_with() {
        let plan = plan(FILE).unwrap();
        let mut serve = plan.inject("serve", serve());
        let m = serve
            .try_get_matches_from_mut(["serve", "--data", "/tmp/x"])
            .unwrap();
        let narrower = plan.overruled("serve", &serve, &m).unwrap();
        assert!(!narrower.sets("serve", "kafka"));
        assert!(narrower.sets("serve", "listen"));
        let m = narrower
            .inject("serve", self::serve())
            .try_get_matches_from(["serve", "--data", "/tmp/x"])
            .unwrap();
        assert_eq!(m.get_one::<String>("kafka"), None);
    }
}
