//! The DNS adapter (Hickory): asks one authoritative server directly (no
//! recursion, no cache) what it serves for a name, and says whether the
//! answer really was authoritative; proves the TSIG key against the zone's
//! primary with a signed SOA query, which changes nothing; sends one
//! TSIG-signed RFC 2136 UPDATE that replaces a record only if it still
//! holds the expected value (compare-and-swap, delete and add in the same
//! message). Signed messages are signed and their answers verified here,
//! so that a server's refusal of the signature (BADKEY, BADSIG, BADTIME,
//! from the TSIG record of its answer) comes back typed.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::DnsHandle;
use hickory_net::{DnsError, NetError};
use hickory_proto::op::{
    update_message, DnsRequest, DnsRequestOptions, DnsResponse, Edns, Message, Query, ResponseCode,
    DEFAULT_MAX_PAYLOAD_LEN,
};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm as HickoryTsig, TsigError};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordSet, RecordType, TSigner};

use crate::config::tsig::{TsigAlgorithm, TsigKey};

/// What one server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Every value of the answer, as text (addresses for A/AAAA).
    pub values: Vec<String>,
    /// Smallest TTL among the answer's records.
    pub ttl: Option<u32>,
}

impl Answer {
    /// The answer's A/AAAA addresses.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.values.iter().filter_map(|v| v.parse().ok()).collect()
    }
}

/// Why a server gave no usable answer.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DnsQueryError {
    #[error("{server} did not answer within {}", humantime::format_duration(*after))]
    Timeout { server: SocketAddr, after: Duration },
    #[error("{server} answered {code} for {name}")]
    Refused {
        server: SocketAddr,
        name: String,
        code: String,
    },
    #[error("{server} is not authoritative for {name} (its answer lacks the AA flag); list only the zone's authoritative servers")]
    NotAuthoritative { server: SocketAddr, name: String },
    #[error("cannot ask {server}: {reason}")]
    Failed { server: SocketAddr, reason: String },
    #[error("`{name}` is not a valid DNS name")]
    BadName { name: String },
}

/// The record type an address family is published under.
pub fn record_type_for(address: &IpAddr) -> RecordType {
    if address.is_ipv4() {
        RecordType::A
    } else {
        RecordType::AAAA
    }
}

/// Asks `server` for `name`/`rtype` without recursion. NXDOMAIN and empty
/// answers come back as an empty `Answer`; a non-authoritative answer is an
/// error.
pub async fn query(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Answer, DnsQueryError> {
    let qname = Name::from_str(name).map_err(|_| DnsQueryError::BadName {
        name: name.to_string(),
    })?;
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(timeout))
        .build();
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let bg = tokio::spawn(bg);
    let mut options = DnsRequestOptions::default();
    options.recursion_desired = false;
    options.use_edns = true;
    let fut = async {
        let mut responses = client.lookup(Query::query(qname, rtype), options);
        responses.next().await
    };
    let result = tokio::time::timeout(timeout + Duration::from_millis(200), fut).await;
    bg.abort();
    let response = match result {
        Err(_) | Ok(None) => {
            return Err(DnsQueryError::Timeout {
                server,
                after: timeout,
            })
        }
        Ok(Some(Err(e))) => return classify(server, name, e, timeout),
        Ok(Some(Ok(r))) => r,
    };
    let code = response.metadata.response_code;
    if code != ResponseCode::NoError && code != ResponseCode::NXDomain {
        return Err(DnsQueryError::Refused {
            server,
            name: name.to_string(),
            code: code.to_string(),
        });
    }
    if !response.metadata.authoritative {
        return Err(DnsQueryError::NotAuthoritative {
            server,
            name: name.to_string(),
        });
    }
    let mut values = Vec::new();
    let mut ttl: Option<u32> = None;
    for record in &response.answers {
        if record.record_type() != rtype {
            continue;
        }
        ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
        values.push(rdata_text(&record.data));
    }
    values.sort();
    Ok(Answer { values, ttl })
}

fn rdata_text(data: &RData) -> String {
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        other => other.to_string(),
    }
}

fn classify(
    server: SocketAddr,
    name: &str,
    e: NetError,
    after: Duration,
) -> Result<Answer, DnsQueryError> {
    match e {
        NetError::Timeout => Err(DnsQueryError::Timeout { server, after }),
        NetError::Dns(DnsError::NoRecordsFound(nr)) => {
            if nr.response_code == ResponseCode::NoError
                || nr.response_code == ResponseCode::NXDomain
            {
                Ok(Answer {
                    values: vec![],
                    ttl: None,
                })
            } else {
                Err(DnsQueryError::Refused {
                    server,
                    name: name.to_string(),
                    code: nr.response_code.to_string(),
                })
            }
        }
        NetError::Dns(DnsError::ResponseCode(code)) => Err(DnsQueryError::Refused {
            server,
            name: name.to_string(),
            code: code.to_string(),
        }),
        other => Err(DnsQueryError::Failed {
            server,
            reason: other.to_string(),
        }),
    }
}

/// The TSIG key as messages name it: its file, name and algorithm, never
/// its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLabel {
    /// The key file.
    pub file: String,
    /// The key's name.
    pub name: String,
    /// Its algorithm, as BIND writes it.
    pub algorithm: &'static str,
}

impl KeyLabel {
    /// The label of `key`.
    pub fn of(key: &TsigKey) -> Self {
        KeyLabel {
            file: key.file.display().to_string(),
            name: key.name.clone(),
            algorithm: key.algorithm.name(),
        }
    }
}

