//! The etcd store (cargo feature `etcd`): baton's journals, documents, run
//! locks, the watchers' leadership and their views in an etcd v3 cluster,
//! so that several controllers share them.
//!
//! This module owns the connection to the cluster (one per process and per
//! endpoints and prefix, `shared`), the process's lease (one, granted on
//! first need and kept alive in the background) and the layout of the keys.
//! Under the configured prefix `P` (it starts and ends with `/`):
//!
//! | key                              | value                                   | lease |
//! |----------------------------------|-----------------------------------------|-------|
//! | `P journal/PAIR/SEQ`             | one journal record (JSON), SEQ 20 digits | none  |
//! | `P doc/NAME`                     | a document (state, pause, position, watch) | none |
//! | `P lock/PAIR`                    | the run lock's holder (`LockOwner` JSON) | yes  |
//! | `P leader`                       | the leading watcher's id                | yes   |
//! | `P watchers/ID`                  | watcher ID's last view (JSON)           | yes   |
//!
//! How it behaves:
//!
//! - Every `Backend` method blocks its caller, which may be a task of
//!   baton's runtime: the client runs on a thread of its own with its own
//!   runtime, each request is sent there over a channel and awaited with a
//!   deadline (the configured `timeout`: connecting included); a request
//!   without an answer in time is `StoreError::Unavailable`. A request that
//!   finds no member (one is down, the cluster is electing) is sent again,
//!   through the other endpoints, until that deadline; so a write may be
//!   applied by an attempt whose answer was lost: `append` and `lock`
//!   recognise their own earlier write (the same record at the key they
//!   tried; the same holder under this lease) and do not write twice. An
//!   append that ends `Unavailable` may still have been written.
//! - The etcd errors are told apart by the client's error enum and gRPC's
//!   status codes: `Unauthenticated`, `PermissionDenied` (and, while
//!   connecting, `InvalidArgument`: etcd's answer to a wrong password) are
//!   `StoreError::Refused`, everything else `Unavailable`. The password is
//!   read from `password_file` when connecting (at most 4 KiB, trailing
//!   newlines removed) and is in no message and no log.
//! - TLS is rustls (etcd-client's `tls`, with ring): `https://` endpoints
//!   need `ca` (no system roots are loaded); `cert` and `key` go together.
//! - The lease is valid until the instant its last acknowledged keep-alive
//!   (or its grant) was *sent*, plus the TTL the server returned, minus the
//!   request timeout as a safety margin. Past that instant, or when a
//!   keep-alive answers TTL 0, it is lost for good: the locks taken under
//!   it say `held() == false`, `lead` no longer answers `Leading` under it,
//!   and the next `lock`, `lead` or `publish_view` grants a new one.
//! - An append is a compare-and-swap: the next sequence number's key must
//!   not exist yet (`create_revision == 0`) and, while this process holds
//!   the pair's lock, the lock's key must still be the one this process
//!   created (its `create_revision` as remembered when it was taken: a lock
//!   that expired and was taken again has another), else nothing is
//!   written and the append is `StoreError::Fenced`. A lost lease fences
//!   at once, without asking the cluster.

use std::collections::HashMap;
use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions,
    GetResponse, Identity, PutOptions, SortOrder, SortTarget, TlsOptions, Txn, TxnOp,
    TxnOpResponse, TxnResponse,
};

use super::journal::{self, JournalError, Record, RunView};
use super::lock::{Guard, LockError, LockOwner, PairLock};
use super::state::StateError;
use super::{Backend, Described, Leadership, Store, StoreError};
use crate::config::EtcdStore;

/// The largest document `load` returns.
const MAX_DOC: usize = 64 << 10;
/// Keys read per request when a journal is read.
const PAGE: i64 = 256;
/// How long an append whose sequence number other writers keep taking
/// goes on trying, in multiples of the request timeout (each try is one
/// read and one transaction; between tries a random pause of up to
/// `APPEND_PAUSE`, so that writers do not stay in step).
const APPEND_PATIENCE: u32 = 4;
/// The longest pause between two tries of a contended append.
const APPEND_PAUSE: Duration = Duration::from_millis(20);
/// The largest password file read.
const MAX_SECRET_FILE: u64 = 4 << 10;
/// The largest certificate or key file read.
const MAX_PEM_FILE: u64 = 1 << 20;
/// How long past the request's own deadline a caller waits for the store's
/// thread to say so (it reports the timeout itself, normally).
const SLACK: Duration = Duration::from_millis(250);
/// The pause before a request that found no member is sent again.
const RETRY: Duration = Duration::from_millis(50);

/// The process's stores, by (endpoints, prefix).
type Cache = Mutex<HashMap<(Vec<String>, String), Arc<Inner>>>;
static STORES: OnceLock<Cache> = OnceLock::new();

/// The process's store on the cluster `settings` names: one connection and
/// one lease per process for each (endpoints, prefix), shared by every
/// caller (the first caller's ttl and timeout hold for all).
pub fn shared(settings: &EtcdStore) -> Result<Store, StoreError> {
    let cache = STORES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    let id = (settings.endpoints.clone(), settings.prefix.clone());
    if let Some(inner) = cache.get(&id) {
        return Ok(Arc::new(Etcd(inner.clone())));
    }
    let inner = Arc::new(Inner::start(settings)?);
    cache.insert(id, inner.clone());
    Ok(Arc::new(Etcd(inner)))
}

