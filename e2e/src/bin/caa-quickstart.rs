//! `caa-quickstart`: the README's main job, one pod sandbox on a local QEMU pod VM through the
//! real adaptor and libvirt plugin (see [`caa_e2e::quickstart`]). Run it through
//! `cargo xtask demo`, which installs the packages and builds the binaries first.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    caa_e2e::quickstart::run().await
}
