//! The `caa-provider-mock` executable: the SDK's `run` does everything (`--describe`,
//! `--version`, the stdout guard, signals, and serving over stdio).

fn main() -> std::process::ExitCode {
    caa_plugin_sdk::run::<caa_provider_mock::MockProvider>()
}