/// A store on an etcd cluster (a handle on the process's shared one).
#[derive(Debug)]
pub struct Etcd(Arc<Inner>);

/// What can go wrong on the store's thread.
#[derive(Debug)]
enum Failure {
    /// Connecting (or authenticating) failed.
    Connect(etcd_client::Error),
    /// The request failed.
    Request(etcd_client::Error),
    /// No answer within the timeout.
    Timeout,
    /// No answer within the timeout; the last attempt failed so.
    Retried(etcd_client::Error),
    /// The settings cannot be used (a file unreadable, ...).
    Setup { refused: bool, reason: String },
}

type Job = Box<dyn FnOnce(Arc<Conn>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The connection, on the store's thread.
struct Conn {
    settings: EtcdStore,
    client: tokio::sync::Mutex<Option<Client>>,
}

impl Conn {
    /// The client, connected (and authenticated) on first use.
    async fn client(&self) -> Result<Client, Failure> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let options = connect_options(&self.settings)?;
        let c = Client::connect(&self.settings.endpoints, Some(options))
            .await
            .map_err(Failure::Connect)?;
        *slot = Some(c.clone());
        Ok(c)
    }
}

/// The client's options: timeouts, TLS, user (the password read here, and
/// kept nowhere else).
fn connect_options(s: &EtcdStore) -> Result<ConnectOptions, Failure> {
    let mut o = ConnectOptions::new()
        .with_timeout(s.timeout)
        .with_connect_timeout(s.timeout)
        .with_keep_alive(s.timeout, s.timeout)
        .with_auto_token_refresh(true);
    let https = s.endpoints.iter().any(|e| e.starts_with("https://"));
    if https || s.ca.is_some() || s.cert.is_some() {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &s.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read_bounded(ca, MAX_PEM_FILE)?));
        }
        match (&s.cert, &s.key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(
                    read_bounded(cert, MAX_PEM_FILE)?,
                    read_bounded(key, MAX_PEM_FILE)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(Failure::Setup {
                    refused: true,
                    reason: "a client certificate needs both cert and key".to_string(),
                })
            }
        }
        o = o.with_tls(tls);
    }
    if let Some(user) = &s.user {
        let password = match &s.password_file {
            Some(path) => {
                password_from(&read_bounded(path, MAX_SECRET_FILE)?).ok_or_else(|| {
                    Failure::Setup {
                        refused: true,
                        reason: format!("the password file {} is not UTF-8", path.display()),
                    }
                })?
            }
            None => String::new(),
        };
        o = o.with_user(user.clone(), password);
    }
    Ok(o)
}

/// A file's contents, at most `max` bytes (a larger file is refused).
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, Failure> {
    let setup = |reason: String| Failure::Setup {
        refused: true,
        reason,
    };
    let file = std::fs::File::open(path)
        .map_err(|e| setup(format!("cannot read {}: {e}", path.display())))?;
    let mut body = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut body)
        .map_err(|e| setup(format!("cannot read {}: {e}", path.display())))?;
    if body.len() as u64 > max {
        return Err(setup(format!(
            "{} is larger than {max} bytes",
            path.display()
        )));
    }
    Ok(body)
}

/// The password a password file holds: its text without the trailing
/// newline (`\n` or `\r\n`, any number of them).
fn password_from(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    Some(text.trim_end_matches(['\n', '\r']).to_string())
}

/// The lease of this process: its id, and until when it is valid.
#[derive(Debug)]
struct LeaseCell {
    id: i64,
    state: Mutex<LeaseState>,
}

#[derive(Debug, Clone, Copy)]
struct LeaseState {
    until: Instant,
    lost: bool,
}

