//! `service-c`: see the library docs. The main stays thin so `mesh` can run the same code.

fn main() -> std::process::ExitCode {
    service_c::main()
}