impl fmt::Display for KeyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key `{}` ({}) from {}",
            self.name, self.algorithm, self.file
        )
    }
}

/// The signature time window baton signs with (TSIG's fudge), in seconds.
const FUDGE: u16 = 300;

/// How a server refused a TSIG signature: the error in the TSIG record of
/// its answer (RFC 8945, section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigRefusal {
    /// BADKEY: the server has no key of that name and algorithm (Knot also
    /// answers it to an update its ACL does not allow the key).
    BadKey,
    /// BADSIG: the server has the key, but the signature does not verify:
    /// the secrets differ.
    BadSig,
    /// BADTIME: the signature's time is outside the server's window; how
    /// many seconds this machine's clock is ahead of the server's (negative:
    /// behind), when the server said its time.
    BadTime { ahead: Option<i64> },
    /// Another TSIG error code (BADTRUNC, or one baton does not know).
    Other(u16),
}

impl TsigRefusal {
    /// From the TSIG record's error and other data (which, with BADTIME,
    /// holds the server's time), at our signing time `now`.
    fn from_tsig(error: TsigError, other: &[u8], now: u64) -> Self {
        match error {
            TsigError::BadKey => TsigRefusal::BadKey,
            TsigError::BadSig => TsigRefusal::BadSig,
            TsigError::BadTime => {
                // Other data: the server's time, 48 bits (RFC 8945, 5.2.3).
                let ahead = <[u8; 6]>::try_from(other).ok().map(|b| {
                    let server = b.iter().fold(0u64, |t, byte| (t << 8) | u64::from(*byte));
                    // Both fit in 48 bits: no overflow.
                    now as i64 - server as i64
                });
                TsigRefusal::BadTime { ahead }
            }
            other => TsigRefusal::Other(u16::from(other)),
        }
    }

    /// The TSIG error's name.
    pub fn code(&self) -> String {
        match self {
            TsigRefusal::BadKey => "BADKEY".to_string(),
            TsigRefusal::BadSig => "BADSIG".to_string(),
            TsigRefusal::BadTime { .. } => "BADTIME".to_string(),
            TsigRefusal::Other(code) => format!("TSIG error {code}"),
        }
    }

    /// What the refusal means and what to check, for `key` at `server`.
    pub fn explain(&self, server: SocketAddr, key: &KeyLabel) -> String {
        let KeyLabel {
            file,
            name,
            algorithm,
        } = key;
        match self {
            TsigRefusal::BadKey => format!(
                "it has no key `{name}` of algorithm {algorithm}; make the key name and algorithm in {file} those of the key the server has for updates, and check that {server}, the first of `servers`, is the zone's primary (updates go to it; a secondary often has no such key)"
            ),
            TsigRefusal::BadSig => format!(
                "it has a key `{name}` ({algorithm}), but with another secret than {file}; copy the server's secret for `{name}` into {file}"
            ),
            TsigRefusal::BadTime { ahead } => {
                let skew = match ahead {
                    Some(s) if *s >= 0 => format!(" (this machine's clock is {s} s ahead of the server's)"),
                    Some(s) => format!(" (this machine's clock is {} s behind the server's)", s.unsigned_abs()),
                    None => String::new(),
                };
                format!(
                    "the signature's time is more than {FUDGE} s away from the server's clock{skew}; check the clocks of this machine and of {server} (NTP)"
                )
            }
            TsigRefusal::Other(_) => format!(
                "check {file} against the key `{name}` ({algorithm}) the server has"
            ),
        }
    }
}

/// How a TSIG-signed exchange ended short of an answer whose signature
/// verified with the key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Exchange {
    /// No answer in time.
    Timeout,
    /// The server refused the signature.
    Refused(TsigRefusal),
    /// The answer (with this response code) carries no TSIG record.
    Unsigned(ResponseCode),
    /// The answer's signature does not verify with the key (Hickory's reason).
    Unverified(String),
    /// The message could not be signed or sent.
    Failed(String),
}

fn signer(key: &TsigKey) -> Result<TSigner, String> {
    let algorithm = match key.algorithm {
        TsigAlgorithm::HmacSha256 => HickoryTsig::HmacSha256,
        TsigAlgorithm::HmacSha384 => HickoryTsig::HmacSha384,
        TsigAlgorithm::HmacSha512 => HickoryTsig::HmacSha512,
    };
    let name = Name::from_str(&key.name)
        .map_err(|e| format!("the TSIG key name `{}` is not a DNS name: {e}", key.name))?;
    TSigner::new(key.secret().to_vec(), algorithm, name, FUDGE).map_err(|e| e.to_string())
}

