//! Compiles `proto/ping.proto` with `protox` (a pure-Rust protobuf compiler) into a file
//! descriptor set and generates the prost messages and tonic client/server from it, so building
//! needs no system `protoc` (CI machines have none).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/ping.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
