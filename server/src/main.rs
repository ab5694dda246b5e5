//! `insitu`: the server binary. Everything it does lives in the library
//! (`insitu::server::cli`), which the Python package's `insitu` command runs too.

/// Large tensors are allocated and freed at a high rate; the system allocator returns
/// them to the kernel each time (mmap/munmap and page faults on every put), mimalloc
/// keeps and reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    insitu::server::cli::main(std::env::args_os().collect())
}
