//! What scheme a trusted peer's headers claim (secure_scheme_headers); which peers are trusted
//! is decided by `http::TrustedPeers`. Pure; no Python.
use crate::http::RequestHead;

/// The scheme a trusted peer's headers claim: Ok(None) when they claim nothing, Err when two
/// headers disagree (gunicorn's InvalidSchemeHeaders, a 400).
pub fn claimed_scheme(
    head: &RequestHead,
    secure_headers: &[(String, String)],
) -> Result<Option<&'static str>, ()> {
    let mut claimed = None;
    for (name, value) in &head.headers {
        let Some((_, secure_value)) = secure_headers.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let scheme = if value.as_slice() == secure_value.as_bytes() {
            "https"
        } else {
            "http"
        };
        if claimed.is_some_and(|c| c != scheme) {
            return Err(());
        }
        claimed = Some(scheme);
    }
    Ok(claimed)
}
