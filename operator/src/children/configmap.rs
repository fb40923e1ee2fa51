//! The job ConfigMap: the SQL script the coordinator reads from `/etc/weir/job/job.sql`, written
//! from `job.sql` or copied from `job.sqlConfigMap` when a deployment starts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::{Component, JOB_FILE, Names, Owner, metadata};

/// The job ConfigMap holding `sql`.
pub fn config_map(owner: &Owner, sql: &str) -> ConfigMap {
    ConfigMap {
        metadata: metadata(owner, &Names::of(&owner.name).config_map, Component::Job),
        data: Some(BTreeMap::from([(JOB_FILE.to_owned(), sql.to_owned())])),
        ..ConfigMap::default()
    }
}
