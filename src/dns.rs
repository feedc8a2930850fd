//! The DNS adapter (Hickory): asks one authoritative server directly (no
//! recursion, no cache) what it serves for a name, and says whether the
//! answer really was authoritative; sends one TSIG-signed RFC 2136 UPDATE
//! that replaces a record only if it still holds the expected value
//! (compare-and-swap, delete and add in the same message).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::DnsHandle;
use hickory_net::{DnsError, NetError};
use hickory_proto::op::{DnsRequestOptions, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm as HickoryTsig;
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

/// Why an update was not applied.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DnsUpdateError {
    #[error("{server} refused the update: {name} no longer holds {expected} (someone else changed it since it was read; nothing was changed)")]
    Changed {
        server: SocketAddr,
        name: String,
        expected: String,
    },
    #[error("{server} refused the TSIG signature ({code}): check that {key} holds the key the server has for updates, and that {server}, the first of `servers`, is the zone's primary (updates go to it)")]
    BadKey {
        server: SocketAddr,
        code: String,
        key: String,
    },
    #[error("{server} refused the update ({code}): check the server's update policy for {name}, and that {server}, the first of `servers`, is the zone's primary (updates go to it)")]
    Refused {
        server: SocketAddr,
        name: String,
        code: String,
    },
    #[error("no answer from {server} to the update within {}: it may or may not have been applied", humantime::format_duration(*after))]
    Timeout { server: SocketAddr, after: Duration },
    #[error("cannot send the update to {server}: {reason}")]
    Failed { server: SocketAddr, reason: String },
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

fn signer(key: &TsigKey) -> Result<TSigner, String> {
    let algorithm = match key.algorithm {
        TsigAlgorithm::HmacSha256 => HickoryTsig::HmacSha256,
        TsigAlgorithm::HmacSha384 => HickoryTsig::HmacSha384,
        TsigAlgorithm::HmacSha512 => HickoryTsig::HmacSha512,
    };
    let name = Name::from_str(&key.name)
        .map_err(|e| format!("the TSIG key name `{}` is not a DNS name: {e}", key.name))?;
    TSigner::new(key.secret().to_vec(), algorithm, name, 300).map_err(|e| e.to_string())
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
/// exactly `r.expected`, it becomes `r.new`.
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
    let signer = signer(key).map_err(failed)?;
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(timeout))
        .with_signer(Some(signer))
        .build();
    let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let bg = tokio::spawn(bg);
    let current = rrset(&record_name, expected, ttl);
    let replacement = rrset(&record_name, &[new], ttl);
    let result = tokio::time::timeout(
        timeout + Duration::from_millis(200),
        client.compare_and_swap(current, replacement, zone_name),
    )
    .await;
    bg.abort();
    let shown_expected = expected
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let code = match result {
        Err(_) => {
            return Err(DnsUpdateError::Timeout {
                server,
                after: timeout,
            })
        }
        Ok(Ok(response)) => response.metadata.response_code,
        Ok(Err(NetError::Timeout)) => {
            return Err(DnsUpdateError::Timeout {
                server,
                after: timeout,
            })
        }
        Ok(Err(NetError::Dns(DnsError::ResponseCode(code)))) => code,
        Ok(Err(e)) => {
            let text = e.to_string();
            if text.contains("BADSIG")
                || text.contains("BADKEY")
                || text.contains("NotAuth")
                || text.contains("tsig")
                || text.contains("TSIG")
            {
                return Err(DnsUpdateError::BadKey {
                    server,
                    code: text,
                    key: key.file.display().to_string(),
                });
            }
            return Err(failed(text));
        }
    };
    match code {
        ResponseCode::NoError => Ok(()),
        ResponseCode::NXRRSet | ResponseCode::YXRRSet | ResponseCode::NXDomain => {
            Err(DnsUpdateError::Changed {
                server,
                name: name.to_string(),
                expected: shown_expected,
            })
        }
        ResponseCode::NotAuth
        | ResponseCode::BADSIG
        | ResponseCode::BADKEY
        | ResponseCode::BADTIME => Err(DnsUpdateError::BadKey {
            server,
            code: code.to_string(),
            key: key.file.display().to_string(),
        }),
        other => Err(DnsUpdateError::Refused {
            server,
            name: name.to_string(),
            code: other.to_string(),
        }),
    }
}
