//! Register addresses as people write them, resolved to protocol addresses.
//!
//! Numbers are taken with the device's `address_base` (0: protocol address as on the wire;
//! 1: the "register number" of most manuals, one more than the wire address). Strings accept the
//! Modicon notation, which always counts from 1 and names the table: `"40001"` / `"400001"` /
//! `"4x0001"` is holding register 0, `"30001"` input register 0, `"10001"` discrete input 0,
//! `"00001"` / `"0x0001"`-style coil 0; and `"0x10"` / `"0X10"` (hex) is a plain number.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::config::RegisterKind;

/// An address as written in the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressSpec {
    /// A number, to be taken with the device's `address_base`.
    Number(u32),
    /// Modicon notation: table and 1-based register number.
    Modicon(RegisterKind, u32),
}

impl AddressSpec {
    /// Parses text (`"40001"`, `"4x0001"`, `"0x10"`, `"12"`).
    ///
    /// # Errors
    /// A message for the config report.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"))
            && hex.len() <= 4
        {
            return u32::from_str_radix(hex, 16)
                .map(Self::Number)
                .map_err(|_| format!("invalid hex address {text:?}"));
        }
        if let Some((table, rest)) = t.split_once(['x', 'X']) {
            let kind = table_of(table)
                .ok_or_else(|| format!("unknown register table {table:?} in {text:?}"))?;
            let n: u32 = rest
                .parse()
                .map_err(|_| format!("invalid register number in {text:?}"))?;
            return Ok(Self::Modicon(kind, n));
        }
        if !t.chars().all(|c| c.is_ascii_digit()) || t.is_empty() {
            return Err(format!(
                "invalid address {text:?}: expected a number, \"40001\" or \"4x0001\""
            ));
        }
        if t.len() == 5 || t.len() == 6 {
            let (table, rest) = t.split_at(1);
            let kind = table_of(table).ok_or_else(|| {
                format!(
                    "{text:?}: 5- and 6-digit addresses start with 0, 1, 3 or 4 (Modicon notation)"
                )
            })?;
            let n: u32 = rest
                .parse()
                .map_err(|_| format!("invalid register number in {text:?}"))?;
            return Ok(Self::Modicon(kind, n));
        }
        t.parse()
            .map(Self::Number)
            .map_err(|_| format!("invalid address {text:?}"))
    }

    /// The protocol address and table, given the configured table and address base.
    ///
    /// # Errors
    /// A message when the address is out of range or contradicts `register`.
    pub fn resolve(
        &self,
        register: Option<RegisterKind>,
        address_base: u8,
    ) -> Result<(RegisterKind, u16), String> {
        let (kind, wire) = match self {
            Self::Number(n) => {
                let kind = register.ok_or("'register' is required with a numeric address (holding, input, coil or discrete)")?;
                let base = u32::from(address_base);
                if *n < base {
                    return Err(format!("address {n} is below address_base {address_base}"));
                }
                (kind, n - base)
            }
            Self::Modicon(kind, n) => {
                if let Some(r) = register.filter(|r| r != kind) {
                    return Err(format!(
                        "register = \"{}\" contradicts the {} table of the address",
                        r.as_str(),
                        kind.as_str()
                    ));
                }
                if *n == 0 {
                    return Err("Modicon register numbers start at 1".to_owned());
                }
                (*kind, n - 1)
            }
        };
        let wire = u16::try_from(wire).map_err(|_| format!("address {wire} is beyond 65535"))?;
        Ok((kind, wire))
    }
}

fn table_of(digit: &str) -> Option<RegisterKind> {
    match digit {
        "0" => Some(RegisterKind::Coil),
        "1" => Some(RegisterKind::Discrete),
        "3" => Some(RegisterKind::Input),
        "4" => Some(RegisterKind::Holding),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for AddressSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AddressSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a register address: a number, \"40001\" or \"4x0001\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AddressSpec, E> {
                u32::try_from(v)
                    .map(AddressSpec::Number)
                    .map_err(|_| E::custom("an address cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AddressSpec, E> {
                u32::try_from(v)
                    .map(AddressSpec::Number)
                    .map_err(|_| E::custom("address out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AddressSpec, E> {
                AddressSpec::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modicon_notation_is_one_based_and_names_the_table() {
        let h = AddressSpec::parse("40001").unwrap();
        assert_eq!(h.resolve(None, 0).unwrap(), (RegisterKind::Holding, 0));
        assert_eq!(
            AddressSpec::parse("4x0010")
                .unwrap()
                .resolve(None, 0)
                .unwrap(),
            (RegisterKind::Holding, 9)
        );
        assert_eq!(
            AddressSpec::parse("300100")
                .unwrap()
                .resolve(None, 0)
                .unwrap(),
            (RegisterKind::Input, 99)
        );
        assert_eq!(
            AddressSpec::parse("10003")
                .unwrap()
                .resolve(None, 1)
                .unwrap(),
            (RegisterKind::Discrete, 2)
        );
        assert_eq!(
            AddressSpec::parse("00001")
                .unwrap()
                .resolve(None, 0)
                .unwrap(),
            (RegisterKind::Coil, 0)
        );
    }

    #[test]
    fn numbers_follow_the_address_base() {
        let n = AddressSpec::Number(100);
        assert_eq!(
            n.resolve(Some(RegisterKind::Input), 0).unwrap(),
            (RegisterKind::Input, 100)
        );
        assert_eq!(
            n.resolve(Some(RegisterKind::Input), 1).unwrap(),
            (RegisterKind::Input, 99)
        );
        assert_eq!(AddressSpec::parse("0x10").unwrap(), AddressSpec::Number(16));
    }

    #[test]
    fn contradictions_and_ranges_are_errors() {
        assert!(
            AddressSpec::Number(5).resolve(None, 0).is_err(),
            "numeric needs a table"
        );
        assert!(
            AddressSpec::parse("40001")
                .unwrap()
                .resolve(Some(RegisterKind::Input), 0)
                .is_err()
        );
        assert!(
            AddressSpec::Number(0)
                .resolve(Some(RegisterKind::Holding), 1)
                .is_err()
        );
        assert!(
            AddressSpec::Number(70_000)
                .resolve(Some(RegisterKind::Holding), 0)
                .is_err()
        );
        assert!(AddressSpec::parse("50001").is_err());
        assert!(AddressSpec::parse("forty").is_err());
    }
}
