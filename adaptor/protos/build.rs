//! Generates the protobuf messages and async ttrpc stubs for every `proto/*.proto` into
//! `OUT_DIR` with the pure-Rust parser (no `protoc`), repairs the wire service names, and
//! writes `protos.rs`, which declares each generated file as a sibling module so cross-file
//! references (`super::x::T`) resolve; `src/lib.rs` includes it. Nothing is written into `src/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ttrpc_codegen::{Codegen, Customize, ProtobufCustomize};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Every file in proto/ is an input (sorted, for a stable protos.rs); a directory
    // rerun-if-changed makes cargo rescan it, so a new .proto needs no build.rs edit.
    let mut stems: Vec<String> = std::fs::read_dir("proto")
        .expect("reading proto/")
        .filter_map(|e| {
            let name = e.expect("reading proto/ entry").file_name().into_string().ok()?;
            name.strip_suffix(".proto").map(str::to_owned)
        })
        .collect();
    stems.sort();
    let inputs: Vec<String> = stems.iter().map(|s| format!("proto/{s}.proto")).collect();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=proto");

    Codegen::new()
        .out_dir(&out)
        .inputs(&inputs)
        .include("proto")
        .rust_protobuf()
        .customize(Customize { async_all: true, ..Default::default() })
        .rust_protobuf_customize(ProtobufCustomize::default().gen_mod_rs(false))
        .run()
        .expect("generating ttrpc code from proto/*.proto");

    fix_service_names(&out, &inputs);

    // Generated files start with inner attributes, so they cannot be `include!`d into a
    // module body; declare them as modules with absolute `#[path]`s instead.
    let mut wrapper = String::new();
    for stem in &stems {
        // A file without a service gets no `_ttrpc.rs`.
        for module in [stem.clone(), format!("{stem}_ttrpc")] {
            let path = out.join(format!("{module}.rs"));
            if path.exists() {
                let path = path.to_str().expect("OUT_DIR is valid UTF-8");
                writeln!(wrapper, "#[path = {path:?}]\npub mod {module};")
                    .expect("writing to a String");
            }
        }
    }
    std::fs::write(out.join("protos.rs"), wrapper).expect("writing protos.rs");
}

/// ttrpc-compiler 0.9 camel-cases the service name it puts on the wire (`podvminfo.PodVMInfo`
/// becomes `podvminfo.PodVmInfo`), so Go peers would not find the service. Put the name from
/// the .proto back into every `"<package>.<Service>"` literal, and fail the build if a
/// service's exact wire name is then missing from its stubs.
fn fix_service_names(out: &Path, inputs: &[String]) {
    let parsed = protobuf_parse::Parser::new()
        .pure()
        .include("proto")
        .inputs(inputs)
        .parse_and_typecheck()
        .expect("parsing proto/*.proto");
    for file in &parsed.file_descriptors {
        if file.service.is_empty() {
            continue;
        }
        let stem = file.name().strip_suffix(".proto").expect("a .proto file name");
        let path = out.join(format!("{stem}_ttrpc.rs"));
        let mut code = std::fs::read_to_string(&path).expect("reading generated ttrpc stubs");
        for service in &file.service {
            let exact = format!("\"{}.{}\"", file.package(), service.name());
            let mangled = format!("\"{}.{}\"", file.package(), camel_case(service.name()));
            code = code.replace(&mangled, &exact);
            assert!(code.contains(&exact), "{}: wire name {exact} not generated", path.display());
        }
        std::fs::write(&path, code).expect("writing generated ttrpc stubs");
    }
}

/// The compiler's spelling of a service name: words split at `_`, at lower-to-upper
/// boundaries and before the last capital of a run that a lower-case letter follows, each
/// word capitalised and the rest lower-cased (`PodVMInfo` -> `Pod`,`VM`,`Info` -> `PodVmInfo`).
fn camel_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut words: Vec<String> = vec![String::new()];
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            words.push(String::new());
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if boundary {
            words.push(String::new());
        }
        words.last_mut().expect("a word").push(c);
    }
    words
        .iter()
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            let first = chars.next().expect("a non-empty word").to_uppercase();
            first.chain(chars.flat_map(char::to_lowercase)).collect::<String>()
        })
        .collect()
}
