//! What `save` carries besides the images: `--no-referrers` and `--referrers-type`
//! resolved into [`Wanted`] before any work starts (a typo in a kind word is a usage
//! error). The discovery itself is `export::referrers`'.

use crate::bundle::toc::ArtifactKind;

/// Which artifacts `save` carries: `--no-referrers` turns discovery off (`None` in the
/// settings); `--referrers-type` keeps only some.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Artifact types (`application/spdx+json`) and kind words (`signature`,
    /// `attestation`, `sbom`); empty keeps all.
    pub types: Vec<String>,
}

impl Wanted {
    /// From `--no-referrers` (`None`: discovery off) and `--referrers-type`: a type is a
    /// media type (`type/subtype…`) or a kind word; anything else is a typo worth
    /// stopping for (the message is for the operator).
    pub fn from_flags(no_referrers: bool, types: &[String]) -> Result<Option<Wanted>, String> {
        if no_referrers {
            return Ok(None);
        }
        let mut out = Vec::new();
        for t in types.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            if ArtifactKind::from_flag(t).is_none() && !t.contains('/') {
                return Err(format!(
                    "--referrers-type `{t}` is neither an artifact type (like application/spdx+json) \
                     nor one of signature, attestation, sbom"
                ));
            }
            out.push(t.to_string());
        }
        Ok(Some(Wanted { types: out }))
    }

    /// Whether an artifact of this kind and type is carried.
    pub fn accepts(&self, kind: ArtifactKind, artifact_type: Option<&str>) -> bool {
        self.types.is_empty()
            || self.types.iter().any(|t| {
                ArtifactKind::from_flag(t) == Some(kind)
                    || artifact_type.is_some_and(|a| a == t.as_str())
            })
    }

    /// The one artifact type the registry may filter by (`artifactType=`), if the
    /// filter is exactly one type (not a kind word).
    pub(crate) fn server_filter(&self) -> Option<&str> {
        match self.types.as_slice() {
            [only] if ArtifactKind::from_flag(only).is_none() => Some(only),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_resolve_to_wanted() {
        assert_eq!(Wanted::from_flags(true, &[]), Ok(None));
        assert_eq!(Wanted::from_flags(false, &[]), Ok(Some(Wanted::default())));
        let types = vec![
            "sbom".to_string(),
            " application/spdx+json ".into(),
            "".into(),
        ];
        assert_eq!(
            Wanted::from_flags(false, &types),
            Ok(Some(Wanted {
                types: vec!["sbom".into(), "application/spdx+json".into()]
            }))
        );
        let err = Wanted::from_flags(false, &["sboms".to_string()]).unwrap_err();
        assert!(err.contains("`sboms`") && err.contains("signature, attestation, sbom"));
    }

    #[test]
    fn wanted_matches_words_and_types() {
        let all = Wanted::default();
        assert!(all.accepts(ArtifactKind::Other, None));
        let w = Wanted {
            types: vec!["sbom".into(), "application/x-thing".into()],
        };
        assert!(w.accepts(ArtifactKind::Sbom, Some("application/spdx+json")));
        assert!(w.accepts(ArtifactKind::Other, Some("application/x-thing")));
        assert!(!w.accepts(ArtifactKind::Signature, None));
        assert_eq!(w.server_filter(), None);
        let one = Wanted {
            types: vec!["application/spdx+json".into()],
        };
        assert_eq!(one.server_filter(), Some("application/spdx+json"));
    }
}
