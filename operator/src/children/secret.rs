//! The token Secret: a random token, created once per FlinkJob and never rewritten (a new token
//! would lock the operator out of a running coordinator), mounted into the coordinator and the
//! workers and read by the operator to call the control API.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use rand::Rng;

use super::{Component, Names, Owner, TOKEN_KEY, metadata};

/// A new token: 32 random bytes, hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token Secret holding `token`.
pub fn secret(owner: &Owner, token: &str) -> Secret {
    Secret {
        metadata: metadata(owner, &Names::of(&owner.name).secret, Component::Job),
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            TOKEN_KEY.to_owned(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// The token held by a Secret, if any.
pub fn token_of(secret: &Secret) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(TOKEN_KEY)?;
    let token = String::from_utf8_lossy(&bytes.0).trim().to_owned();
    (!token.is_empty()).then_some(token)
}
