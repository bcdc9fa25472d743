//! Release builds embed the web console's files (`console/`, see
//! `src/console/assets.rs`): rebuild when any of them changes, including a
//! file added. Debug builds read the folder at run time and need no rebuild.

fn main() {
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rerun-if-changed=console");
    } else {
        println!("cargo:rerun-if-changed=build.rs");
    }
}
