//! The rejoin ticket an agent saves before a consented reboot and reads
//! back when it starts (host/agent/src/reboot.rs), from its data folder
//! (a private file, as `save` leaves it).
#![no_main]

use std::os::unix::fs::PermissionsExt;

use libfuzzer_sys::fuzz_target;
use lifeline_fuzz::reboot;

fuzz_target!(|data: &[u8]| {
    let dir = lifeline_fuzz::scratch();
    let path = reboot::ticket_path(dir);
    std::fs::write(&path, data).expect("the ticket file is written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .expect("the ticket file is private");
    // What `save` writes (without its fsync, which would bound the rate to
    // the disk's) must read back as the same ticket.
    if let Ok(Some(t)) = reboot::load(dir) {
        let json = serde_json::to_vec_pretty(&t).expect("a ticket encodes");
        let again: reboot::SavedTicket = serde_json::from_slice(&json).expect("a ticket decodes");
        assert_eq!(again, t, "a ticket survives save and load");
    }
});