impl LeaseCell {
    fn new(id: i64, until: Instant) -> LeaseCell {
        LeaseCell {
            id,
            state: Mutex::new(LeaseState { until, lost: false }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether it is still valid now; once not, never again.
    fn valid(&self) -> bool {
        let mut s = self.state();
        if !s.lost && Instant::now() > s.until {
            s.lost = true;
        }
        !s.lost
    }

    /// Until when it is valid (meaningful while `valid`).
    fn until(&self) -> Instant {
        self.state().until
    }

    /// A keep-alive sent at `sent` was acknowledged with `ttl` seconds.
    fn renewed(&self, sent: Instant, ttl: i64, margin: Duration) {
        let mut s = self.state();
        if s.lost || Instant::now() > s.until {
            s.lost = true;
            return;
        }
        if ttl <= 0 {
            s.lost = true;
            return;
        }
        let until = valid_until(sent, ttl, margin);
        if until > s.until {
            s.until = until;
        }
    }

    fn lose(&self) {
        self.state().lost = true;
    }
}

/// Until when a lease is valid: from when the request that granted or
/// renewed it was sent, the server's TTL, less the safety margin.
fn valid_until(sent: Instant, ttl_secs: i64, margin: Duration) -> Instant {
    let ttl = Duration::from_secs(u64::try_from(ttl_secs).unwrap_or(0));
    (sent + ttl).checked_sub(margin).unwrap_or(sent).max(sent)
}

/// How often the lease is kept alive: a third of its TTL, and at least
/// twice within what is left of it once the margin is taken off.
fn keepalive_period(ttl: Duration, margin: Duration) -> Duration {
    let third = ttl / 3;
    let half_left = ttl.saturating_sub(margin) / 2;
    third.min(half_left).max(Duration::from_millis(100))
}

/// A lock this process holds: the key's creation and the lease.
#[derive(Debug, Clone)]
struct Held {
    rev: i64,
    lease: Arc<LeaseCell>,
}

/// The shared state of one store.
struct Inner {
    endpoints: Vec<String>,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    lease: Mutex<Option<Arc<LeaseCell>>>,
    locks: Mutex<HashMap<String, Held>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// The store's thread, with its runtime; nothing connects yet.
    fn start(settings: &EtcdStore) -> Result<Inner, StoreError> {
        let (jobs, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable {
                store: name(&settings.endpoints, &settings.prefix),
                reason: format!("cannot start the store's runtime: {e}"),
            })?;
        let conn = Arc::new(Conn {
            settings: settings.clone(),
            client: tokio::sync::Mutex::new(None),
        });
        std::thread::Builder::new()
            .name("baton-etcd".to_string())
            .spawn(move || {
                rt.block_on(async move {
                    while let Some(job) = rx.recv().await {
                        tokio::spawn(job(conn.clone()));
                    }
                });
            })
            .map_err(|e| StoreError::Unavailable {
                store: name(&settings.endpoints, &settings.prefix),
                reason: format!("cannot start the store's thread: {e}"),
            })?;
        Ok(Inner {
            endpoints: settings.endpoints.clone(),
            prefix: settings.prefix.clone(),
            ttl: settings.ttl,
            timeout: settings.timeout,
            jobs,
            lease: Mutex::new(None),
            locks: Mutex::new(HashMap::new()),
        })
    }

    fn name(&self) -> String {
        name(&self.endpoints, &self.prefix)
    }

    fn unavailable(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Unavailable {
            store: self.name(),
            reason: reason.into(),
        }
    }

    /// What a failure on the store's thread means.
    fn failure(&self, f: Failure) -> StoreError {
        let store = self.name();
        match f {
            Failure::Timeout => StoreError::Unavailable {
                store,
                reason: format!("no answer within {:?}", self.timeout),
            },
            Failure::Retried(e) => match classify(store, &e, false) {
                StoreError::Unavailable { store, reason } => StoreError::Unavailable {
                    store,
                    reason: format!("no answer within {:?} (last: {reason})", self.timeout),
                },
                other => other,
            },
            Failure::Setup {
                refused: true,
                reason,
            } => StoreError::Refused { store, reason },
            Failure::Setup { reason, .. } => StoreError::Unavailable { store, reason },
            Failure::Connect(e) => classify(store, &e, true),
            Failure::Request(e) => classify(store, &e, false),
        }
    }

    /// Runs `f` with the client on the store's thread and waits for its
    /// answer, at most the timeout. A request that fails for want of a
    /// member (one down, no leader yet) is sent again, through the other
    /// endpoints, until the timeout: `f` may thus run more than once, and
    /// a write may have been applied by an attempt whose answer was lost
    /// (`append` and `lock` recognise their own earlier write).
    fn call<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let timeout = self.timeout;
        let job: Job = Box::new(move |conn: Arc<Conn>| {
            Box::pin(async move {
                let mut last = None;
                let work = async {
                    loop {
                        let c = conn.client().await?;
                        match f(c).await {
                            Ok(v) => return Ok(v),
                            Err(e) if retryable(&e) => {
                                last = Some(e);
                                tokio::time::sleep(RETRY).await;
                            }
                            Err(e) => return Err(Failure::Request(e)),
                        }
                    }
                };
                let r = match tokio::time::timeout(timeout, work).await {
                    Ok(r) => r,
                    Err(_) => Err(last.map_or(Failure::Timeout, Failure::Retried)),
                };
                let _ = tx.send(r);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| self.unavailable("the store's thread has ended"))?;
        match rx.recv_timeout(timeout + SLACK) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(f)) => Err(self.failure(f)),
            Err(_) => Err(self.failure(Failure::Timeout)),
        }
    }

    /// One transaction.
    fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        self.call(move |mut c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })
    }

    /// A range read.
    fn range(&self, key: Vec<u8>, options: GetOptions) -> Result<GetResponse, StoreError> {
        self.call(move |mut c| {
            let (key, options) = (key.clone(), options.clone());
            async move { c.get(key, Some(options)).await }
        })
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// The process's lease, granted if it has none valid.
    fn lease(&self) -> Result<Arc<LeaseCell>, StoreError> {
        let mut slot = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cell) = slot.as_ref() {
            if cell.valid() {
                return Ok(cell.clone());
            }
        }
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let (id, granted, sent) = self.call(move |mut c| async move {
            let sent = Instant::now();
            let r = c.lease_grant(ttl, None).await?;
            Ok((r.id(), r.ttl(), sent))
        })?;
        if granted <= 0 {
            return Err(self.unavailable("the cluster granted a lease of no time"));
        }
        let cell = Arc::new(LeaseCell::new(id, valid_until(sent, granted, self.timeout)));
        self.keep_alive(cell.clone())?;
        *slot = Some(cell.clone());
        Ok(cell)
    }

    /// Keeps `cell` alive on the store's thread until it is lost.
    fn keep_alive(&self, cell: Arc<LeaseCell>) -> Result<(), StoreError> {
        let timeout = self.timeout;
        let margin = self.timeout;
        let period = keepalive_period(self.ttl, margin);
        let job: Job = Box::new(move |conn: Arc<Conn>| {
            Box::pin(async move {
                let mut stream = None;
                let mut wait = period;
                loop {
                    tokio::time::sleep(wait).await;
                    if !cell.valid() {
                        return;
                    }
                    wait = period.min(Duration::from_millis(500));
                    if stream.is_none() {
                        let open = async {
                            let mut c = conn.client().await.ok()?;
                            c.lease_keep_alive(cell.id).await.ok()
                        };
                        stream = tokio::time::timeout(timeout, open).await.ok().flatten();
                    }
                    let Some((keeper, answers)) = stream.as_mut() else {
                        continue;
                    };
                    let sent = Instant::now();
                    let ask = async {
                        keeper.keep_alive().await?;
                        answers.message().await
                    };
                    match tokio::time::timeout(timeout, ask).await {
                        Ok(Ok(Some(answer))) => {
                            if answer.ttl() <= 0 {
                                cell.lose();
                                return;
                            }
                            cell.renewed(sent, answer.ttl(), margin);
                            wait = period;
                        }
                        _ => stream = None,
                    }
                }
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| self.unavailable("the store's thread has ended"))
    }

    /// The journal's key of `seq`.
    fn record_key(&self, pair: &str, seq: u64) -> String {
        record_key(&self.prefix, pair, seq)
    }

    fn append(&self, pair: &str, record: &Record) -> Result<(), StoreError> {
        let body = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
            store: self.name(),
            key: self.record_key(pair, 0),
            reason: e.to_string(),
        })?;
        let dir = journal_dir(&self.prefix, pair);
        let lock_key = self.key(&format!("lock/{pair}"));
        let fence = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(pair)
            .cloned();
        let fenced = || StoreError::Fenced {
            store: self.name(),
            pair: pair.to_string(),
        };
        let give_up = Instant::now() + self.timeout * APPEND_PATIENCE;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            if let Some(held) = &fence {
                if !held.lease.valid() {
                    return Err(fenced());
                }
            }
            let last = self
                .range(
                    dir.clone().into_bytes(),
                    GetOptions::new()
                        .with_prefix()
                        .with_sort(SortTarget::Key, SortOrder::Descend)
                        .with_limit(1)
                        .with_keys_only(),
                )?
                .kvs()
                .first()
                .map(|kv| kv.key().to_vec());
            let next = match last {
                None => 1,
                Some(k) => {
                    seq_of(&dir, &k).ok_or_else(|| StoreError::Corrupt {
                        store: self.name(),
                        key: String::from_utf8_lossy(&k).into_owned(),
                        reason: "not a journal sequence number".to_string(),
                    })? + 1
                }
            };
            let key = self.record_key(pair, next);
            let mut when = vec![Compare::create_revision(key.clone(), CompareOp::Equal, 0)];
            if let Some(held) = &fence {
                when.push(Compare::create_revision(
                    lock_key.clone(),
                    CompareOp::Equal,
                    held.rev,
                ));
            }
            let txn = Txn::new()
                .when(when)
                .and_then(vec![TxnOp::put(key.clone(), body.clone(), None)])
                .or_else(vec![
                    TxnOp::get(lock_key.clone(), None),
                    TxnOp::get(key.clone(), None),
                ]);
            let r = self.txn(txn)?;
            if r.succeeded() {
                return Ok(());
            }
            let gets: Vec<Option<etcd_client::KeyValue>> = r
                .op_responses()
                .into_iter()
                .filter_map(|op| match op {
                    TxnOpResponse::Get(g) => Some(g.kvs().first().cloned()),
                    _ => None,
                })
                .collect();
            let (lock_now, at_key) = match gets.as_slice() {
                [lock_now, at_key] => (lock_now.clone(), at_key.clone()),
                _ => (None, None),
            };
            // This very record, written by an attempt whose answer was lost
            // (`call` sends a request again when no member answered).
            if at_key.is_some_and(|kv| kv.value() == body.as_slice()) {
                return Ok(());
            }
            if let Some(held) = &fence {
                if lock_now.map_or(0, |kv| kv.create_revision()) != held.rev {
                    return Err(fenced());
                }
            }
            if Instant::now() >= give_up {
                return Err(StoreError::Contended {
                    store: self.name(),
                    key,
                });
            }
            std::thread::sleep(jitter(attempt, APPEND_PAUSE));
        }
    }

    /// Visits `pair`'s records in order, page by page (each page one
    /// request, all at the revision of the first).
    fn each(&self, pair: &str, visit: &mut dyn FnMut(Record)) -> Result<(), JournalError> {
        let store = |source| JournalError::Store {
            pair: pair.to_string(),
            source,
        };
        let dir = journal_dir(&self.prefix, pair);
        let end = prefix_end(dir.as_bytes());
        let mut from = dir.as_bytes().to_vec();
        let mut revision = 0;
        loop {
            let mut r = self
                .range(
                    from.clone(),
                    GetOptions::new()
                        .with_range(end.clone())
                        .with_limit(PAGE)
                        .with_revision(revision),
                )
                .map_err(store)?;
            let rev = r.header().map_or(0, |h| h.revision());
            let more = r.more();
            let kvs: Vec<(Vec<u8>, Vec<u8>)> = r
                .take_kvs()
                .into_iter()
                .map(|kv| kv.into_key_value())
                .collect();
            if revision == 0 {
                revision = rev;
            }
            for (k, v) in &kvs {
                visit(parse_record(&dir, k, v)?);
            }
            match kvs.last() {
                Some((k, _)) if more => {
                    from = k.clone();
                    from.push(0);
                }
                _ => return Ok(()),
            }
        }
    }

    /// The last run of `pair`'s journal: read backwards, page by page, from
    /// the end to its start record, not from the beginning.
    fn last_run(&self, pair: &str) -> Result<Option<RunView>, JournalError> {
        let dir = journal_dir(&self.prefix, pair);
        let mut upper = prefix_end(dir.as_bytes());
        let mut revision = 0;
        // The records from the end, newest first.
        let mut tail = Vec::new();
        loop {
            let mut r = self
                .range(
                    dir.clone().into_bytes(),
                    GetOptions::new()
                        .with_range(upper.clone())
                        .with_sort(SortTarget::Key, SortOrder::Descend)
                        .with_limit(PAGE)
                        .with_revision(revision),
                )
                .map_err(|source| JournalError::Store {
                    pair: pair.to_string(),
                    source,
                })?;
            if revision == 0 {
                revision = r.header().map_or(0, |h| h.revision());
            }
            let more = r.more();
            let kvs = r.take_kvs();
            for kv in &kvs {
                let record = parse_record(&dir, kv.key(), kv.value())?;
                let start = matches!(record, Record::Start { .. });
                tail.push(record);
                if start {
                    tail.reverse();
                    return Ok(journal::runs(&tail).pop());
                }
            }
            match kvs.last() {
                Some(kv) if more => upper = kv.key().to_vec(),
                _ => return Ok(None),
            }
        }
    }

    /// One key's value, if any.
    fn get(&self, key: String) -> Result<Option<etcd_client::KeyValue>, StoreError> {
        Ok(self
            .range(key.into_bytes(), GetOptions::new())?
            .take_kvs()
            .into_iter()
            .next())
    }

    fn lock(self: &Arc<Self>, pair: &str, owner: &LockOwner) -> Result<PairLock, LockError> {
        let store = |source| LockError::Store {
            pair: pair.to_string(),
            source,
        };
        let body = serde_json::to_vec(owner).map_err(|e| {
            store(StoreError::Corrupt {
                store: self.name(),
                key: self.key(&format!("lock/{pair}")),
                reason: e.to_string(),
            })
        })?;
        let key = self.key(&format!("lock/{pair}"));
        for _ in 0..3 {
            let lease = self.lease().map_err(store)?;
            let r = self
                .txn(create_on_lease(&key, body.clone(), lease.id))
                .map_err(store)?;
            let holder = first_get(&r);
            let rev = match holder {
                _ if r.succeeded() => r.header().map_or(0, |h| h.revision()),
                // Released between the compare and the read: try again.
                None => continue,
                // This lock, written under this lease by an attempt whose
                // answer was lost (`call` sends a request again when no
                // member answered), and not a lock this process holds.
                Some(kv)
                    if kv.lease() == lease.id
                        && kv.value() == body.as_slice()
                        && !self
                            .locks
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .contains_key(pair) =>
                {
                    kv.create_revision()
                }
                Some(kv) => {
                    return Err(match serde_json::from_slice::<LockOwner>(kv.value()) {
                        Ok(holder) => LockError::Held {
                            pair: pair.to_string(),
                            holder: Box::new(holder),
                        },
                        Err(_) => LockError::HeldUnknown {
                            pair: pair.to_string(),
                        },
                    })
                }
            };
            self.locks.lock().unwrap_or_else(|p| p.into_inner()).insert(
                pair.to_string(),
                Held {
                    rev,
                    lease: lease.clone(),
                },
            );
            return Ok(PairLock::new(Box::new(EtcdGuard {
                store: self.clone(),
                pair: pair.to_string(),
                key,
                held: Held { rev, lease },
            })));
        }
        Err(LockError::HeldUnknown {
            pair: pair.to_string(),
        })
    }

    fn lead(&self, me: &str) -> Result<Leadership, StoreError> {
        let key = self.key("leader");
        let lease = self.lease()?;
        let r = self.txn(create_on_lease(&key, me.as_bytes().to_vec(), lease.id))?;
        let leading = || Leadership::Leading {
            until: lease.until(),
        };
        if r.succeeded() {
            return Ok(leading());
        }
        let current = first_get(&r);
        let Some(kv) = current else {
            // It lapsed between the compare and the read: next round.
            return Ok(Leadership::Following {
                leader: "nobody".to_string(),
            });
        };
        if kv.value() != me.as_bytes() {
            return Ok(Leadership::Following {
                leader: bounded_text(kv.value()),
            });
        }
        if kv.lease() == lease.id {
            return Ok(if lease.valid() {
                leading()
            } else {
                Leadership::Following {
                    leader: me.to_string(),
                }
            });
        }
        // Ours, under a lease this process lost: move it to the new one, if
        // nobody changed it since it was read.
        let txn = Txn::new()
            .when(vec![Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                kv.mod_revision(),
            )])
            .and_then(vec![TxnOp::put(
                key,
                me.as_bytes().to_vec(),
                Some(PutOptions::new().with_lease(lease.id)),
            )]);
        let r = self.txn(txn)?;
        Ok(if r.succeeded() {
            leading()
        } else {
            Leadership::Following {
                leader: "nobody".to_string(),
            }
        })
    }
}

