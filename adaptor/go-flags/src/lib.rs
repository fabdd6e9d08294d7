//! Go `flag` package spellings turned into what clap parses. For each argument naming a long
//! option of the command, with one or two dashes: `-name` becomes `--name`, `-name=v` becomes
//! `--name=v`, and for options that need a value `-name v` becomes `--name=v` (so a value that
//! starts with `-` is not mistaken for an option, as in Go). `-h` and `-help` become `--help`.
//! Unknown `-name` options get a second dash (for clap's error message); anything else, and
//! everything after `--`, is left for clap to accept or reject.

use std::collections::HashMap;
use std::ffi::OsString;

/// Rewrites `args` (without the program name) for `command`.
pub fn normalize(command: &clap::Command, args: Vec<OsString>) -> Vec<OsString> {
    let mut command = command.clone();
    command.build();
    let takes_value: HashMap<String, bool> = command
        .get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?;
            let needs = a.get_num_args().is_some_and(|n| n.min_values() > 0);
            Some((long.to_owned(), needs))
        })
        .collect();

    let mut out = Vec::with_capacity(args.len());
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(args);
            break;
        }
        let Some(body) = text.strip_prefix("--").or_else(|| text.strip_prefix('-')) else {
            out.push(arg);
            continue;
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if (name == "h" || name == "help") && value.is_none() {
            out.push("--help".into());
            continue;
        }
        match (takes_value.get(name), value) {
            // Not ours: a Go-style `-name` still reads better in clap's error as `--name`.
            (None, _) if text.starts_with("--") || name.len() < 2 => out.push(arg),
            (None, _) => out.push(format!("-{text}").into()),
            (Some(_), Some(v)) => out.push(format!("--{name}={v}").into()),
            (Some(true), None) => match args.next() {
                Some(next) => {
                    let mut joined = OsString::from(format!("--{name}="));
                    joined.push(next);
                    out.push(joined);
                }
                None => out.push(format!("--{name}").into()),
            },
            (Some(false), None) => out.push(format!("--{name}").into()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::{Arg, ArgAction, Command};

    use super::*;

    fn command() -> Command {
        Command::new("t")
            .arg(Arg::new("pods-dir").long("pods-dir"))
            .arg(Arg::new("initdata").long("initdata"))
            .arg(Arg::new("peerpods-limit-per-node").long("peerpods-limit-per-node"))
            .arg(
                Arg::new("tls-skip-verify")
                    .long("tls-skip-verify")
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .action(ArgAction::Set),
            )
    }

    fn check(args: &[&str], expected: &[&str]) {
        let args = args.iter().map(OsString::from).collect();
        let got = normalize(&command(), args);
        let got: Vec<_> = got.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn go_spellings_become_clap_spellings() {
        check(&["-pods-dir", "/x"], &["--pods-dir=/x"]);
        check(&["-pods-dir=/x"], &["--pods-dir=/x"]);
        check(&["--pods-dir", "/x"], &["--pods-dir=/x"]);
        check(&["-tls-skip-verify"], &["--tls-skip-verify"]);
        check(&["-tls-skip-verify=false"], &["--tls-skip-verify=false"]);
        check(&["-peerpods-limit-per-node", "-1"], &["--peerpods-limit-per-node=-1"]);
        check(&["-initdata", "-abc"], &["--initdata=-abc"]);
        check(&["-help"], &["--help"]);
        check(&["-h"], &["--help"]);
    }

    #[test]
    fn unknown_and_positional_arguments_are_left_alone() {
        check(&["-aws-region", "x"], &["--aws-region", "x"]);
        check(&["--aws-region=x"], &["--aws-region=x"]);
        check(&["-x"], &["-x"]);
        check(&["stray"], &["stray"]);
        check(&["--", "-pods-dir"], &["--", "-pods-dir"]);
        check(&["-pods-dir"], &["--pods-dir"]);
    }
}
