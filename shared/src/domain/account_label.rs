//! The optional label shown on the CRM card for one board account.

use serde::Serialize;

pub const MAX_LABEL_CHARS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AccountLabel(String);

impl<'de> serde::Deserialize<'de> for AccountLabel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw)
            .map_err(serde::de::Error::custom)?
            .ok_or_else(|| serde::de::Error::custom("empty label"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("label is {0} characters; at most 50 are allowed")]
pub struct LabelTooLong(pub usize);

impl AccountLabel {
    /// Trims the input; an empty result means "no label" (`Ok(None)`).
    pub fn parse(input: &str) -> Result<Option<Self>, LabelTooLong> {
        let trimmed = input.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Ok(None);
        }
        if chars > MAX_LABEL_CHARS {
            return Err(LabelTooLong(chars));
        }
        Ok(Some(Self(trimmed.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_counted_in_characters_and_empty_clears() {
        assert_eq!(
            AccountLabel::parse("  A事業部 ").unwrap().unwrap().as_str(),
            "A事業部"
        );
        assert_eq!(AccountLabel::parse("   ").unwrap(), None);
        assert!(AccountLabel::parse(&"あ".repeat(50)).unwrap().is_some());
        assert_eq!(AccountLabel::parse(&"あ".repeat(51)), Err(LabelTooLong(51)));
    }
}
