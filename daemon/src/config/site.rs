//! `[site]`: the building this gateway serves: its name and address, floors, rooms (units) and
//! tenants. Together with the sensors in the buffer it is the site metadata the centre receives.
//!
//! Owns: the shape and validation of `[site]`. Does not own: uploading it (`crate::sync`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[site]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Name of the building; default: `[gateway] name`.
    #[serde(default)]
    pub name: Option<String>,
    /// Postal address.
    #[serde(default)]
    pub address: Option<String>,
    /// `[[site.floor]]`
    #[serde(default)]
    pub floor: Vec<FloorConfig>,
    /// `[[site.room]]`
    #[serde(default)]
    pub room: Vec<RoomConfig>,
    /// `[[site.tenant]]`
    #[serde(default)]
    pub tenant: Vec<TenantConfig>,
}

/// `[[site.floor]]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloorConfig {
    /// The label sensors use for the floor (their `floor`), e.g. "3" or "B".
    pub id: String,
    /// Human name; default: the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Level, for ordering (0 ground floor, negative below ground).
    #[serde(default)]
    pub level: Option<i32>,
}

/// `[[site.room]]`: a room, flat or other unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomConfig {
    /// The label sensors use for the room (their `room`), e.g. "301".
    pub id: String,
    /// Floor id.
    #[serde(default)]
    pub floor: Option<String>,
    /// Human name; default: the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Tenant id.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// `[[site.tenant]]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Short id rooms refer to.
    pub id: String,
    /// Human name; default: the id.
    #[serde(default)]
    pub name: Option<String>,
}

/// Semantic checks: ids present and unique, references to listed floors and tenants.
pub(crate) fn validate(site: &SiteConfig) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut push = |path: String, message: String| {
        errors.push(ConfigError {
            path,
            position: None,
            message,
            hint: None,
        });
    };
    let ids = |kind: &str, list: Vec<&str>, push: &mut dyn FnMut(String, String)| {
        let mut seen = BTreeSet::new();
        for (i, id) in list.into_iter().enumerate() {
            if id.trim().is_empty() {
                push(
                    format!("site.{kind}.{i}.id"),
                    "must not be empty".to_owned(),
                );
            } else if !seen.insert(id) {
                push(
                    format!("site.{kind}.{i}.id"),
                    format!("{kind} {id:?} is listed twice"),
                );
            }
        }
        seen.into_iter().map(str::to_owned).collect::<BTreeSet<_>>()
    };
    let floors = ids(
        "floor",
        site.floor.iter().map(|f| f.id.as_str()).collect(),
        &mut push,
    );
    let tenants = ids(
        "tenant",
        site.tenant.iter().map(|t| t.id.as_str()).collect(),
        &mut push,
    );
    ids(
        "room",
        site.room.iter().map(|r| r.id.as_str()).collect(),
        &mut push,
    );
    for (i, room) in site.room.iter().enumerate() {
        if let Some(f) = room.floor.as_deref().filter(|f| !floors.contains(*f)) {
            push(
                format!("site.room.{i}.floor"),
                format!("floor {f:?} is not one of the [[site.floor]] ids"),
            );
        }
        if let Some(t) = room.tenant.as_deref().filter(|t| !tenants.contains(*t)) {
            push(
                format!("site.room.{i}.tenant"),
                format!("tenant {t:?} is not one of the [[site.tenant]] ids"),
            );
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: &str, floor: Option<&str>, tenant: Option<&str>) -> RoomConfig {
        RoomConfig {
            id: id.into(),
            floor: floor.map(Into::into),
            name: None,
            tenant: tenant.map(Into::into),
        }
    }

    #[test]
    fn checks_ids_and_references() {
        let site = SiteConfig {
            floor: vec![FloorConfig {
                id: "1".into(),
                name: None,
                level: Some(1),
            }],
            room: vec![
                room("101", Some("1"), None),
                room("101", Some("2"), Some("acme")),
            ],
            ..SiteConfig::default()
        };
        let paths: Vec<String> = validate(&site).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            ["site.room.1.id", "site.room.1.floor", "site.room.1.tenant"]
        );
        assert!(validate(&SiteConfig::default()).is_empty());
    }
}
