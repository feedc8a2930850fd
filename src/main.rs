//! The `baton` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    baton::cli::main()
}
