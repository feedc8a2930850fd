//! Changes: the content hash that identifies a change, and applying or
//! rolling one back on a host. Applying: uploads first, each keeping the
//! file it replaces as `PATH.baton-prev`, then the steps in order, stopping
//! at the first failure. Rolling back: each upload put back (last first,
//! only while the file still holds what was uploaded: `core::restore`),
//! then the rollback steps in order. Applying first checks that the change
//! still has the hash the run began with (its start record's): a change
//! edited during a run is not applied under the old hash, and each upload
//! is sent only if its content still has the SHA-256 the hash was taken
//! over. Rolling back, an undo, goes on with the change as configured: the
//! uploads are put back only while the host's file is still what was
//! uploaded.

use sha2::{Digest, Sha256};

use crate::config::{Change, Upload};
use crate::core::op::{Op, Remote};
use crate::core::restore;
use crate::exec::{output, succeeded, Exec, Failed, World};

/// The change's content hash: its label, steps, rollback steps, and every
/// upload's destination, mode and content. The first 16 hex digits.
pub fn hash(change: &Change) -> std::io::Result<String> {
    hashed(change).map(|(hash, _)| hash)
}

/// The change's hash and each upload's SHA-256, from one reading of the
/// upload files.
fn hashed(change: &Change) -> std::io::Result<(String, Vec<String>)> {
    let mut shas = Vec::new();
    let mut h = Sha256::new();
    let mut field = |tag: &str, bytes: &[u8]| {
        h.update(tag.as_bytes());
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field("label", change.label.as_bytes());
    for s in &change.steps {
        field("step", s.as_bytes());
    }
    for s in &change.rollback {
        field("rollback", s.as_bytes());
    }
    for u in &change.upload {
        let content = crate::io::readfile::bytes(&u.from, crate::io::readfile::UPLOAD)?;
        field("to", u.to.as_bytes());
        field("mode", &u.mode.to_be_bytes());
        field("content", &content);
        shas.push(sha256_hex(&content));
    }
    let digest = h.finalize();
    let hash = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok((hash, shas))
}

/// Applies a change on `host`: each upload (keeping the file it replaces),
/// then the steps, stopping at the first failure. `began` is the change's
/// hash when the run began (`None`: no record of it, as in `plan`).
pub async fn apply<W: World>(
    x: &mut Exec<'_, W>,
    host: &str,
    change: &Change,
    began: Option<&str>,
) -> Result<String, Failed> {
    let (owner, shas) = owner(change, began, host)?;
    for (u, sha256) in change.upload.iter().zip(shas) {
        x.remote_ok(
            host,
            Remote::KeepPrevious {
                path: u.to.clone(),
                change: owner.clone(),
                sha256: sha256.clone(),
            },
            &format!("keeping the previous {}", u.to),
        )
        .await?;
        let op = Op::Upload {
            host: host.to_string(),
            from: u.from.clone(),
            to: u.to.clone(),
            mode: u.mode,
            sha256,
        };
        let out = output(&op, x.perform(op.clone()).await);
        succeeded(&format!("uploading {}", u.to), out)?;
    }
    run_steps(x, host, &change.steps).await?;
    Ok(format!(
        "{} upload(s), {} step(s)",
        change.upload.len(),
        change.steps.len()
    ))
}

/// The SHA-256 of an upload's content, lower-case hex (what a rollback
/// compares the host's file with).
pub fn upload_sha256(upload: &Upload) -> std::io::Result<String> {
    let bytes = crate::io::readfile::bytes(&upload.from, crate::io::readfile::UPLOAD)?;
    Ok(sha256_hex(&bytes))
}

/// The SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The change's hash, which owns what its uploads keep, and each upload's
/// SHA-256 as it was hashed; refused when it is not the hash the run began
/// with (the change or one of its files was edited since): nothing of it
/// is done on `host`.
fn owner(
    change: &Change,
    began: Option<&str>,
    host: &str,
) -> Result<(String, Vec<String>), Failed> {
    let (now, shas) =
        hashed(change).map_err(|e| Failed(format!("cannot hash change {}: {e}", change.name)))?;
    match began {
        Some(was) if was != now => Err(Failed(format!(
            "change {name} was edited during the run (hash {was} when it began, {now} now): nothing of it was done on {host}; a run applies only the change it began with (apply the edited one in a run of its own)",
            name = change.name
        ))),
        _ => Ok((now, shas)),
    }
}

fn sha_of(u: &Upload) -> Result<String, Failed> {
    upload_sha256(u).map_err(|e| Failed(format!("cannot read {}: {e}", u.from.display())))
}

/// Rolls a change back on `host`: puts its uploads back (the last first),
/// then runs its rollback steps.
pub async fn rollback<W: World>(
    x: &mut Exec<'_, W>,
    host: &str,
    change: &Change,
) -> Result<String, Failed> {
    if !change.reversible() {
        return Ok(
            "the change has no rollback steps and no uploads; the host keeps it".to_string(),
        );
    }
    let (owner, _) = owner(change, None, host)?;
    let mut left = Vec::new();
    for u in change.upload.iter().rev() {
        let out = x
            .remote_ok(
                host,
                Remote::RestorePrevious {
                    path: u.to.clone(),
                    change: owner.clone(),
                    sha256: sha_of(u)?,
                },
                &format!("putting back {}", u.to),
            )
            .await?;
        if restore::Restored::parse(&out.stdout_text()) == restore::Restored::Left {
            left.push(u.to.as_str());
        }
    }
    run_steps(x, host, &change.rollback).await?;
    let uploads = change.upload.len();
    let back = if left.is_empty() {
        format!("{uploads} upload(s) put back")
    } else {
        format!(
            "{} of {uploads} upload(s) put back ({} left as it is: see the step's output)",
            uploads - left.len(),
            left.join(", ")
        )
    };
    Ok(format!(
        "{back}, {} rollback step(s)",
        change.rollback.len()
    ))
}

async fn run_steps<W: World>(
    x: &mut Exec<'_, W>,
    host: &str,
    steps: &[String],
) -> Result<(), Failed> {
    for step in steps {
        x.remote_ok(host, Remote::Shell(step.clone()), &format!("`{step}`"))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(dir: &std::path::Path, content: &str) -> Change {
        let from = dir.join("f");
        std::fs::write(&from, content).unwrap();
        Change {
            name: "c".into(),
            label: "label".into(),
            upload: vec![Upload {
                from,
                to: "/x".into(),
                mode: 0o644,
            }],
            steps: vec!["a".into()],
            rollback: vec![],
        }
    }

    #[test]
    fn the_hash_follows_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let a = hash(&change(dir.path(), "one")).unwrap();
        assert_eq!(a.len(), 16);
        assert_eq!(a, hash(&change(dir.path(), "one")).unwrap());
        assert_ne!(a, hash(&change(dir.path(), "two")).unwrap());
        let mut c = change(dir.path(), "one");
        c.steps = vec!["a".into(), "b".into()];
        assert_ne!(a, hash(&c).unwrap());
        // Step boundaries matter: ["ab"] is not ["a", "b"].
        let mut d = change(dir.path(), "one");
        d.steps = vec!["ab".into()];
        assert_ne!(hash(&c).unwrap(), hash(&d).unwrap());
    }
}
