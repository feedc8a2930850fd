//! The adapters: each moves bytes between baton and one kind of server,
//! and decides nothing. SSH sessions (`ssh`), authoritative DNS (`dns`),
//! one attempt of a health check (`checks`) and its policy (`verify`), the
//! observation of a pair (`observe`), the hosts' own run lock
//! (`hostlock`), local hooks without the pair's secrets (`hooks`),
//! notifications sent to a command or a webhook (`notify`), and bounded
//! reads of local files (`readfile`).

pub mod checks;
pub mod dns;
pub mod hooks;
pub mod hostlock;
pub mod notify;
pub mod observe;
pub mod readfile;
pub mod ssh;
pub mod verify;
