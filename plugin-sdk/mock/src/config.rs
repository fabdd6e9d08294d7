//! The mock plugin's configuration: the option table it advertises (`--describe`, `initialize`)
//! and [`MockConfig`], the typed form the SDK's resolved [`Config`] is parsed into once at
//! `initialize`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use caa_plugin_proto::method::{
    CreateInstance, DeleteInstance, Initialize, ListInstances, Method, Teardown, VerifyConfig,
};
use caa_plugin_proto::{ConfigOption, ConfigSchema, ErrorCode, OptionKind, Problem, RpcError};
use caa_plugin_sdk::Config;
use caa_plugin_sdk::instance_type::{InstanceTypeSpec, InstanceTypes};
use serde_json::json;

use crate::faults::Faults;

/// Option names, as they appear in `initialize.config`.
pub mod name {
    /// Address returned for every instance.
    pub const IP: &str = "ip";
    /// Per-method delays.
    pub const LATENCY_MS: &str = "latencyMs";
    /// Fault tokens.
    pub const FAULTS: &str = "faults";
    /// Per-method injected errors.
    pub const ERRORS: &str = "errors";
    /// A fake credential.
    pub const API_KEY: &str = "apiKey";
    /// JSON file that keeps the instances across restarts.
    pub const STATE_FILE: &str = "stateFile";
    /// Instance quota.
    pub const MAX_INSTANCES: &str = "maxInstances";
    /// Instance-type catalogue.
    pub const INSTANCE_TYPES: &str = "instanceTypes";
}

/// The `apiKey` value that `verifyConfig` rejects as unauthorized.
pub const BAD_API_KEY: &str = "bad";

/// The methods `latencyMs`, `errors`, `hang:` and `panic:` may name.
pub const METHODS: &[&str] = &[
    Initialize::NAME,
    VerifyConfig::NAME,
    CreateInstance::NAME,
    DeleteInstance::NAME,
    ListInstances::NAME,
    Teardown::NAME,
];

fn option(
    name: &str,
    env: &str,
    kind: OptionKind,
    default: Option<serde_json::Value>,
    description: &str,
) -> ConfigOption {
    ConfigOption {
        default,
        description: description.to_owned(),
        ..ConfigOption::new(name, env, kind)
    }
}

/// The option table, in documentation order.
pub fn schema() -> ConfigSchema {
    let api_key = ConfigOption {
        secret: true,
        ..option(
            name::API_KEY,
            "MOCK_API_KEY",
            OptionKind::String,
            None,
            "fake credential; never logged; verifyConfig answers unauthorized when it is \"bad\"",
        )
    };
    ConfigSchema {
        options: vec![
            option(
                name::IP,
                "MOCK_IP",
                OptionKind::String,
                Some(json!("127.0.0.1")),
                "address returned for every instance",
            ),
            option(
                name::LATENCY_MS,
                "MOCK_LATENCY_MS",
                OptionKind::StringMap,
                Some(json!({})),
                "per-method delay in milliseconds, e.g. createInstance=200,deleteInstance=10",
            ),
            option(
                name::FAULTS,
                "MOCK_FAULTS",
                OptionKind::StringList,
                Some(json!([])),
                "faults: crashMidCreate, hang:<method>, garbage, answerTwice, panic:<method>, stderrFlood, \
                 stdoutPrint, noIp, slowTeardown",
            ),
            option(
                name::ERRORS,
                "MOCK_ERRORS",
                OptionKind::StringMap,
                Some(json!({})),
                "per-method injected error by name, e.g. createInstance=capacityUnavailable",
            ),
            api_key,
            option(
                name::STATE_FILE,
                "MOCK_STATE_FILE",
                OptionKind::String,
                Some(json!("")),
                "JSON file that keeps the instances across restarts; empty keeps them in memory only",
            ),
            option(
                name::MAX_INSTANCES,
                "MOCK_MAX_INSTANCES",
                OptionKind::Integer,
                Some(json!(0)),
                "instances beyond this get quotaExceeded; 0 means unlimited",
            ),
            option(
                name::INSTANCE_TYPES,
                "MOCK_INSTANCE_TYPES",
                OptionKind::StringList,
                Some(json!([])),
                "instance types as name:vcpus:memoryMiB[:gpus]; the first is the default",
            ),
        ],
    }
}

