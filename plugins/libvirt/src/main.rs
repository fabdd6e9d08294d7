//! The `caa-provider-libvirt` executable: the SDK's `run` does everything (`--describe`,
//! `--version`, the stdout guard, signals, and serving over stdio on a current-thread runtime;
//! libvirt calls go to the blocking pool).

fn main() -> std::process::ExitCode {
    caa_plugin_sdk::run::<caa_provider_libvirt::LibvirtProvider>()
}