/// The guard of a lock in etcd.
#[derive(Debug)]
struct EtcdGuard {
    store: Arc<Inner>,
    pair: String,
    key: String,
    held: Held,
}

impl Guard for EtcdGuard {
    fn held(&self) -> bool {
        self.held.lease.valid()
    }
}

impl Drop for EtcdGuard {
    /// Deletes the key if it is still the one this guard created (best
    /// effort, bounded by the timeout: else it lapses with the lease).
    fn drop(&mut self) {
        {
            let mut locks = self.store.locks.lock().unwrap_or_else(|p| p.into_inner());
            if locks
                .get(&self.pair)
                .is_some_and(|h| h.rev == self.held.rev)
            {
                locks.remove(&self.pair);
            }
        }
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                self.key.clone(),
                CompareOp::Equal,
                self.held.rev,
            )])
            .and_then(vec![TxnOp::delete(self.key.clone(), None)]);
        let _ = self.store.txn(txn);
    }
}

impl Backend for Etcd {
    fn describe(&self) -> Described {
        Described {
            kind: "etcd",
            location: self.0.name(),
        }
    }

    fn append(&self, pair: &str, record: &Record) -> Result<(), JournalError> {
        self.0
            .append(pair, record)
            .map_err(|source| JournalError::Store {
                pair: pair.to_string(),
                source,
            })
    }

