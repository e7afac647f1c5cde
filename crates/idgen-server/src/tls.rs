//! TLS on the listeners (`IDGEN_TLS_CERT` / `IDGEN_TLS_KEY`): rustls with the ring provider (as
//! the Redis TLS), HTTP/1.1 only, a certificate that SIGHUP re-reads without a restart, and the
//! one connection type the HTTP service sees either way ([`Conn`]).
//!
//! The certificate sits behind a resolver rather than in the `ServerConfig`: a reload swaps it
//! for the connections that start after it, while those in flight keep theirs.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client has this long to finish its handshake; a slow or silent one must not hold a
/// connection slot for longer.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listeners' TLS: the acceptor and the files its certificate comes from.
pub struct Tls {
    acceptor: TlsAcceptor,
    current: Arc<Current>,
    cert: PathBuf,
    key: PathBuf,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material: only where it comes from.
        f.debug_struct("Tls").field("cert", &self.cert).field("key", &self.key).finish()
    }
}

/// The certificate new connections get.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.read()))
    }
}

impl Tls {
    /// Reads the certificate chain and its key (PEM); a problem is one line naming the file.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
        let current = Arc::new(Current(RwLock::new(Arc::new(certified_key(cert, key)?))));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("TLS set-up: {error}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            current,
            cert: cert.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Re-reads both files; a bad pair keeps the certificate in use.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = certified_key(&self.cert, &self.key)?;
        *self.current.0.write() = Arc::new(fresh);
        Ok(())
    }

    /// The handshake on `stream`, within [`HANDSHAKE_TIMEOUT`].
    pub async fn accept(&self, stream: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
        }
    }
}

/// The chain in `cert` and the private key in `key`, checked to belong together.
fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let shown = |path: &Path| path.display().to_string();
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|error| format!("cannot read {}: {}", shown(cert), pem_error(&error)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{}: {}", shown(cert), pem_error(&error)))?;
    if chain.is_empty() {
        return Err(format!("{}: no PEM certificate in it", shown(cert)));
    }
    // The error never quotes the file: it may be a key.
    let private = PrivateKeyDer::from_pem_file(key).map_err(|error| {
        format!("{}: no usable PEM private key ({})", shown(key), pem_error(&error))
    })?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|_| format!("{}: the private key's type is not supported", shown(key)))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|_| {
        format!(
            "{} and {} do not belong together (the key does not match the certificate)",
            shown(key),
            shown(cert)
        )
    })?;
    Ok(certified)
}

/// A PEM error in words, without any of the file's bytes.
fn pem_error(error: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match error {
        Error::Io(error) => error.to_string(),
        Error::NoItemsFound => "no PEM section of the expected kind".to_owned(),
        Error::MissingSectionEnd { .. } => "a PEM section has no end line".to_owned(),
        Error::IllegalSectionStart { .. } => "a PEM section start line is malformed".to_owned(),
        Error::Base64Decode(_) => "a PEM section is not valid base64".to_owned(),
        _ => "not valid PEM".to_owned(),
    }
}

/// A connection as the HTTP service reads and writes it: plain TCP or TLS over TCP.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(stream) => Pin::new(stream).poll_read(context, buf),
            Conn::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(stream) => Pin::new(stream).poll_write(context, buf),
            Conn::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(stream) => Pin::new(stream).poll_flush(context),
            Conn::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            Conn::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(stream) => Pin::new(stream).poll_write_vectored(context, bufs),
            Conn::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(context, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(stream) => stream.is_write_vectored(),
            Conn::Tls(stream) => stream.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_wrong_file_is_one_line_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("cert.pem");
        std::fs::write(&not_pem, "hello\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let error = Tls::load(&missing, &missing).unwrap_err();
        assert!(error.contains("missing.pem") && !error.contains('\n'), "{error}");
        let error = Tls::load(&not_pem, &missing).unwrap_err();
        assert!(error.contains("cert.pem") && error.contains("no PEM certificate"), "{error}");
    }
}
