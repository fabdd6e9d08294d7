//! Integration tests of the plugin host against real processes: a fake plugin written in Python
//! (`fake_plugin.py`) that misbehaves on request, and copies of system ELF binaries for pinning.

mod cleanup;
mod client;
mod logs;
mod plugin;
mod process;
mod supervisor;
mod support;