    fn each(&self, pair: &str, visit: &mut dyn FnMut(Record)) -> Result<(), JournalError> {
        self.0.each(pair, visit)
    }

    fn runs(&self, pair: &str) -> Result<Vec<RunView>, JournalError> {
        let mut records = Vec::new();
        self.0.each(pair, &mut |r| records.push(r))?;
        Ok(journal::runs(&records))
    }

    fn last_run(&self, pair: &str) -> Result<Option<RunView>, JournalError> {
        self.0.last_run(pair)
    }

    fn whereis(&self, doc: &str) -> String {
        format!(
            "etcd key {} at {}",
            self.0.key(&format!("doc/{doc}")),
            self.0.endpoints.join(",")
        )
    }

    fn load(&self, doc: &str) -> Result<Option<Vec<u8>>, StateError> {
        let kv = self
            .0
            .get(self.0.key(&format!("doc/{doc}")))
            .map_err(|source| StateError::Store {
                doc: doc.to_string(),
                source,
            })?;
        match kv {
            None => Ok(None),
            Some(kv) if kv.value().len() > MAX_DOC => Err(StateError::Corrupt {
                path: self.whereis(doc),
                reason: format!(
                    "{} bytes, more than the {} KiB a document may hold",
                    kv.value().len(),
                    MAX_DOC >> 10
                ),
            }),
            Some(kv) => Ok(Some(kv.into_key_value().1)),
        }
    }

