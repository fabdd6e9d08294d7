//! The `caa-provider-aws` executable: the SDK's `run` does everything (`--describe`,
//! `--version`, the stdout guard, signals, serving over stdio).

fn main() -> std::process::ExitCode {
    caa_plugin_sdk::run::<caa_provider_aws::AwsProvider>()
}
