//! The OCI 1.1 referrers API: `GET /v2/<name>/referrers/<digest>`, an image index
//! listing every manifest whose `subject` is that digest.
//!
//! Many registries (distribution 2.8, older Harbor, …) have no such endpoint: they
//! answer 404 (or 400/405/501, or something that is not an index). That answer says
//! "no API", not "no referrers"; it is remembered per registry ([`super::Quirks`]) so
//! later manifests of the run go straight to the tag schema, one request fewer each.
//! Pages are followed by their `Link: <…>; rel="next"` headers, bounded.

use serde::Deserialize;
use ureq::http::Method;

use super::auth::Scope;
use super::error::{Kind, Op};
use super::request::{Ctx, Req};
use super::transport;
use super::{Client, RegistryError};
use crate::digest::Digest;
use crate::oci::{Descriptor, media};

/// Pages of referrers followed at most.
const MAX_PAGES: usize = 1000;
/// Largest page read (the registry's own manifest limit).
const MAX_PAGE: u64 = crate::oci::MAX_MANIFEST_SIZE;

/// What the referrers API answered for one subject.
#[derive(Debug, Clone, Default)]
pub struct Referrers {
    /// Every descriptor of every page, in the order served.
    pub manifests: Vec<Descriptor>,
    /// The registry applied the `artifactType` filter asked for (`OCI-Filters-Applied`);
    /// when false, the caller filters.
    pub filtered: bool,
}

impl Client {
    /// The referrers of `subject` in `repository`, or `None` when the registry has no
    /// referrers API (then the caller uses the referrers tag schema). `artifact_type`
    /// asks the registry to filter; check [`Referrers::filtered`].
    pub fn referrers(
        &self,
        registry: &str,
        repository: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Referrers>, RegistryError> {
        let inner = &self.inner;
        if inner.quirks(registry).no_referrers_api {
            return Ok(None);
        }
        let ctx = Ctx {
            registry,
            repository,
            reference: subject.as_str(),
            kind: Kind::Manifest,
            what: Op::Referrers,
            scope: Scope::pull(repository),
        };
        let protocol = |problem: String| RegistryError::Protocol {
            registry: registry.to_string(),
            repository: repository.to_string(),
            what: "a referrers list",
            problem,
        };
        let mut url = format!(
            "{}/v2/{repository}/referrers/{subject}",
            inner.base(registry)
        );
        if let Some(t) = artifact_type {
            url = transport::with_query(&url, &[("artifactType", t)]);
        }
        let mut out = Referrers {
            manifests: Vec::new(),
            filtered: artifact_type.is_some(),
        };
        for page in 0..MAX_PAGES {
            let mut req =
                Req::new(Method::GET, url.clone()).header("accept", media::OCI_INDEX.to_string());
            let answer = match inner.execute(&ctx, &mut req) {
                Ok(a) => a,
                Err(e) if page == 0 && no_api(&e) => {
                    inner.learn(registry, |q| q.no_referrers_api = true);
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let content_type = answer
                .header("content-type")
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
            if page == 0 && content_type.as_deref() != Some(media::OCI_INDEX) {
                // A catch-all answer (an HTML page, a manifest): not the API.
                inner.learn(registry, |q| q.no_referrers_api = true);
                return Ok(None);
            }
            let applied = answer
                .header("oci-filters-applied")
                .is_some_and(|v| v.split(',').any(|f| f.trim() == "artifactType"));
            out.filtered &= applied;
            let (bytes, next) = answer.into_page(MAX_PAGE)?;
            #[derive(Deserialize)]
            struct Page {
                #[serde(default)]
                manifests: Vec<Descriptor>,
            }
            let page: Page = serde_json::from_slice(&bytes)
                .map_err(|e| protocol(format!("the answer is not an image index ({e})")))?;
            out.manifests.extend(page.manifests);
            match next {
                Some(n) => url = n,
                None => return Ok(Some(out)),
            }
        }
        Err(protocol(format!("more than {MAX_PAGES} pages")))
    }
}

/// The answers that mean "this registry has no referrers endpoint".
fn no_api(e: &RegistryError) -> bool {
    e.is_not_found() || matches!(e.status(), Some(400 | 405 | 501))
}