    fn save(&self, doc: &str, body: &[u8]) -> Result<(), StateError> {
        let err = |source| StateError::Store {
            doc: doc.to_string(),
            source,
        };
        let key = self.0.key(&format!("doc/{doc}"));
        // A pair's document (`PAIR.state.json`, ...: a pair's name holds no
        // dot) written while this process holds the pair's lock is written
        // only while the lock is still its own, as an append is.
        let pair = doc.split('.').next().unwrap_or_default();
        let fence = self
            .0
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(pair)
            .cloned();
        let Some(held) = fence else {
            let body = body.to_vec();
            return self
                .0
                .call(move |mut c| {
                    let (key, body) = (key.clone(), body.clone());
                    async move { c.put(key, body, None).await.map(|_| ()) }
                })
                .map_err(err);
        };
        let fenced = || StoreError::Fenced {
            store: self.0.name(),
            pair: pair.to_string(),
        };
        if !held.lease.valid() {
            return Err(err(fenced()));
        }
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                self.0.key(&format!("lock/{pair}")),
                CompareOp::Equal,
                held.rev,
            )])
            .and_then(vec![TxnOp::put(key, body.to_vec(), None)]);
        match self.0.txn(txn) {
            Ok(r) if r.succeeded() => Ok(()),
            Ok(_) => Err(err(fenced())),
            Err(e) => Err(err(e)),
        }
    }

    fn remove(&self, doc: &str) -> Result<bool, StateError> {
        let key = self.0.key(&format!("doc/{doc}"));
        self.0
            .call(move |mut c| {
                let key = key.clone();
                async move { Ok(c.delete(key, None::<DeleteOptions>).await?.deleted() > 0) }
            })
            .map_err(|source| StateError::Store {
                doc: doc.to_string(),
                source,
            })
    }

    fn lock(&self, pair: &str, owner: &LockOwner) -> Result<PairLock, LockError> {
        self.0.lock(pair, owner)
    }

    fn held_by(&self, pair: &str) -> Option<LockOwner> {
        let kv = self.0.get(self.0.key(&format!("lock/{pair}"))).ok()??;
        serde_json::from_slice(kv.value()).ok()
    }

    fn lead(&self, me: &str) -> Result<Leadership, StoreError> {
        self.0.lead(me)
    }

    fn resign(&self, me: &str) {
        let key = self.0.key("leader");
        let txn = Txn::new()
            .when(vec![Compare::value(
                key.clone(),
                CompareOp::Equal,
                me.as_bytes().to_vec(),
            )])
            .and_then(vec![TxnOp::delete(key, None)]);
        let _ = self.0.txn(txn);
    }

    fn leader(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .get(self.0.key("leader"))?
            .map(|kv| bounded_text(kv.value())))
    }

    fn publish_view(&self, me: &str, view: &[u8]) -> Result<(), StoreError> {
        let lease = self.0.lease()?;
        let key = self.0.key(&format!("watchers/{me}"));
        let view = view.to_vec();
        let id = lease.id;
        self.0.call(move |mut c| {
            let (key, view) = (key.clone(), view.clone());
            async move {
                c.put(key, view, Some(PutOptions::new().with_lease(id)))
                    .await
                    .map(|_| ())
            }
        })
    }

    fn views(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let dir = self.0.key("watchers/");
        let mut out: Vec<(String, Vec<u8>)> = self
            .0
            .range(dir.clone().into_bytes(), GetOptions::new().with_prefix())?
            .take_kvs()
            .into_iter()
            .filter_map(|kv| {
                let (k, v) = kv.into_key_value();
                let id = k.strip_prefix(dir.as_bytes())?;
                Some((String::from_utf8_lossy(id).into_owned(), v))
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

/// The store's name in messages: its endpoints and its prefix.
fn name(endpoints: &[String], prefix: &str) -> String {
    format!("{} {prefix}", endpoints.join(","))
}

/// gRPC's status codes that mean the cluster refused this controller
/// (numbers from the gRPC specification: the client's `tonic::Code` is
/// not re-exported, and baton does not depend on tonic itself).
const GRPC_INVALID_ARGUMENT: i32 = 3;
const GRPC_PERMISSION_DENIED: i32 = 7;
const GRPC_UNAUTHENTICATED: i32 = 16;

/// What a client error means. While connecting, a refused argument is
/// etcd's answer to a wrong user or password (`InvalidArgument`).
fn classify(store: String, e: &etcd_client::Error, connecting: bool) -> StoreError {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            let code = s.code() as i32;
            let refused = code == GRPC_UNAUTHENTICATED
                || code == GRPC_PERMISSION_DENIED
                || (connecting && code == GRPC_INVALID_ARGUMENT);
            let reason = format!("{:?}: {}", s.code(), s.message());
            if refused {
                StoreError::Refused { store, reason }
            } else {
                StoreError::Unavailable { store, reason }
            }
        }
        other => StoreError::Unavailable {
            store,
            reason: other.to_string(),
        },
    }
}

/// gRPC's `Unavailable`: no member answered, or it has no leader.
const GRPC_UNAVAILABLE: i32 = 14;

/// Whether a failed request is worth sending again (to another member).
fn retryable(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => s.code() as i32 == GRPC_UNAVAILABLE,
        _ => false,
    }
}

