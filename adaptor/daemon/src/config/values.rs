//! Parsers for option values. Each returns the reason a value is wrong instead of falling back
//! to a default the way upstream's env parsing does (caa-facts §1.2, §11 item 40).
//!
//! Compatibility notes: durations use Go's syntax (`90s`, `1h30m`, `1.5m`), so every value
//! upstream accepted still works; booleans accept Go's `strconv.ParseBool` set (`1`, `t`, `true`,
//! `0`, `f`, `false`, any case), where upstream's env reader quietly treated anything else as false.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::Cidr;

/// Longest unix socket path (`sun_path` is 108 bytes with the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// A boolean in Go's `strconv.ParseBool` spellings.
pub fn boolean(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err("expected true or false (also 1/0, t/f)".to_owned()),
    }
}

/// A TCP/UDP port, 1–65535 (0 too when `allow_zero`, meaning "any free port").
pub fn port(s: &str, allow_zero: bool) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(0) if !allow_zero => Err("expected a port number from 1 to 65535".to_owned()),
        Ok(p) => Ok(p),
        Err(_) if allow_zero => Err("expected a port number from 0 to 65535".to_owned()),
        Err(_) => Err("expected a port number from 1 to 65535".to_owned()),
    }
}

/// A decimal integer.
pub fn integer(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|_| "expected a decimal integer".to_owned())
}

/// A positive Go duration (`300ms`, `90s`, `5m`, `1h30m`, `1.5h`). A bare number has no unit
/// and is refused (upstream silently ignored e.g. `PROXY_TIMEOUT=5`).
pub fn duration(s: &str) -> Result<Duration, String> {
    let d = go_duration(s)?;
    if d.is_zero() {
        return Err("must be greater than zero".to_owned());
    }
    Ok(d)
}

fn go_duration(s: &str) -> Result<Duration, String> {
    let syntax = || format!("expected a duration such as 90s, 5m or 1h30m (units: {UNITS})");
    let mut rest = s;
    if let Some(r) = rest.strip_prefix('-') {
        if r != "0" {
            return Err("must not be negative".to_owned());
        }
        rest = r;
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(syntax());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(f) => f.split_at(f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len())),
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(syntax());
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("missing unit ({UNITS})"));
        }
        let scale = unit_nanos(unit).ok_or_else(|| format!("unknown unit {unit:?} ({UNITS})"))?;
        let int: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| syntax())? };
        // Digits beyond nanosecond precision of an hour do not change the result.
        let frac = &frac[..frac.len().min(20)];
        let frac_nanos = if frac.is_empty() {
            0
        } else {
            let digits: u128 = frac.parse().map_err(|_| syntax())?;
            digits * scale / 10u128.pow(u32::try_from(frac.len()).unwrap_or(20))
        };
        total = int
            .checked_mul(scale)
            .and_then(|n| n.checked_add(frac_nanos))
            .and_then(|n| n.checked_add(total))
            .ok_or_else(|| "duration too large".to_owned())?;
        rest = after;
    }
    let nanos = u64::try_from(total).map_err(|_| "duration too large".to_owned())?;
    Ok(Duration::from_nanos(nanos))
}

const UNITS: &str = "ns, us, ms, s, m, h";

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// A comma-separated list with blanks trimmed and empty items dropped.
pub fn list(s: &str) -> Vec<&str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).collect()
}

/// A comma-separated list of CIDRs.
pub fn cidrs(s: &str) -> Result<Vec<Cidr>, String> {
    list(s).into_iter().map(cidr).collect()
}

fn cidr(s: &str) -> Result<Cidr, String> {
    let bad = || format!("{s:?} is not a CIDR such as 10.244.0.0/16");
    let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok(Cidr { addr, prefix })
}

/// A comma-separated list of environment variable names.
pub fn env_names(s: &str) -> Result<Vec<String>, String> {
    list(s)
        .into_iter()
        .map(|name| {
            let mut chars = name.chars();
            let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if ok { Ok(name.to_owned()) } else { Err(format!("{name:?} is not a variable name")) }
        })
        .collect()
}

/// A network interface name (at most 15 bytes, no `/` or blanks).
pub fn interface_name(s: &str) -> Result<String, String> {
    let ok = (1..=15).contains(&s.len())
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if ok { Ok(s.to_owned()) } else { Err("not a network interface name".to_owned()) }
}

/// A SHA-256 digest: 64 hex digits, returned lower-case.
pub fn sha256(s: &str) -> Result<String, String> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err("expected 64 hex digits (sha256sum output)".to_owned())
    }
}

/// A path for a unix socket, short enough for `sun_path`.
pub fn socket_path(s: &str) -> Result<std::path::PathBuf, String> {
    if s.len() > MAX_SOCKET_PATH {
        return Err(format!("unix socket paths are limited to {MAX_SOCKET_PATH} bytes"));
    }
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ok = |s: &str, ms: u64| assert_eq!(duration(s), Ok(Duration::from_millis(ms)), "{s}");
        ok("5m", 300_000);
        ok("90s", 90_000);
        ok("1h30m", 5_400_000);
        ok("1.5m", 90_000);
        ok(".5s", 500);
        ok("300ms", 300);
        ok("+2s", 2_000);
        assert_eq!(duration("1500us"), Ok(Duration::from_micros(1500)));
        assert_eq!(duration("1µs"), Ok(Duration::from_micros(1)));
        assert_eq!(duration("7ns"), Ok(Duration::from_nanos(7)));
        for bad in ["5", "", "m", "5 m", "5x", "-5s", "0", "1.s.", "abc", "99999999999999999999h"] {
            assert!(duration(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(duration("5").unwrap_err().contains("missing unit"));
    }

    #[test]
    fn booleans() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(boolean(t), Ok(true));
        }
        for f in ["0", "f", "F", "false", "FALSE"] {
            assert_eq!(boolean(f), Ok(false));
        }
        for bad in ["yes", "no", "", "on", "2"] {
            assert!(boolean(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(port("15150", false), Ok(15150));
        assert!(port("0", false).is_err());
        assert_eq!(port("0", true), Ok(0));
        assert!(port("65536", false).is_err());
        assert!(port("80x", false).is_err());
        assert!(port("-1", true).is_err());
    }

    #[test]
    fn cidr_lists() {
        let v = cidrs("10.244.0.0/16, fd00::/64,").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].prefix, 64);
        assert_eq!(cidrs(""), Ok(vec![]));
        for bad in ["10.0.0.0", "10.0.0.0/33", "fd00::/129", "x/8", "10.0.0.0/8/1"] {
            assert!(cidrs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_name_lists() {
        assert_eq!(env_names("AWS_PROFILE, _X1").unwrap(), ["AWS_PROFILE", "_X1"]);
        assert!(env_names("1X").is_err());
        assert!(env_names("A-B").is_err());
        assert!(env_names("A=B").is_err());
    }

    #[test]
    fn other_values() {
        assert_eq!(sha256(&"AB".repeat(32)), Ok("ab".repeat(32)));
        assert!(sha256("abc").is_err());
        assert!(interface_name("eth0").is_ok());
        assert!(interface_name("a/b").is_err());
        assert!(interface_name("averyveryverylongname").is_err());
        assert!(socket_path(&"/x".repeat(60)).is_err());
        assert!(integer("10abc").is_err());
    }
}
