//! The DNS adapter (Hickory): asks one authoritative server directly (no
//! recursion, no cache) what it serves for a name, and says whether the
//! answer really was authoritative.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::DnsHandle;
use hickory_net::{DnsError, NetError};
use hickory_proto::op::{DnsRequestOptions, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

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
