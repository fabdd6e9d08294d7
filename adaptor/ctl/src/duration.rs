//! Go-style durations (`600s`, `1m30s`, `250ms`) for `--timeout`, the spelling Kata and
//! upstream configuration use, without pulling in a parsing crate.

use std::time::Duration;

/// Parses a sequence of `<integer><unit>` terms, units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`;
/// a bare `0` is accepted as zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let invalid = || format!("invalid duration {text:?} (examples: 600s, 1m30s, 250ms)");
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let term = match &rest[..unit_len] {
            "ns" => Duration::from_nanos(value),
            "us" | "µs" => Duration::from_micros(value),
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.checked_mul(60).ok_or_else(invalid)?),
            "h" => Duration::from_secs(value.checked_mul(3600).ok_or_else(invalid)?),
            _ => return Err(invalid()),
        };
        total = total.checked_add(term).ok_or_else(invalid)?;
        rest = &rest[unit_len..];
    }
    if text.is_empty() { Err(invalid()) } else { Ok(total) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_durations_parse() {
        assert_eq!(parse_duration("600s"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for bad in ["", "10", "s", "1.5s", "10x", "-1s", "1s2"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
