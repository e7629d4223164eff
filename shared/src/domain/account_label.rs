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
pub enum LabelError {
    #[error("label is {0} characters; at most 50 are allowed")]
    TooLong(usize),
    /// Control characters (NUL, line breaks) and the bidirectional overrides
    /// and isolates that make text display other than it reads.
    #[error("label contains the character U+{0:04X}, which is not allowed")]
    Forbidden(u32),
}

/// Characters a label may not hold: controls, and the bidirectional
/// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
fn forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl AccountLabel {
    /// Trims the input; an empty result means "no label" (`Ok(None)`).
    pub fn parse(input: &str) -> Result<Option<Self>, LabelError> {
        if let Some(c) = input.chars().find(|c| forbidden(*c)) {
            return Err(LabelError::Forbidden(u32::from(c)));
        }
        let trimmed = input.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Ok(None);
        }
        if chars > MAX_LABEL_CHARS {
            return Err(LabelError::TooLong(chars));
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
        assert_eq!(
            AccountLabel::parse(&"あ".repeat(51)),
            Err(LabelError::TooLong(51))
        );
    }

    #[test]
    fn control_and_bidirectional_override_characters_are_refused() {
        for bad in ["A\0B", "A\u{202E}B", "A\nB", "\u{2066}A", "A\u{7F}"] {
            assert!(
                matches!(AccountLabel::parse(bad), Err(LabelError::Forbidden(_))),
                "{bad:?}"
            );
        }
        assert!(AccountLabel::parse("A事業部（東京）").unwrap().is_some());
    }
}
