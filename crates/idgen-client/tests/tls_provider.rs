//! The SDK's TLS leaves the process alone: a client talks https on its own ring provider and
//! installs no process-wide rustls default, so an application may still install its own (a
//! test binary of its own, because the assertion is about the whole process).

// Only the TLS server of the shared helpers is used here.
#[allow(dead_code)]
mod common;

use common::TestServer;
use idgen_client::Client;

const SECRET: &str = "idg_provider_test_secret";

#[tokio::test]
async fn a_client_over_https_installs_no_process_wide_crypto_provider() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_tls(&[(SECRET, &["uuid7"])], dir.path());
    let trusting = Client::builder(&server.url)
        .ca_file(dir.path().join("ca.pem"))
        .api_key(SECRET)
        .build()
        .expect("valid");
    let id = trusting.uuid7().await.expect("a uuid7 over https");
    assert_eq!(id.to_string().len(), 36);
    let system = Client::builder(&server.url).api_key(SECRET).build().expect("valid");
    let error = system.uuid7().await.expect_err("the test CA is not in the system's store");
    assert!(matches!(error, idgen_client::Error::Transport { .. }), "{error:?}");
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "building and using clients must not install a process-wide provider"
    );
    // What an application does after creating the SDK client: install its own default. It
    // succeeds because none was there, and the SDK keeps working on its own provider.
    rustls::crypto::ring::default_provider()
        .install_default()
        .expect("the application's provider is the first");
    assert_eq!(trusting.uuid7().await.expect("still works").to_string().len(), 36);
}
