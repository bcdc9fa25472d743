//! `lifeline`: broker, agent and operator client in one binary.

fn main() -> std::process::ExitCode {
    lifeline::main_entry()
}