/// The directory of `pair`'s journal (with its trailing `/`).
fn journal_dir(prefix: &str, pair: &str) -> String {
    format!("{prefix}journal/{pair}/")
}

/// The key of record `seq` of `pair`'s journal.
fn record_key(prefix: &str, pair: &str, seq: u64) -> String {
    format!("{}{seq:020}", journal_dir(prefix, pair))
}

/// The transaction that creates `key` with `body` on the lease `lease` if
/// no one holds it, and otherwise reads who does (`first_get`).
fn create_on_lease(key: &str, body: Vec<u8>, lease: i64) -> Txn {
    Txn::new()
        .when(vec![Compare::create_revision(key, CompareOp::Equal, 0)])
        .and_then(vec![TxnOp::put(
            key,
            body,
            Some(PutOptions::new().with_lease(lease)),
        )])
        .or_else(vec![TxnOp::get(key, None)])
}

/// The first key a transaction's `get` read, if any.
fn first_get(r: &TxnResponse) -> Option<etcd_client::KeyValue> {
    r.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(g) => g.kvs().first().cloned(),
        _ => None,
    })
}

/// A random pause in `[0, most)`, different in each process and for each
/// `attempt` (the standard library's per-process random hash keys; no
/// cryptographic quality is needed, only that two writers differ).
fn jitter(attempt: u32, most: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let most = u64::try_from(most.as_micros()).unwrap_or(u64::MAX).max(1);
    Duration::from_micros(h.finish() % most)
}