/// The mock's configuration after parsing. `Debug` redacts the API key.
#[derive(Clone)]
pub struct MockConfig {
    /// Address reported for every instance.
    pub ip: String,
    /// Delay per method name.
    pub latency: BTreeMap<String, Duration>,
    /// Scripted faults.
    pub faults: Faults,
    /// Error injected per method name.
    pub errors: BTreeMap<String, ErrorCode>,
    /// The fake credential (secret).
    pub api_key: Option<String>,
    /// Where instances are persisted, if anywhere.
    pub state_file: Option<PathBuf>,
    /// Instance quota (`None`: unlimited).
    pub max_instances: Option<usize>,
    /// Instance-type catalogue (`None`: no types configured).
    pub instance_types: Option<InstanceTypes>,
}

impl fmt::Debug for MockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockConfig")
            .field("ip", &self.ip)
            .field("latency", &self.latency)
            .field("faults", &self.faults)
            .field("errors", &self.errors)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("state_file", &self.state_file)
            .field("max_instances", &self.max_instances)
            .field("instance_types", &self.instance_types)
            .finish()
    }
}

impl MockConfig {
    /// Parses the resolved option values; every bad value becomes one `invalidConfig` problem.
    pub fn from_config(config: &Config) -> Result<MockConfig, RpcError> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: String| {
            problems.push(Problem { field: field.to_owned(), message });
        };

        let latency = config
            .map(name::LATENCY_MS)
            .into_iter()
            .filter_map(|(method, ms)| match (check_method(&method), parse_ms(&ms)) {
                (Ok(()), Ok(d)) => Some((method, d)),
                (Err(e), _) | (_, Err(e)) => {
                    problem(name::LATENCY_MS, e);
                    None
                }
            })
            .collect();
        let faults = Faults::parse(&config.list(name::FAULTS)).unwrap_or_else(|e| {
            problem(name::FAULTS, e);
            Faults::default()
        });
        for method in faults.hang.iter().chain(&faults.panic) {
            if let Err(e) = check_method(method) {
                problem(name::FAULTS, e);
            }
        }
        let errors = config
            .map(name::ERRORS)
            .into_iter()
            .filter_map(|(method, code)| match (check_method(&method), parse_error_name(&code)) {
                (Ok(()), Ok(code)) => Some((method, code)),
                (Err(e), _) | (_, Err(e)) => {
                    problem(name::ERRORS, e);
                    None
                }
            })
            .collect();
        let max_instances = match config.i64(name::MAX_INSTANCES).unwrap_or(0) {
            0 => None,
            n => usize::try_from(n).map(Some).unwrap_or_else(|_| {
                problem(name::MAX_INSTANCES, format!("must be 0 or positive, got {n}"));
                None
            }),
        };
        let instance_types = parse_instance_types(&config.list(name::INSTANCE_TYPES))
            .unwrap_or_else(|e| {
                problem(name::INSTANCE_TYPES, e);
                None
            });

