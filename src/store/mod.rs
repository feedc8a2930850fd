//! The store: everything baton keeps between runs, behind one trait
//! (`Backend`): each pair's journal (append-only records), its documents
//! (the recorded roles, the last replication position, a pause, the
//! watcher's last look), its run lock, and for `baton watch` the leadership
//! and each watcher's view. The gate's and the window's history are read
//! from the journals (`history`).
//!
//! Two backends: local files in `state_dir` (`local`: the default, every
//! file 0600 in a 0700 directory owned by the user running baton, which
//! `dir` checks before any command uses it), and an etcd cluster
//! (`etcd`, with the cargo feature `etcd`): locks and leadership bound to
//! the controller's lease, records and documents written with
//! compare-and-swap on revisions.

pub mod archive;
pub mod dir;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod history;
pub mod journal;
pub mod local;
pub mod lock;
pub mod state;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Settings, StoreKind};
use journal::{JournalError, Record, RunView};
use lock::{LockError, LockOwner, PairLock};
use state::StateError;

/// Why a store that is not local files could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No member answered within the timeout (or the cluster has no
    /// quorum): nothing was written.
    #[error("the store {store} did not answer: {reason}; check that a majority of its members run and can be reached from this controller")]
    Unavailable { store: String, reason: String },
    /// The cluster refused the credentials.
    #[error("the store {store} refused this controller: {reason}; check [store] user, password_file and the certificates")]
    Refused { store: String, reason: String },
    /// A write that needs the pair's lock found it gone or someone
    /// else's: another controller may be acting on the pair.
    #[error("pair `{pair}`'s lock in the store {store} is no longer this controller's: it stops before its next action (another controller may act on the pair now)")]
    Fenced { store: String, pair: String },
    /// Another writer got there first (the compare-and-swap failed more
    /// often than it may be retried).
    #[error("the store {store} kept changing under `{key}`; try again")]
    Contended { store: String, key: String },
    /// A value in the store is not what baton wrote.
    #[error("the store {store} holds something baton cannot read at `{key}` ({reason}); inspect it with etcdctl")]
    Corrupt {
        store: String,
        key: String,
        reason: String,
    },
    /// This build has no backend for the configured store.
    #[error("this baton was built without the etcd store; build it with `cargo build --release --features etcd` (which needs protoc: `apt-get install protobuf-compiler`), or use `[store] kind = \"local\"`")]
    NotBuilt,
}

/// What `status` and the metrics say about the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Described {
    /// `local` or `etcd`.
    pub kind: &'static str,
    /// The directory, or the endpoints and the prefix.
    pub location: String,
}

/// The store's answer to a watcher that asks to lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// This watcher leads until `until` at the latest (it asks again every
    /// round; past `until` without an answer it must stop acting).
    Leading { until: Instant },
    /// Another watcher leads.
    Following { leader: String },
}

/// One backend of the store. Every method is blocking and bounded (an
/// etcd request by the store's timeout); the local files' calls are as
/// they always were.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// What it is, for `status` and the metrics.
    fn describe(&self) -> Described;

    /// Appends one record to `pair`'s journal, durably, before returning.
    /// While this controller holds the pair's lock, the append succeeds
    /// only if it still does (`StoreError::Fenced` otherwise).
    fn append(&self, pair: &str, record: &Record) -> Result<(), JournalError>;
    /// Every record of `pair`'s journal, oldest first.
    fn each(&self, pair: &str, visit: &mut dyn FnMut(Record)) -> Result<(), JournalError>;
    /// Every run of `pair`'s journal, digested.
    fn runs(&self, pair: &str) -> Result<Vec<RunView>, JournalError>;
    /// The last run of `pair`'s journal, digested.
    fn last_run(&self, pair: &str) -> Result<Option<RunView>, JournalError>;

    /// Where a document lives, for a message (a path, or a key).
    fn whereis(&self, doc: &str) -> String;
    /// A document (`web.state.json`, `web.pause.json`, ...), if any; at
    /// most 64 KiB.
    fn load(&self, doc: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// Writes a document atomically and durably.
    fn save(&self, doc: &str, body: &[u8]) -> Result<(), StateError>;
    /// Removes a document; `false` when there was none.
    fn remove(&self, doc: &str) -> Result<bool, StateError>;

    /// Takes `pair`'s run lock, or says at once who holds it.
    fn lock(&self, pair: &str, owner: &LockOwner) -> Result<PairLock, LockError>;
    /// Who holds `pair`'s lock now, without taking it.
    fn held_by(&self, pair: &str) -> Option<LockOwner>;

    /// Asks to lead the watchers (or to go on leading), as `me`.
    fn lead(&self, me: &str) -> Result<Leadership, StoreError>;
    /// Gives up leading (a watcher that stops), if `me` leads.
    fn resign(&self, me: &str);
    /// Who leads the watchers now, if anyone.
    fn leader(&self) -> Result<Option<String>, StoreError>;
    /// Publishes watcher `me`'s last view (JSON), for the leader's quorum
    /// and for `status`; it lapses with the watcher (etcd: with its
    /// lease).
    fn publish_view(&self, me: &str, view: &[u8]) -> Result<(), StoreError>;
    /// Every watcher's last view: (watcher, JSON).
    fn views(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

/// The store a command works with.
pub type Store = Arc<dyn Backend>;

/// The store `settings` name: local files in `state_dir`, or the etcd
/// cluster (one connection and one lease per process, shared by every
/// caller).
pub fn open(settings: &Settings) -> Result<Store, StoreError> {
    match &settings.store {
        StoreKind::Local => Ok(local(&settings.state_dir)),
        #[cfg(feature = "etcd")]
        StoreKind::Etcd(e) => etcd::shared(e),
        #[cfg(not(feature = "etcd"))]
        StoreKind::Etcd(_) => Err(StoreError::NotBuilt),
    }
}

/// Local files in `dir`.
pub fn local(dir: &Path) -> Store {
    Arc::new(local::Local::new(dir))
}
