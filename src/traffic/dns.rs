//! The `dns` method: one TSIG-signed UPDATE replacing the record only if
//! it still points at the old holder (compare-and-swap on the zone's
//! primary, the first of `servers`), then every authoritative server is
//! asked until all serve the new address. With `switch_ttl`, the TTL is
//! lowered one old TTL ahead first, so the drain is short.

use std::net::{IpAddr, SocketAddr};

use super::Switched;
use crate::config::{Dns, Host};
use crate::core::op::{Op, Rtype, Update, WaitFor};
use crate::exec::{Exec, Failed, OpError, Value, World};
use crate::io::dns::Answer;

/// The key as operations name it: its name and algorithm, never its secret.
fn key(d: &Dns) -> String {
    format!("{} ({})", d.tsig_key.name, d.tsig_key.algorithm.name())
}

async fn query<W: World>(
    x: &mut Exec<'_, W>,
    server: SocketAddr,
    d: &Dns,
    rtype: Rtype,
) -> Result<Answer, OpError> {
    let op = Op::Query {
        server,
        name: d.name.clone(),
        rtype,
    };
    match x.perform(op.clone()).await? {
        Value::Answer(a) => Ok(a),
        _ => Err(OpError::Unsupported(format!("{op:?}"))),
    }
}

/// Every server's addresses for the name, or why it gave none.
pub async fn answers<W: World>(
    x: &mut Exec<'_, W>,
    d: &Dns,
) -> Vec<(SocketAddr, Result<Vec<IpAddr>, String>)> {
    let rtype = Rtype::of(&x.pair.hosts[0].address);
    let ops = d
        .servers
        .iter()
        .map(|s| Op::Query {
            server: *s,
            name: d.name.clone(),
            rtype,
        })
        .collect();
    let results = x.perform_all(ops).await;
    d.servers
        .iter()
        .zip(results)
        .map(|(s, r)| {
            let addrs = match r {
                Ok(Value::Answer(a)) => Ok(a.addresses()),
                Ok(other) => Err(format!("unexpected {other:?}")),
                Err(e) => Err(e.to_string()),
            };
            (*s, addrs)
        })
        .collect()
}

async fn update<W: World>(
    x: &mut Exec<'_, W>,
    d: &Dns,
    expected: IpAddr,
    new: IpAddr,
    ttl: u32,
) -> Result<(), OpError> {
    x.perform(Op::Update(Update {
        server: d.servers[0],
        zone: d.zone.clone(),
        name: d.name.clone(),
        rtype: Rtype::of(&new),
        expected: vec![expected],
        new,
        ttl,
        key: key(d),
    }))
    .await
    .map(|_| ())
}

/// Waits until every server serves `address` (with `ttl`, when given); the
/// milliseconds it took.
async fn propagated<W: World>(
    x: &mut Exec<'_, W>,
    d: &Dns,
    address: IpAddr,
    ttl: Option<u32>,
) -> Result<u128, OpError> {
    match x
        .perform(Op::Propagate {
            servers: d.servers.clone(),
            name: d.name.clone(),
            rtype: Rtype::of(&address),
            address,
            ttl,
            within: d.propagation_timeout,
        })
        .await?
    {
        Value::Propagated(ms) => Ok(ms),
        other => Err(OpError::Unsupported(format!("{other:?}"))),
    }
}