/// Signs `message` with `key`, sends it to `server` and returns the answer
/// once its own signature verified with the key. The signing and the
/// verification happen here rather than in Hickory's UDP stream, whose
/// verifier turns a refusal (an answer whose TSIG record carries an error
/// and no MAC) into an untyped protocol error: here the refusal is read
/// from the answer's TSIG record.
async fn signed_exchange(
    server: SocketAddr,
    mut message: Message,
    key: &TsigKey,
    timeout: Duration,
) -> Result<DnsResponse, Exchange> {
    let signer = signer(key).map_err(Exchange::Failed)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Exchange::Failed("this machine's clock is before 1970".to_string()))?
        .as_secs();
    let mut verifier = message
        .finalize(&signer, now)
        .map_err(|e| Exchange::Failed(format!("cannot sign the message: {e}")))?
        .ok_or_else(|| Exchange::Failed("signing gave no verifier for the answer".to_string()))?;
    // No signer on the stream: the message is signed already.
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(timeout))
        .build();
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let bg = tokio::spawn(bg);
    let request = DnsRequest::new(message, DnsRequestOptions::default());
    let result = tokio::time::timeout(timeout + Duration::from_millis(200), async {
        client.send(request).next().await
    })
    .await;
    bg.abort();
    let response = match result {
        Err(_) | Ok(None) | Ok(Some(Err(NetError::Timeout))) => return Err(Exchange::Timeout),
        Ok(Some(Err(e))) => return Err(Exchange::Failed(e.to_string())),
        Ok(Some(Ok(r))) => r,
    };
    match response.signature() {
        None => return Err(Exchange::Unsigned(response.metadata.response_code)),
        Some(record) => {
            if let Some(error) = record.data.error {
                return Err(Exchange::Refused(TsigRefusal::from_tsig(
                    error,
                    &record.data.other,
                    now,
                )));
            }
        }
    }
    verifier
        .verify(response.as_buffer())
        .map_err(|e| Exchange::Unverified(e.to_string()))
}

/// A response code as messages show it: its words and its number.
fn code_text(code: ResponseCode) -> String {
    format!("{code} ({})", u16::from(code))
}

/// Why the key could not be proved against the zone's primary.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeyProofError {
    #[error("{server} (the zone's primary) refused the TSIG signature ({}): {}", .refusal.code(), .refusal.explain(*.server, .key))]
    Refused {
        server: SocketAddr,
        refusal: TsigRefusal,
        key: KeyLabel,
    },
    #[error("{server} did not answer a query signed with the TSIG key within {}", humantime::format_duration(*after))]
    Timeout { server: SocketAddr, after: Duration },
    #[error("cannot ask {server} with the TSIG key: {reason}")]
    Failed { server: SocketAddr, reason: String },
    #[error("{server} answered {} to a query signed with {key} without signing its answer: check that {server}, the first of `servers`, is the zone's primary and has that key", code_text(*.code))]
    Unsigned {
        server: SocketAddr,
        code: ResponseCode,
        key: KeyLabel,
    },
    #[error("the signature of {server}'s answer does not verify with {key} ({reason}): something other than the server may be answering, or the clocks of this machine and the server differ (check NTP)")]
    Unverified {
        server: SocketAddr,
        reason: String,
        key: KeyLabel,
    },
    #[error("{server} accepted the TSIG key but answered {} for the SOA of {zone}: check that {server}, the first of `servers`, serves {zone} as its primary (updates go to it)", code_text(*.code))]
    Answered {
        server: SocketAddr,
        zone: String,
        code: ResponseCode,
    },
    #[error("{server} accepted the TSIG key but is not authoritative for {zone} (no AA flag): the first of `servers` must be the zone's primary (updates go to it)")]
    NotAuthoritative { server: SocketAddr, zone: String },
    #[error("{server} accepted the TSIG key but has no SOA record at {zone}: `zone` must be the apex of the zone the server serves")]
    NotApex { server: SocketAddr, zone: String },
    #[error("`{zone}` is not a valid DNS name")]
    BadZone { zone: String },
}

/// Proves `key` against `server`, the zone's primary, without changing
/// anything: one query for the SOA of `zone`, signed with the key. The
/// server must verify the signature (it answers BADKEY for a key name or
/// algorithm it does not have, BADSIG for another secret, BADTIME for a
/// clock out of the window), sign its answer with the same key (checked
/// here), and answer authoritatively with the zone's SOA.
///
/// A query cannot prove that the server's update policy lets the key
/// change the record: the compare-and-swap UPDATE of the switch is the
/// first message that does, and its refusal leaves the record as it was.
pub async fn prove_key(
    server: SocketAddr,
    zone: &str,
    key: &TsigKey,
    timeout: Duration,
) -> Result<(), KeyProofError> {
    let zone_name = Name::from_str(zone).map_err(|_| KeyProofError::BadZone {
        zone: zone.to_string(),
    })?;
    let mut message = Message::query();
    message.add_query(Query::query(zone_name.clone(), RecordType::SOA));
    message.metadata.recursion_desired = false;
    message
        .edns
        .get_or_insert_with(Edns::new)
        .set_max_payload(DEFAULT_MAX_PAYLOAD_LEN)
        .set_version(0);
    let label = || KeyLabel::of(key);
    let response = signed_exchange(server, message, key, timeout)
        .await
        .map_err(|e| match e {
            Exchange::Timeout => KeyProofError::Timeout {
                server,
                after: timeout,
            },
            Exchange::Refused(refusal) => KeyProofError::Refused {
                server,
                refusal,
                key: label(),
            },
            Exchange::Unsigned(code) => KeyProofError::Unsigned {
                server,
                code,
                key: label(),
            },
            Exchange::Unverified(reason) => KeyProofError::Unverified {
                server,
                reason,
                key: label(),
            },
            Exchange::Failed(reason) => KeyProofError::Failed { server, reason },
        })?;
    let code = response.metadata.response_code;
    if code != ResponseCode::NoError {
        return Err(KeyProofError::Answered {
            server,
            zone: zone.to_string(),
            code,
        });
    }
    if !response.metadata.authoritative {
        return Err(KeyProofError::NotAuthoritative {
            server,
            zone: zone.to_string(),
        });
    }
    let apex = response
        .answers
        .iter()
        .any(|r| r.record_type() == RecordType::SOA && r.name == zone_name);
    if !apex {
        return Err(KeyProofError::NotApex {
            server,
            zone: zone.to_string(),
        });
    }
    Ok(())
}