/// The sequence number of a journal key under `dir`.
fn seq_of(dir: &str, key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(dir.as_bytes())?;
    if rest.len() != 20 || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(rest).ok()?.parse().ok()
}

/// The record a journal key under `dir` holds.
fn parse_record(dir: &str, key: &[u8], value: &[u8]) -> Result<Record, JournalError> {
    serde_json::from_slice(value).map_err(|e| JournalError::Corrupt {
        path: String::from_utf8_lossy(key).into_owned(),
        line: seq_of(dir, key)
            .and_then(|s| usize::try_from(s).ok())
            .unwrap_or(0),
        reason: e.to_string(),
    })
}

/// The end of the range of keys that start with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A short value as text (at most 256 bytes of it).
fn bounded_text(v: &[u8]) -> String {
    String::from_utf8_lossy(&v[..v.len().min(256)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contended_appends_pause_a_random_time_below_the_bound() {
        let pauses: Vec<Duration> = (0..64).map(|a| jitter(a, APPEND_PAUSE)).collect();
        assert!(pauses.iter().all(|p| *p < APPEND_PAUSE), "{pauses:?}");
        let mut distinct = pauses.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 32, "not random: {pauses:?}");
        assert_eq!(jitter(1, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn keys_are_laid_out_under_the_prefix() {
        assert_eq!(
            record_key("/baton/lab/", "web", 42),
            "/baton/lab/journal/web/00000000000000000042"
        );
        assert_eq!(journal_dir("/p/", "web"), "/p/journal/web/");
        assert_eq!(prefix_end(b"/p/journal/web/"), b"/p/journal/web0".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b".to_vec());
        assert_eq!(prefix_end(&[0xff]), vec![0]);
    }

    #[test]
    fn sequence_numbers_parse_only_from_the_pairs_own_keys() {
        let dir = "/p/journal/web/";
        assert_eq!(
            seq_of(dir, b"/p/journal/web/00000000000000000042"),
            Some(42)
        );
        assert_eq!(
            seq_of(dir, record_key("/p/", "web", u64::MAX).as_bytes()),
            Some(u64::MAX)
        );
        assert_eq!(seq_of(dir, b"/p/journal/web/42"), None, "not padded");
        assert_eq!(seq_of(dir, b"/p/journal/api/00000000000000000042"), None);
        assert_eq!(seq_of(dir, b"/p/journal/web/0000000000000000004x"), None);
        // Keys sort as their numbers do.
        assert!(record_key("/p/", "web", 9) < record_key("/p/", "web", 10));
    }

    #[test]
    fn a_lease_is_valid_from_the_sending_for_its_ttl_less_the_margin() {
        let sent = Instant::now();
        assert_eq!(
            valid_until(sent, 10, Duration::from_secs(2)),
            sent + Duration::from_secs(8)
        );
        // A margin larger than the TTL leaves nothing (never earlier than sent).
        assert_eq!(valid_until(sent, 1, Duration::from_secs(2)), sent);
        assert_eq!(valid_until(sent, -1, Duration::from_secs(0)), sent);
        assert_eq!(
            keepalive_period(Duration::from_secs(10), Duration::from_secs(2)),
            Duration::from_millis(3333) + Duration::from_nanos(333_333)
        );
        assert_eq!(
            keepalive_period(Duration::from_secs(3), Duration::from_millis(2500)),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn a_lost_lease_stays_lost() {
        let now = Instant::now();
        let cell = LeaseCell::new(1, now + Duration::from_secs(60));
        assert!(cell.valid());
        cell.renewed(now, 120, Duration::from_secs(1));
        assert_eq!(cell.until(), now + Duration::from_secs(119));
        cell.renewed(now, 0, Duration::ZERO);
        assert!(!cell.valid(), "a keep-alive that answers TTL 0 loses it");
        cell.renewed(Instant::now(), 120, Duration::ZERO);
        assert!(!cell.valid(), "and nothing brings it back");

        let expired = LeaseCell::new(2, now);
        std::thread::sleep(Duration::from_millis(2));
        assert!(!expired.valid());
        expired.renewed(Instant::now(), 120, Duration::ZERO);
        assert!(!expired.valid());
    }

    #[test]
    fn a_password_file_loses_its_trailing_newlines_only() {
        assert_eq!(password_from(b"s3cret\n").as_deref(), Some("s3cret"));
        assert_eq!(password_from(b"s3cret\r\n").as_deref(), Some("s3cret"));
        assert_eq!(password_from(b" a b \n\n").as_deref(), Some(" a b "));
        assert_eq!(password_from(&[0xff, b'\n']), None);
    }

    #[test]
    fn an_oversized_secret_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pw");
        std::fs::write(&path, vec![b'x'; 5000]).expect("write");
        match read_bounded(&path, MAX_SECRET_FILE) {
            Err(Failure::Setup { refused, reason }) => {
                assert!(refused);
                assert!(!reason.contains("xxxx"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
