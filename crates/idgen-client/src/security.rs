//! What a client presents and what it trusts: the API key (sent on every request, never
//! printed) and the CA certificates an `https://` server's certificate must chain to, made
//! into the client's own TLS configuration.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest::header::HeaderValue;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{self, PemObject};

use crate::error::{Error, describe_io};

/// An API key as given. `Debug` shows `<redacted>`, so a builder, a client or a struct that
/// holds one can be logged whole.
#[derive(Clone)]
pub(crate) struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl ApiKey {
    pub(crate) fn new(secret: String) -> Self {
        Self(secret)
    }

    /// `Bearer <secret>`, marked sensitive: http's `Debug` then prints `Sensitive`, so reqwest's
    /// `Debug` of the client (which lists its default headers) does not show it either.
    pub(crate) fn authorization(&self) -> Result<HeaderValue, Error> {
        let invalid = |reason: &str| Error::InvalidApiKey { reason: reason.to_owned() };
        if self.0.is_empty() {
            return Err(invalid("it is empty"));
        }
        // The server splits `Bearer <key>` at the first space and trims the rest, and reads
        // headers as visible ASCII only: any other byte would reach it changed, or not at all.
        if !self.0.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(invalid(
                "only visible ASCII characters can be sent (no spaces, control characters or \
                 non-ASCII letters)",
            ));
        }
        let mut value = HeaderValue::try_from(format!("Bearer {}", self.0))
            .map_err(|_| invalid("it cannot be sent in an HTTP header"))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// CA certificates to trust, as given to the builder; read and checked by `build`.
#[derive(Clone)]
pub(crate) enum CaSource {
    File(PathBuf),
    Pem(Vec<u8>),
}

impl fmt::Debug for CaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaSource::File(path) => f.debug_tuple("File").field(path).finish(),
            CaSource::Pem(pem) => write!(f, "Pem({} bytes)", pem.len()),
        }
    }
}

impl CaSource {
    /// Where the certificates come from, for messages.
    fn name(&self) -> String {
        match self {
            CaSource::File(path) => format!("`{}`", path.display()),
            CaSource::Pem(_) => "PEM given to ca_pem".to_owned(),
        }
    }

    /// Every certificate of the source, each checked as a trust anchor here, so that a bad one
    /// is named with its source now rather than by reqwest as "builder error" later.
    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        let invalid = |reason: String| Error::InvalidCertificate { from: self.name(), reason };
        let pem = match self {
            CaSource::File(path) => Cow::Owned(
                std::fs::read(path)
                    .map_err(|error| invalid(format!("cannot read it: {}", describe_io(&error))))?,
            ),
            CaSource::Pem(pem) => Cow::Borrowed(pem.as_slice()),
        };
        let ders = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, pem::Error>>()
            .map_err(|error| invalid(format!("not valid PEM: {error}")))?;
        if ders.is_empty() {
            return Err(invalid(
                "no PEM certificate in it (a `-----BEGIN CERTIFICATE-----` block)".to_owned(),
            ));
        }
        let mut store = rustls::RootCertStore::empty();
        for (index, der) in ders.iter().enumerate() {
            store.add(der.clone()).map_err(|error| {
                invalid(format!("certificate {} cannot be used: {error}", index + 1))
            })?;
        }
        Ok(ders)
    }
}

/// The certificates of every source, in order.
pub(crate) fn certificates(sources: &[CaSource]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut all = Vec::new();
    for source in sources {
        all.extend(source.certificates()?);
    }
    Ok(all)
}

/// The client's TLS settings, on ring and its own: reqwest built with `rustls-no-provider`
/// would otherwise take the process-wide provider, and installing one from a library would
/// make an application that installs another later fail. With `cas`, only those CAs are
/// trusted (merged with the system's, any public CA's certificate for the name would do too,
/// which is what naming a CA is meant to rule out); without, the system's verifier, as
/// reqwest's own default.
pub(crate) fn tls_config(
    cas: Vec<CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?;
    let mut config = if cas.is_empty() {
        let verifier =
            rustls_platform_verifier::Verifier::new(provider).map_err(|error| error.to_string())?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for der in cas {
            roots.add(der).map_err(|error| error.to_string())?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    // reqwest is built for HTTP/1.1 only, and sets no ALPN on a configuration it is given.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_key_is_redacted_and_sent_as_a_sensitive_bearer_token() {
        let key = ApiKey::new("idg_s3cr3t".to_owned());
        assert_eq!(format!("{key:?}"), "<redacted>");
        let value = key.authorization().expect("a valid key");
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().expect("ASCII"), "Bearer idg_s3cr3t");
        assert!(!format!("{value:?}").contains("s3cr3t"));
    }

    #[test]
    fn refuses_keys_a_header_cannot_carry_without_quoting_them() {
        for secret in ["", "has space", "tab\there", "line\nbreak", "clé"] {
            let error = ApiKey::new(secret.to_owned()).authorization().expect_err(secret);
            assert!(matches!(error, Error::InvalidApiKey { .. }), "{secret:?}: {error:?}");
            let message = error.to_string();
            assert!(message.starts_with("invalid API key: "), "{message}");
            if !secret.is_empty() {
                assert!(!message.contains(secret), "{message}");
                assert!(!format!("{error:?}").contains(secret), "{error:?}");
            }
        }
    }

    fn refusal(source: CaSource) -> String {
        match certificates(&[source]) {
            Err(error @ Error::InvalidCertificate { .. }) => error.to_string(),
            Err(other) => panic!("expected InvalidCertificate, got {other:?}"),
            Ok(certificates) => {
                panic!("expected a refusal, got {} certificates", certificates.len())
            }
        }
    }

    #[test]
    fn bad_pem_is_refused_with_its_source_and_reason() {
        let message = refusal(CaSource::Pem(b"not a certificate\n".to_vec()));
        assert_eq!(
            message,
            "cannot use CA certificates from PEM given to ca_pem: no PEM certificate in it (a \
             `-----BEGIN CERTIFICATE-----` block)"
        );
        let message = refusal(CaSource::Pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n".to_vec()));
        assert!(message.contains(": not valid PEM: "), "{message}");
        let not_x509 = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let message = refusal(CaSource::Pem(not_x509.to_vec()));
        assert!(message.contains(": certificate 1 cannot be used: "), "{message}");
        let message = refusal(CaSource::File(PathBuf::from("/nonexistent/ca.pem")));
        assert_eq!(
            message,
            "cannot use CA certificates from `/nonexistent/ca.pem`: cannot read it: no such file \
             or directory"
        );
        assert!(certificates(&[]).expect("none is fine").is_empty());
        assert_eq!(format!("{:?}", CaSource::Pem(vec![b'x'; 3])), "Pem(3 bytes)");
    }
}