/// Why an update was not applied.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DnsUpdateError {
    #[error("{server} refused the update: {name} no longer holds {expected} (someone else changed it since it was read; nothing was changed)")]
    Changed {
        server: SocketAddr,
        name: String,
        expected: String,
    },
    #[error("{server} refused the TSIG signature of the update ({}), nothing was changed: {}{}", .refusal.code(), .refusal.explain(*.server, .key), policy_note(*.refusal, .name))]
    BadKey {
        server: SocketAddr,
        refusal: TsigRefusal,
        key: KeyLabel,
        name: String,
    },
    #[error("{server} refused the update ({}): check the server's update policy for {name}, and that {server}, the first of `servers`, is the zone's primary (updates go to it)", code_text(*.code))]
    Refused {
        server: SocketAddr,
        name: String,
        code: ResponseCode,
    },
    #[error("the answer of {server} to the update cannot be trusted ({reason}): it may or may not have been applied")]
    Unverified { server: SocketAddr, reason: String },
    #[error("no answer from {server} to the update within {}: it may or may not have been applied", humantime::format_duration(*after))]
    Timeout { server: SocketAddr, after: Duration },
    #[error("cannot send the update to {server}: {reason}")]
    Failed { server: SocketAddr, reason: String },
}

/// For an update refused with BADKEY: the key may be known but not allowed.
fn policy_note(refusal: TsigRefusal, name: &str) -> String {
    match refusal {
        TsigRefusal::BadKey => format!(
            "; or the server's update policy does not let this key change {name} (Knot answers BADKEY to an update its ACL denies the key)"
        ),
        _ => String::new(),
    }
}

fn rdata(address: IpAddr) -> RData {
    match address {
        IpAddr::V4(a) => RData::A(A(a)),
        IpAddr::V6(a) => RData::AAAA(AAAA(a)),
    }
}

fn rrset(name: &Name, addresses: &[IpAddr], ttl: u32) -> RecordSet {
    let rtype = addresses
        .first()
        .map(record_type_for)
        .unwrap_or(RecordType::A);
    let mut set = RecordSet::with_ttl(name.clone(), rtype, ttl);
    for a in addresses {
        set.insert(Record::from_rdata(name.clone(), ttl, rdata(*a)), 0);
    }
    set
}

/// One compare-and-swap replacement of an address record.
#[derive(Debug, Clone, Copy)]
pub struct Replace<'a> {
    /// The zone the record is in.
    pub zone: &'a str,
    /// The record's name.
    pub name: &'a str,
    /// What the record must hold now, exactly.
    pub expected: &'a [IpAddr],
    /// What it becomes.
    pub new: IpAddr,
    /// Its TTL.
    pub ttl: u32,
}

