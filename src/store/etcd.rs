//! The etcd store (cargo feature `etcd`): not written yet.

use super::{Store, StoreError};
use crate::config::EtcdStore;

/// The process's store on the cluster `settings` names.
pub fn shared(_settings: &EtcdStore) -> Result<Store, StoreError> {
    Err(StoreError::NotBuilt)
}