/// Moves the record from `from` to `to`.
pub async fn switch<W: World>(
    x: &mut Exec<'_, W>,
    d: &Dns,
    from: &Host,
    to: &Host,
) -> Result<Switched, Failed> {
    let rtype = Rtype::of(&to.address);
    // The update goes to the first server, the zone's primary; the others
    // get it by zone transfer. The record (and its TTL) is read there.
    let primary = d.servers[0];
    let current = query(x, primary, d, rtype)
        .await
        .map_err(|e| Failed(format!("the primary server {primary}: {e}")))?;
    let current_ttl = current.ttl.unwrap_or(300);
    let addresses = current.addresses();
    if addresses == vec![to.address] {
        // A resumed run, or a switch back after a switch whose update never
        // landed: only the other servers may still have to follow.
        let ms = propagated(x, d, to.address, None).await.map_err(|e| {
            Failed(format!(
                "{} already pointed at {} on the primary server, but {e}",
                d.name, to.name
            ))
        })?;
        return Ok(Switched {
            detail: format!(
                "{} already pointed at {} ({}) on the primary server; all {} server(s) serve it after {ms} ms",
                d.name,
                to.name,
                to.address,
                d.servers.len()
            ),
            ttl: Some(current_ttl),
            announced: None,
        });
    }
    if addresses != vec![from.address] {
        return Err(Failed(format!(
            "{} points at {:?} on {primary}, not at {} ({}): not switching",
            d.name, current.values, from.name, from.address
        )));
    }
    let mut lowered = String::new();
    let mut drain_ttl = current_ttl;
    // Lowering the TTL one old TTL ahead: once the old TTL has passed, no
    // cache holds the old answer for longer than the lowered one, so the
    // drain after the switch is short.
    if let Some(low) = d.switch_ttl.filter(|low| *low < current_ttl) {
        update(x, d, from.address, from.address, low)
            .await
            .map_err(|e| Failed(format!("lowering the TTL: {e}")))?;
        // The old TTL counts from when every server gives the lowered one
        // (a secondary takes it a moment later, by transfer).
        if let Err(e) = propagated(x, d, from.address, Some(low)).await {
            let note = restore_ttl(x, d, from, current_ttl).await;
            return Err(Failed(format!(
                "the lowered TTL was accepted, but {e}{note}"
            )));
        }
        let _ = x
            .perform(Op::Wait {
                duration: std::time::Duration::from_secs(u64::from(current_ttl)),
                reason: WaitFor::LoweredTtl,
            })
            .await;
        lowered = format!(" (TTL lowered from {current_ttl}s to {low}s {current_ttl}s ahead)");
        drain_ttl = low;
    }
    // The new record gets the normal TTL straight away: it is the right answer.
    let ttl = d.ttl.unwrap_or(current_ttl);
    if let Err(e) = update(x, d, from.address, to.address, ttl).await {
        let note = if lowered.is_empty() {
            String::new()
        } else {
            restore_ttl(x, d, from, current_ttl).await
        };
        return Err(Failed(format!("{e}{note}")));
    }
    x.world.crash_point("dns-after-update");
    let ms = propagated(x, d, to.address, None)
        .await
        .map_err(|e| Failed(format!("the update was accepted, but {e}")))?;
    Ok(Switched {
        detail: format!(
            "{} now points at {} ({}) on all {} server(s) after {ms} ms, TTL {ttl}s{lowered}",
            d.name,
            to.name,
            to.address,
            d.servers.len(),
        ),
        ttl: Some(drain_ttl),
        announced: None,
    })
}

/// After a switch that lowered the record's TTL and then failed with the
/// record still on `from`: puts the TTL back (compare-and-swap on the
/// address), so the lowered TTL does not become the record's normal one.
/// A note for the step's detail.
async fn restore_ttl<W: World>(x: &mut Exec<'_, W>, d: &Dns, from: &Host, ttl: u32) -> String {
    match update(x, d, from.address, from.address, ttl).await {
        Ok(()) => format!("; the TTL was put back to {ttl}s"),
        Err(e) => format!("; the TTL could not be put back to {ttl}s: {e}"),
    }
}

/// The one address the zone's primary gives for the name.
pub async fn resolve<W: World>(x: &mut Exec<'_, W>, d: &Dns, to: &Host) -> Result<IpAddr, Failed> {
    let answer = query(x, d.servers[0], d, Rtype::of(&to.address))
        .await
        .map_err(|e| Failed(e.to_string()))?;
    match answer.addresses().as_slice() {
        [a] => Ok(*a),
        other => Err(Failed(format!(
            "{} resolves to {other:?}, not to one address",
            d.name
        ))),
    }
}

/// Waits out the record's TTL (`ttl` from the switch, else asked of the
/// zone's primary, else 300 s).
pub async fn drain<W: World>(
    x: &mut Exec<'_, W>,
    d: &Dns,
    from: &Host,
    to: &Host,
    ttl: Option<u32>,
) -> Result<String, Failed> {
    let ttl = match ttl {
        Some(t) => t,
        None => query(x, d.servers[0], d, Rtype::of(&to.address))
            .await
            .ok()
            .and_then(|a| a.ttl)
            .unwrap_or(300),
    };
    let _ = x
        .perform(Op::Wait {
            duration: std::time::Duration::from_secs(u64::from(ttl)),
            reason: WaitFor::Drain,
        })
        .await;
    Ok(format!(
        "waited the record's TTL ({ttl}s): caches no longer send clients to {}",
        from.name
    ))
}