        let parsed = MockConfig {
            ip: config.str(name::IP).unwrap_or("127.0.0.1").to_owned(),
            latency,
            faults,
            errors,
            api_key: config.str(name::API_KEY).filter(|k| !k.is_empty()).map(str::to_owned),
            state_file: config.str(name::STATE_FILE).filter(|p| !p.is_empty()).map(PathBuf::from),
            max_instances,
            instance_types,
        };
        if problems.is_empty() {
            Ok(parsed)
        } else {
            let summary =
                problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>();
            Err(RpcError::new(
                ErrorCode::InvalidConfig,
                format!("invalid mock configuration: {}", summary.join("; ")),
            )
            .with_problems(problems))
        }
    }

    /// The delay configured for `method` (zero when none).
    pub fn latency(&self, method: &str) -> Duration {
        self.latency.get(method).copied().unwrap_or_default()
    }

    /// The error injected for `method`, if any.
    pub fn injected_error(&self, method: &str) -> Option<RpcError> {
        let code = *self.errors.get(method)?;
        Some(RpcError::new(code, format!("mock: injected {} error for {method}", code.name())))
    }
}

fn check_method(method: &str) -> Result<(), String> {
    if METHODS.contains(&method) { Ok(()) } else { Err(format!("unknown method {method:?}")) }
}

fn parse_ms(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{text:?} is not a number of milliseconds"))
}

fn parse_error_name(name: &str) -> Result<ErrorCode, String> {
    ErrorCode::from_name(name.trim()).ok_or_else(|| format!("unknown error name {name:?}"))
}

/// Parses `name:vcpus:memoryMiB[:gpus]` entries; the first entry is the default type. An empty
/// list means no catalogue.
pub fn parse_instance_types<S: AsRef<str>>(entries: &[S]) -> Result<Option<InstanceTypes>, String> {
    let specs = entries
        .iter()
        .map(|e| e.as_ref().trim())
        .filter(|e| !e.is_empty())
        .map(parse_instance_type)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(specs.first().map(|first| InstanceTypes::new(first.name.clone(), specs.clone())))
}

fn parse_instance_type(entry: &str) -> Result<InstanceTypeSpec, String> {
    let bad = || format!("{entry:?} is not name:vcpus:memoryMiB[:gpus]");
    let parts: Vec<&str> = entry.split(':').collect();
    let (name, vcpus, memory, gpus) = match parts[..] {
        [name, vcpus, memory] => (name, vcpus, memory, "0"),
        [name, vcpus, memory, gpus] => (name, vcpus, memory, gpus),
        _ => return Err(bad()),
    };
    if name.is_empty() {
        return Err(bad());
    }
    let vcpus = vcpus.parse().map_err(|_| bad())?;
    let memory = memory.parse().map_err(|_| bad())?;
    let gpus = gpus.parse().map_err(|_| bad())?;
    Ok(InstanceTypeSpec::new(name, vcpus, memory).with_gpus(gpus))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_type_entries() {
        let types =
            parse_instance_types(&["m.small:2:4096", "m.gpu:8:32768:1", ""]).unwrap().unwrap();
        assert_eq!(types.default_type(), "m.small");
        assert_eq!(types.specs()[1], InstanceTypeSpec::new("m.gpu", 8, 32768).with_gpus(1));
        assert_eq!(parse_instance_types::<&str>(&[]).unwrap(), None);
        for bad in ["x", "x:1", ":1:2", "x:1:2:3:4", "x:a:2", "x:1:-2"] {
            assert!(parse_instance_types(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn value_parsers() {
        assert_eq!(parse_ms(" 200"), Ok(Duration::from_millis(200)));
        assert!(parse_ms("soon").is_err());
        assert_eq!(parse_error_name("capacityUnavailable"), Ok(ErrorCode::CapacityUnavailable));
        assert!(parse_error_name("oops").is_err());
        assert!(check_method("createInstance").is_ok());
        assert!(check_method("initialize").is_ok());
        assert!(check_method("$/ping").is_err());
    }

    #[test]
    fn schema_marks_only_the_api_key_secret() {
        let schema = schema();
        assert!(schema.is_secret("apiKey") && schema.is_secret("MOCK_API_KEY"));
        assert_eq!(schema.options.iter().filter(|o| o.secret).count(), 1);
        assert_eq!(schema.env_names().count(), schema.options.len());
    }
}