/// Sends `r` to `server` as one TSIG-signed UPDATE: only if the record holds
/// exactly `r.expected`, it becomes `r.new`. The answer counts only once its
/// signature verified with the key.
pub async fn replace(
    server: SocketAddr,
    r: Replace<'_>,
    key: &TsigKey,
    timeout: Duration,
) -> Result<(), DnsUpdateError> {
    let Replace {
        zone,
        name,
        expected,
        new,
        ttl,
    } = r;
    let failed = |reason: String| DnsUpdateError::Failed { server, reason };
    let zone_name = Name::from_str(zone).map_err(|e| failed(e.to_string()))?;
    let record_name = Name::from_str(name).map_err(|e| failed(e.to_string()))?;
    if !zone_name.zone_of(&record_name) {
        return Err(failed(format!("{name} is not inside the zone {zone}")));
    }
    let current = rrset(&record_name, expected, ttl);
    let replacement = rrset(&record_name, &[new], ttl);
    let message = update_message::compare_and_swap(current, replacement, zone_name, true);
    let response = signed_exchange(server, message, key, timeout)
        .await
        .map_err(|e| match e {
            Exchange::Timeout => DnsUpdateError::Timeout {
                server,
                after: timeout,
            },
            Exchange::Refused(refusal) => DnsUpdateError::BadKey {
                server,
                refusal,
                key: KeyLabel::of(key),
                name: name.to_string(),
            },
            Exchange::Unsigned(code) => DnsUpdateError::Unverified {
                server,
                reason: format!("it answered {} without signing it", code_text(code)),
            },
            Exchange::Unverified(reason) => DnsUpdateError::Unverified {
                server,
                reason: format!("its signature does not verify with the key: {reason}"),
            },
            Exchange::Failed(reason) => failed(reason),
        })?;
    match response.metadata.response_code {
        ResponseCode::NoError => Ok(()),
        ResponseCode::NXRRSet | ResponseCode::YXRRSet | ResponseCode::NXDomain => {
            Err(DnsUpdateError::Changed {
                server,
                name: name.to_string(),
                expected: expected
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
        code => Err(DnsUpdateError::Refused {
            server,
            name: name.to_string(),
            code,
        }),
    }
}

#[cfg(test)]
mod tests {
    //! The signed exchange against a fake server on the loopback, which
    //! answers each request as a test says: refusals of every kind, answers
    //! signed with the right or the wrong key, unsigned answers.

    use std::path::Path;

    use hickory_proto::op::MessageType;
    use hickory_proto::rr::rdata::tsig::{make_tsig_record, TSIG};
    use hickory_proto::rr::rdata::SOA;
    use hickory_proto::rr::TSigResponseContext;
    use tokio::net::UdpSocket;

    use super::*;
    use crate::config::tsig;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
    const OTHER: &str = "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItMTI=";

    fn key(secret: &str) -> TsigKey {
        tsig::parse(
            &format!("key \"update.\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};"),
            Path::new("/etc/baton/update.key"),
        )
        .unwrap()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// How the fake server answers.
    #[derive(Clone, Copy)]
    enum Fake {
        /// Authoritative, the zone's SOA, signed with `secret`.
        Signed { secret: &'static str, aa: bool },
        /// NOERROR without a TSIG record.
        Unsigned,
        /// NOTAUTH with an unsigned TSIG record carrying `error`, and `other`
        /// data (BADTIME: the server's time).
        Refuses {
            error: TsigError,
            server_time: Option<u64>,
        },
        /// A response code, signed with the right key.
        Code(ResponseCode),
        /// Authoritative, signed with the right key, but without the SOA
        /// (the name asked is not the zone's apex).
        NoSoa,
    }

    fn answer(request: &Message, fake: Fake) -> Vec<u8> {
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.message_type = MessageType::Response;
        response.queries = request.queries.clone();
        let request_tsig = request.signature().unwrap();
        let zone = request.queries[0].name().clone();
        let sign = |mut response: Message, secret: &str| {
            let signer = signer(&key(secret)).unwrap();
            let unsigned = response.to_vec().unwrap();
            let context = TSigResponseContext::new(
                request.metadata.id,
                now(),
                signer,
                request_tsig.data.mac.clone(),
                None,
            );
            response.set_signature(context.sign(&unsigned).unwrap());
            response.to_vec().unwrap()
        };
        match fake {
            Fake::Signed { secret, aa } => {
                response.metadata.authoritative = aa;
                response.answers.push(Record::from_rdata(
                    zone.clone(),
                    300,
                    RData::SOA(SOA::new(zone.clone(), zone, 1, 60, 30, 3600, 5)),
                ));
                sign(response, secret)
            }
            Fake::Unsigned => response.to_vec().unwrap(),
            Fake::Refuses { error, server_time } => {
                response.metadata.response_code = ResponseCode::NotAuth;
                let other = server_time
                    .map(|t| t.to_be_bytes()[2..].to_vec())
                    .unwrap_or_default();
                response.set_signature(Box::new(make_tsig_record(
                    request_tsig.name.clone(),
                    TSIG::new(
                        HickoryTsig::HmacSha256,
                        now(),
                        FUDGE,
                        Vec::new(),
                        request.metadata.id,
                        Some(error),
                        other,
                    ),
                )));
                response.to_vec().unwrap()
            }
            Fake::Code(code) => {
                response.metadata.response_code = code;
                response.metadata.authoritative = true;
                sign(response, SECRET)
            }
            Fake::NoSoa => {
                response.metadata.authoritative = true;
                sign(response, SECRET)
            }
        }
    }

    /// A fake server on the loopback answering every request with `fake`;
    /// its address. It also checks that each request is signed.
    async fn serve(fake: Fake) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (len, from) = socket.recv_from(&mut buf).await.unwrap();
                let request = Message::from_vec(&buf[..len]).unwrap();
                assert!(request.signature().is_some(), "the request is signed");
                let bytes = answer(&request, fake);
                socket.send_to(&bytes, from).await.unwrap();
            }
        });
        at
    }

    async fn prove(fake: Fake) -> Result<(), KeyProofError> {
        let at = serve(fake).await;
        prove_key(at, "example.test.", &key(SECRET), Duration::from_secs(2)).await
    }

    #[tokio::test]
    async fn a_signed_authoritative_answer_proves_the_key() {
        prove(Fake::Signed {
            secret: SECRET,
            aa: true,
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn each_refusal_comes_back_typed_and_says_what_to_check() {
        let e = prove(Fake::Refuses {
            error: TsigError::BadSig,
            server_time: None,
        })
        .await
        .unwrap_err();
        assert!(
            matches!(
                e,
                KeyProofError::Refused {
                    refusal: TsigRefusal::BadSig,
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains("BADSIG"), "{text}");
        assert!(text.contains("/etc/baton/update.key"), "{text}");
        assert!(!text.contains(SECRET), "never the secret: {text}");
        assert!(!text.contains("file an issue"), "{text}");

        let e = prove(Fake::Refuses {
            error: TsigError::BadKey,
            server_time: None,
        })
        .await
        .unwrap_err();
        assert!(
            matches!(
                e,
                KeyProofError::Refused {
                    refusal: TsigRefusal::BadKey,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("no key `update.` of algorithm hmac-sha256"),
            "{e}"
        );

        // The server's clock is 1000 s behind ours.
        let e = prove(Fake::Refuses {
            error: TsigError::BadTime,
            server_time: Some(now() - 1000),
        })
        .await
        .unwrap_err();
        let KeyProofError::Refused {
            refusal: TsigRefusal::BadTime { ahead: Some(ahead) },
            ..
        } = e
        else {
            panic!("{e:?}");
        };
        assert!((999..=1001).contains(&ahead), "{ahead}");
        assert!(e.to_string().contains("s ahead of the server's"), "{e}");
        assert!(e.to_string().contains("clocks"), "{e}");
    }

    #[tokio::test]
    async fn an_answer_that_does_not_prove_the_key_is_not_taken_for_a_proof() {
        let e = prove(Fake::Unsigned).await.unwrap_err();
        assert!(matches!(e, KeyProofError::Unsigned { .. }), "{e:?}");
        // Signed with another secret: not the server we share the key with.
        let e = prove(Fake::Signed {
            secret: OTHER,
            aa: true,
        })
        .await
        .unwrap_err();
        assert!(matches!(e, KeyProofError::Unverified { .. }), "{e:?}");
        assert!(!e.to_string().contains(SECRET) && !e.to_string().contains(OTHER));
        let e = prove(Fake::Signed {
            secret: SECRET,
            aa: false,
        })
        .await
        .unwrap_err();
        assert!(matches!(e, KeyProofError::NotAuthoritative { .. }), "{e:?}");
        let e = prove(Fake::Code(ResponseCode::Refused)).await.unwrap_err();
        assert!(
            matches!(
                e,
                KeyProofError::Answered {
                    code: ResponseCode::Refused,
                    ..
                }
            ),
            "{e:?}"
        );
        // Nobody there: a timeout, not a hang.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let e = prove_key(
            silent.local_addr().unwrap(),
            "example.test.",
            &key(SECRET),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, KeyProofError::Timeout { .. }), "{e:?}");
    }

    fn swap() -> Replace<'static> {
        const EXPECTED: &[IpAddr] = &[IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1))];
        Replace {
            zone: "example.test.",
            name: "app.example.test.",
            expected: EXPECTED,
            new: "192.0.2.2".parse().unwrap(),
            ttl: 5,
        }
    }

    #[tokio::test]
    async fn an_update_refused_for_its_signature_says_so_typed() {
        let at = serve(Fake::Refuses {
            error: TsigError::BadSig,
            server_time: None,
        })
        .await;
        let e = replace(at, swap(), &key(SECRET), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                DnsUpdateError::BadKey {
                    refusal: TsigRefusal::BadSig,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("refused the TSIG signature"), "{e}");
        assert!(!e.to_string().contains("file an issue"), "{e}");
        // BADKEY to an update may also be a policy that denies the key.
        let at = serve(Fake::Refuses {
            error: TsigError::BadKey,
            server_time: None,
        })
        .await;
        let e = replace(at, swap(), &key(SECRET), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("update policy"), "{e}");
    }

    #[tokio::test]
    async fn an_update_answer_is_believed_only_when_its_signature_verifies() {
        let at = serve(Fake::Code(ResponseCode::NoError)).await;
        replace(at, swap(), &key(SECRET), Duration::from_secs(2))
            .await
            .unwrap();
        let at = serve(Fake::Code(ResponseCode::NXRRSet)).await;
        let e = replace(at, swap(), &key(SECRET), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(e, DnsUpdateError::Changed { .. }), "{e:?}");
        let at = serve(Fake::Unsigned).await;
        let e = replace(at, swap(), &key(SECRET), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(e, DnsUpdateError::Unverified { .. }), "{e:?}");
        assert!(e.to_string().contains("may or may not"), "{e}");
    }

    #[test]
    fn addresses_are_published_by_family_and_read_back_from_an_answer() {
        assert_eq!(
            record_type_for(&"192.0.2.1".parse().unwrap()),
            RecordType::A
        );
        assert_eq!(
            record_type_for(&"2001:db8::1".parse().unwrap()),
            RecordType::AAAA
        );
        let a = Answer {
            values: vec![
                "192.0.2.1".into(),
                "web.example.test.".into(),
                "2001:db8::1".into(),
            ],
            ttl: Some(5),
        };
        assert_eq!(
            a.addresses(),
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn a_badtime_refusal_reads_the_servers_clock_from_the_other_data() {
        let at = |t: u64| t.to_be_bytes()[2..].to_vec();
        assert_eq!(
            TsigRefusal::from_tsig(TsigError::BadTime, &at(1_000), 1_030),
            TsigRefusal::BadTime { ahead: Some(30) }
        );
        assert_eq!(
            TsigRefusal::from_tsig(TsigError::BadTime, &at(1_000), 900),
            TsigRefusal::BadTime { ahead: Some(-100) }
        );
        // The largest 48-bit time does not overflow.
        let max = (1u64 << 48) - 1;
        assert_eq!(
            TsigRefusal::from_tsig(TsigError::BadTime, &at(max), 0),
            TsigRefusal::BadTime {
                ahead: Some(-(max as i64))
            }
        );
        // Other data of another length is no time.
        for other in [vec![], vec![0u8; 5], vec![0u8; 8]] {
            assert_eq!(
                TsigRefusal::from_tsig(TsigError::BadTime, &other, 1),
                TsigRefusal::BadTime { ahead: None }
            );
        }
        assert_eq!(
            TsigRefusal::from_tsig(TsigError::BadTrunc, &[], 1),
            TsigRefusal::Other(22)
        );
        assert_eq!(
            TsigRefusal::from_tsig(TsigError::Unknown(99), &[], 1),
            TsigRefusal::Other(99)
        );
    }

    #[test]
    fn each_refusal_is_named_and_explained_without_the_secret() {
        let label = KeyLabel::of(&key(SECRET));
        assert_eq!(
            label.to_string(),
            "key `update.` (hmac-sha256) from /etc/baton/update.key"
        );
        let server: SocketAddr = "192.0.2.53:53".parse().unwrap();
        let cases = [
            (TsigRefusal::BadKey, "BADKEY", "it has no key `update.`"),
            (TsigRefusal::BadSig, "BADSIG", "with another secret than"),
            (
                TsigRefusal::BadTime { ahead: Some(-7) },
                "BADTIME",
                "(this machine's clock is 7 s behind the server's)",
            ),
            (
                TsigRefusal::BadTime { ahead: None },
                "BADTIME",
                "more than 300 s away from the server's clock; check the clocks",
            ),
            (
                TsigRefusal::Other(22),
                "TSIG error 22",
                "check /etc/baton/update.key against the key `update.` (hmac-sha256)",
            ),
        ];
        for (refusal, code, says) in cases {
            assert_eq!(refusal.code(), code);
            let text = refusal.explain(server, &label);
            assert!(text.contains(says), "{refusal:?}: {text}");
            assert!(!text.contains(SECRET), "{text}");
        }
        assert!(!TsigRefusal::BadTime { ahead: None }
            .explain(server, &label)
            .contains("ahead"));
        assert!(policy_note(TsigRefusal::BadKey, "www.").contains("update policy"));
        assert_eq!(policy_note(TsigRefusal::BadSig, "www."), "");
        assert_eq!(code_text(ResponseCode::Refused), "Query Refused (5)");
    }

    #[test]
    fn a_record_set_holds_every_address_of_its_family() {
        let name = Name::from_str("app.example.test.").unwrap();
        let v4: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()];
        let set = rrset(&name, &v4, 30);
        assert_eq!(set.record_type(), RecordType::A);
        assert_eq!(set.ttl(), 30);
        let got: Vec<String> = set
            .records_without_rrsigs()
            .map(|r| rdata_text(&r.data))
            .collect();
        assert_eq!(got, ["192.0.2.1", "192.0.2.2"]);
        let set = rrset(&name, &["2001:db8::1".parse().unwrap()], 5);
        assert_eq!(set.record_type(), RecordType::AAAA);
        assert!(rrset(&name, &[], 5).is_empty());
    }

    #[tokio::test]
    async fn a_name_outside_the_zone_is_refused_before_anything_is_sent() {
        // Nobody answers there: refusing must not wait for it.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = silent.local_addr().unwrap();
        let mut r = swap();
        r.name = "app.other.test.";
        let e = replace(at, r, &key(SECRET), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(e, DnsUpdateError::Failed { ref reason, .. } if reason.contains("not inside the zone example.test.")),
            "{e:?}"
        );
        r.zone = "bad..zone";
        assert!(matches!(
            replace(at, r, &key(SECRET), Duration::from_secs(5)).await,
            Err(DnsUpdateError::Failed { .. })
        ));
        let e = prove_key(at, "bad..zone", &key(SECRET), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            KeyProofError::BadZone {
                zone: "bad..zone".into()
            }
        );
    }

    #[tokio::test]
    async fn the_update_is_a_compare_and_swap_of_the_record_in_its_zone() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = socket.local_addr().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let (len, from) = socket.recv_from(&mut buf).await.unwrap();
            let request = Message::from_vec(&buf[..len]).unwrap();
            let bytes = answer(&request, Fake::Code(ResponseCode::NoError));
            socket.send_to(&bytes, from).await.unwrap();
            tx.send(request).unwrap();
        });
        replace(at, swap(), &key(SECRET), Duration::from_secs(2))
            .await
            .unwrap();
        let m = rx.recv().await.unwrap();
        assert_eq!(m.metadata.op_code, hickory_proto::op::OpCode::Update);
        assert!(!m.metadata.recursion_desired);
        // Zone section: the zone's SOA.
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].name().to_string(), "example.test.");
        assert_eq!(m.queries[0].query_type(), RecordType::SOA);
        let text = |r: &Record| (r.name.to_string(), r.dns_class, rdata_text(&r.data));
        // Prerequisite: the record holds exactly the expected address.
        let pre: Vec<_> = m.answers.iter().map(text).collect();
        assert_eq!(
            pre,
            [(
                "app.example.test.".to_string(),
                hickory_proto::rr::DNSClass::IN,
                "192.0.2.1".to_string()
            )]
        );
        // Update: delete that value, add the new one with the TTL.
        let updates: Vec<_> = m.authorities.iter().map(text).collect();
        assert_eq!(
            updates,
            [
                (
                    "app.example.test.".to_string(),
                    hickory_proto::rr::DNSClass::NONE,
                    "192.0.2.1".to_string()
                ),
                (
                    "app.example.test.".to_string(),
                    hickory_proto::rr::DNSClass::IN,
                    "192.0.2.2".to_string()
                ),
            ]
        );
        assert_eq!(m.authorities[1].ttl, 5);
        assert_eq!(
            m.signature().unwrap().name.to_string(),
            "update.",
            "signed with the key's name"
        );
    }

    #[tokio::test]
    async fn each_refusal_of_a_signed_update_is_told_apart() {
        for code in [ResponseCode::YXRRSet, ResponseCode::NXDomain] {
            let at = serve(Fake::Code(code)).await;
            let e = replace(at, swap(), &key(SECRET), Duration::from_secs(2))
                .await
                .unwrap_err();
            assert!(
                matches!(e, DnsUpdateError::Changed { ref expected, .. } if expected == "192.0.2.1"),
                "{code:?}: {e:?}"
            );
            assert!(e.to_string().contains("nothing was changed"), "{e}");
        }
        let at = serve(Fake::Code(ResponseCode::Refused)).await;
        let e = replace(at, swap(), &key(SECRET), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                DnsUpdateError::Refused {
                    code: ResponseCode::Refused,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("(Query Refused (5))"), "{e}");
        // Signed with another secret: may or may not have been applied.
        let at = serve(Fake::Signed {
            secret: OTHER,
            aa: true,
        })
        .await;
        let e = replace(at, swap(), &key(SECRET), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(e, DnsUpdateError::Unverified { .. }), "{e:?}");
        // Nobody answers: a timeout that says the same.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let e = replace(
            silent.local_addr().unwrap(),
            swap(),
            &key(SECRET),
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, DnsUpdateError::Timeout { .. }), "{e:?}");
        assert!(e.to_string().contains("may or may not"), "{e}");
    }

    #[tokio::test]
    async fn a_key_proved_on_a_name_that_is_not_the_apex_is_not_proved() {
        let e = prove(Fake::NoSoa).await.unwrap_err();
        assert!(matches!(e, KeyProofError::NotApex { .. }), "{e:?}");
        assert!(e.to_string().contains("must be the apex"), "{e}");
    }

    /// An unsigned DNS server on the loopback: each request is answered by
    /// `respond` and sent to the receiver.
    async fn plain(
        respond: fn(&Message) -> Message,
    ) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Message>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = socket.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let request = Message::from_vec(&buf[..len]).unwrap();
                let mut response = respond(&request);
                response.metadata.id = request.metadata.id;
                response.metadata.message_type = MessageType::Response;
                response.queries = request.queries.clone();
                socket
                    .send_to(&response.to_vec().unwrap(), from)
                    .await
                    .unwrap();
                let _ = tx.send(request);
            }
        });
        (at, rx)
    }

    fn records(request: &Message, aa: bool, code: ResponseCode) -> Message {
        let mut m = Message::response(request.metadata.id, request.metadata.op_code);
        m.metadata.authoritative = aa;
        m.metadata.response_code = code;
        if code == ResponseCode::NoError {
            let name = request.queries[0].name().clone();
            for (addr, ttl) in [("192.0.2.2", 60), ("192.0.2.1", 30)] {
                m.answers.push(Record::from_rdata(
                    name.clone(),
                    ttl,
                    RData::A(A(addr.parse().unwrap())),
                ));
            }
            m.answers.push(Record::from_rdata(
                name,
                5,
                RData::AAAA(AAAA("2001:db8::1".parse().unwrap())),
            ));
        }
        m
    }

    #[tokio::test]
    async fn a_query_asks_without_recursion_and_reads_an_authoritative_answer() {
        let (at, mut rx) = plain(|r| records(r, true, ResponseCode::NoError)).await;
        let a = query(
            at,
            "app.example.test.",
            RecordType::A,
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        // Sorted, only the type asked, the smallest TTL among them.
        assert_eq!(
            a,
            Answer {
                values: vec!["192.0.2.1".into(), "192.0.2.2".into()],
                ttl: Some(30),
            }
        );
        let request = rx.recv().await.unwrap();
        assert!(!request.metadata.recursion_desired);
        assert!(request.edns.is_some());
        assert_eq!(request.queries[0].query_type(), RecordType::A);
    }

    #[tokio::test]
    async fn a_query_answer_that_is_empty_refused_or_not_authoritative() {
        let t = Duration::from_secs(2);
        let (at, _rx) = plain(|r| records(r, true, ResponseCode::NXDomain)).await;
        assert_eq!(
            query(at, "gone.example.test.", RecordType::A, t).await,
            Ok(Answer {
                values: vec![],
                ttl: None
            })
        );
        let (at, _rx) = plain(|r| records(r, false, ResponseCode::NoError)).await;
        let e = query(at, "app.example.test.", RecordType::A, t)
            .await
            .unwrap_err();
        assert!(matches!(e, DnsQueryError::NotAuthoritative { .. }), "{e:?}");
        assert!(e.to_string().contains("lacks the AA flag"), "{e}");
        for code in [ResponseCode::Refused, ResponseCode::ServFail] {
            let (at, _rx) = plain(if code == ResponseCode::Refused {
                |r| records(r, true, ResponseCode::Refused)
            } else {
                |r| records(r, true, ResponseCode::ServFail)
            })
            .await;
            let e = query(at, "app.example.test.", RecordType::A, t)
                .await
                .unwrap_err();
            assert!(
                matches!(e, DnsQueryError::Refused { code: ref c, .. } if *c == code.to_string()),
                "{code:?}: {e:?}"
            );
        }
        let e = query(at_nowhere().await, "bad..name", RecordType::A, t)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            DnsQueryError::BadName {
                name: "bad..name".into()
            }
        );
    }

    async fn at_nowhere() -> SocketAddr {
        UdpSocket::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout_within_the_bound() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = silent.local_addr().unwrap();
        let started = std::time::Instant::now();
        let e = query(
            at,
            "app.example.test.",
            RecordType::A,
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e,
            DnsQueryError::Timeout {
                server: at,
                after: Duration::from_millis(100)
            }
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
