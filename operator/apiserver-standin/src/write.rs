//! Create, replace and patch (including server-side apply), with the API server's rules: names and
//! generateName, 409 on existing names and stale resourceVersions, generation bumped only on
//! changes outside metadata (and status), `.status` reachable only through `/status` for kinds
//! with that subresource, no-op writes that keep the resourceVersion, and an object whose last
//! finalizer goes while it is being deleted disappearing.

use serde_json::Value;

use crate::{
    apply::{self, Managers},
    delete,
    error::Error,
    meta::{self, meta_str, set_meta},
    patch::{self, PatchType},
    registry::KindInfo,
    store::{ObjectKey, State},
};

/// Which part of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The main resource: everything but `.status` when the kind has a status subresource.
    Main,
    /// The `/status` subresource: only `.status`.
    Status,
}

impl Scope {
    pub fn of(subresource: Option<&str>) -> Result<Self, Error> {
        match subresource {
            None => Ok(Scope::Main),
            Some("status") => Ok(Scope::Status),
            Some(other) => Err(Error::NotFound(format!("subresource {other:?} not found"))),
        }
    }
}

/// The key an object of this kind gets in this namespace.
pub(crate) fn key_of(
    info: &KindInfo,
    namespace: Option<&str>,
    name: &str,
) -> Result<ObjectKey, Error> {
    let namespace = if info.namespaced {
        namespace.ok_or_else(|| {
            Error::NotFound(format!(
                "{} is namespaced: the path needs a namespace",
                info.key.qualified()
            ))
        })?
    } else {
        ""
    };
    Ok(ObjectKey {
        resource: info.key.clone(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

/// POST: stores a new object.
pub(crate) fn create(
    state: &mut State,
    info: &KindInfo,
    namespace: Option<&str>,
    mut object: Value,
    managers: Managers,
) -> Result<Value, Error> {
    meta::normalize(&mut object);
    set_type(info, &mut object)?;
    if meta_str(&object, "resourceVersion").is_some() {
        return Err(Error::BadRequest(
            "resourceVersion should not be set on objects to be created".into(),
        ));
    }
    let name = match (meta_str(&object, "name"), meta_str(&object, "generateName")) {
        (Some(name), _) => name.to_owned(),
        (None, Some(prefix)) => format!("{prefix}{}", meta::name_suffix(&mut state.rng)),
        (None, None) => {
            return Err(Error::Invalid(format!(
                "{}: metadata.name: Required value: name or generateName is required",
                info.kind
            )));
        }
    };
    if info.namespaced {
        match (meta_str(&object, "namespace"), namespace) {
            (Some(body), Some(path)) if body != path => {
                return Err(Error::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            (_, Some(path)) => set_meta(&mut object, "namespace", path),
            (Some(_), None) | (None, None) => {
                return Err(Error::NotFound(format!(
                    "{} needs a namespaced path",
                    info.key.qualified()
                )));
            }
        }
    } else {
        meta::remove_meta(&mut object, "namespace");
    }
    let key = key_of(info, namespace, &name)?;
    if state.objects.contains_key(&key) {
        return Err(Error::AlreadyExists(format!(
            "{} \"{name}\" already exists",
            info.key.qualified()
        )));
    }
    if info.status
        && let Value::Object(map) = &mut object
    {
        // Status is written by controllers through /status, never on create.
        map.remove("status");
    }
    set_meta(&mut object, "name", name);
    let uid = meta::new_uid(&mut state.rng);
    set_meta(&mut object, "uid", uid);
    set_meta(&mut object, "creationTimestamp", meta::now());
    set_meta(&mut object, "generation", 1);
    for server_only in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
        meta::remove_meta(&mut object, server_only);
    }
    if info.key.plural == "customresourcedefinitions" {
        let crd =
            serde_json::from_value(object.clone()).map_err(|e| Error::InvalidCrd(e.to_string()))?;
        state.registry.register_crd(&crd)?;
    }
    Ok(state.put(key, object, managers))
}

/// PUT: replaces an object (or its status).
pub(crate) fn replace(
    state: &mut State,
    info: &KindInfo,
    key: &ObjectKey,
    scope: Scope,
    mut new: Value,
) -> Result<Value, Error> {
    match meta_str(&new, "name") {
        Some(name) if name != key.name => {
            return Err(Error::BadRequest(format!(
                "the name of the object ({name}) does not match the name on the URL ({})",
                key.name
            )));
        }
        _ => set_meta(&mut new, "name", key.name.as_str()),
    }
    let stored = state
        .objects
        .get(key)
        .ok_or_else(|| Error::not_found(&info.key.qualified(), &key.name))?;
    check_precondition(info, key, &stored.object, meta_str(&new, "resourceVersion"))?;
    let (old, managers) = (stored.object.clone(), stored.managers.clone());
    commit_update(state, info, key, &old, new, scope, managers)
}

/// A PATCH request's body and parameters.
pub(crate) struct PatchRequest<'a> {
    pub patch_type: PatchType,
    pub body: &'a [u8],
    pub field_manager: Option<&'a str>,
    pub force: bool,
}

/// PATCH with a merge, strategic or JSON patch, or server-side apply. Returns the HTTP code
/// (201 when an apply created the object) and the object.
pub(crate) fn patch(
    state: &mut State,
    info: &KindInfo,
    key: &ObjectKey,
    scope: Scope,
    request: &PatchRequest<'_>,
) -> Result<(u16, Value), Error> {
    if request.patch_type == PatchType::Apply {
        let manager = request.field_manager.ok_or_else(|| {
            Error::BadRequest(
                "PATCH with apply patch type requires the fieldManager parameter".into(),
            )
        })?;
        return server_side_apply(
            state,
            info,
            key,
            scope,
            request.body,
            manager,
            request.force,
        );
    }
    let stored = state
        .objects
        .get(key)
        .ok_or_else(|| Error::not_found(&info.key.qualified(), &key.name))?;
    let (old, managers) = (stored.object.clone(), stored.managers.clone());
    let new = patch::apply_patch(&old, request.patch_type, request.body)?;
    // A patch that sets metadata.resourceVersion is a precondition on it.
    if meta_str(&new, "resourceVersion") != meta_str(&old, "resourceVersion") {
        return Err(Error::stale(&info.key.qualified(), &key.name));
    }
    Ok((
        200,
        commit_update(state, info, key, &old, new, scope, managers)?,
    ))
}

fn server_side_apply(
    state: &mut State,
    info: &KindInfo,
    key: &ObjectKey,
    scope: Scope,
    body: &[u8],
    manager: &str,
    force: bool,
) -> Result<(u16, Value), Error> {
    let applied = apply::parse_applied(body)?;
    if let Some(name) = meta_str(&applied, "name")
        && name != key.name
    {
        return Err(Error::BadRequest(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            key.name
        )));
    }
    let status_scope = scope == Scope::Status;
    let applied = apply::scoped(&applied, status_scope, info.status);
    let Some(stored) = state.objects.get(key) else {
        if status_scope {
            return Err(Error::not_found(&info.key.qualified(), &key.name));
        }
        let mut object = applied.clone();
        set_meta(&mut object, "name", key.name.as_str());
        meta::remove_meta(&mut object, "resourceVersion");
        let managers = Managers::from([(
            (manager.to_owned(), false),
            apply::owned_fields(&applied, false),
        )]);
        let namespace = info.namespaced.then_some(key.namespace.as_str());
        return Ok((201, create(state, info, namespace, object, managers)?));
    };
    check_precondition(
        info,
        key,
        &stored.object,
        meta_str(&applied, "resourceVersion"),
    )?;
    let old = stored.object.clone();
    let (merged, managers) = apply::apply_to_live(
        &old,
        &stored.managers,
        &applied,
        manager,
        status_scope,
        force,
    )?;
    Ok((
        200,
        commit_update(state, info, key, &old, merged, scope, managers)?,
    ))
}

/// A resourceVersion in the request body must equal the stored one.
fn check_precondition(
    info: &KindInfo,
    key: &ObjectKey,
    stored: &Value,
    requested: Option<&str>,
) -> Result<(), Error> {
    match requested {
        Some(rv) if Some(rv) != meta_str(stored, "resourceVersion") => {
            Err(Error::stale(&info.key.qualified(), &key.name))
        }
        _ => Ok(()),
    }
}

/// Stores `new` in place of `old` under the API server's update rules; see the module docs.
pub(crate) fn commit_update(
    state: &mut State,
    info: &KindInfo,
    key: &ObjectKey,
    old: &Value,
    new: Value,
    scope: Scope,
    managers: Managers,
) -> Result<Value, Error> {
    let mut new = restrict_to_scope(info, scope, old, new)?;
    meta::normalize(&mut new);
    set_type(info, &mut new)?;
    meta::keep_server_fields(old, &mut new);
    if meta::spec_changed(old, &new, info.status) {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        set_meta(&mut new, "generation", generation + 1);
    }
    if meta::same_content(old, &new) {
        state.set_managers(key, managers);
        return Ok(old.clone());
    }
    let deleting = meta_str(&new, "deletionTimestamp").is_some();
    if deleting && meta::finalizers(&new).is_empty() {
        let removed = delete::remove_and_collect(state, key, Some(new));
        return Ok(removed.unwrap_or_default());
    }
    Ok(state.put(key.clone(), new, managers))
}

/// Main-resource writes keep the stored `.status`; `/status` writes keep everything else.
fn restrict_to_scope(
    info: &KindInfo,
    scope: Scope,
    old: &Value,
    new: Value,
) -> Result<Value, Error> {
    let take_status = |from: &Value, into: &mut Value| {
        if let Value::Object(map) = into {
            match from.get("status") {
                Some(status) => map.insert("status".into(), status.clone()),
                None => map.remove("status"),
            };
        }
    };
    match scope {
        Scope::Main if info.status => {
            let mut new = new;
            take_status(old, &mut new);
            Ok(new)
        }
        Scope::Main => Ok(new),
        Scope::Status if info.status => {
            let mut out = old.clone();
            take_status(&new, &mut out);
            Ok(out)
        }
        Scope::Status => Err(Error::NotFound(format!(
            "{} has no status subresource",
            info.key.qualified()
        ))),
    }
}

/// Fills in `apiVersion` and `kind`, refusing a body of another kind.
fn set_type(info: &KindInfo, object: &mut Value) -> Result<(), Error> {
    let Value::Object(map) = object else {
        return Err(Error::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    let api_version = info.key.api_version();
    for (field, expected) in [
        ("apiVersion", api_version.as_str()),
        ("kind", info.kind.as_str()),
    ] {
        match map.get(field).and_then(Value::as_str) {
            Some(given) if given != expected => {
                return Err(Error::BadRequest(format!(
                    "{field} {given:?} does not match the path's {expected:?}"
                )));
            }
            _ => {
                map.insert(field.into(), expected.into());
            }
        }
    }
    Ok(())
}
