//! `idgen-server healthcheck` (the container image's health check) as a process against a real
//! server: exit 0 and the status on 200, exit 1 with the reason otherwise.

use std::process::{Command, Output};

use crate::helpers::{Options, spawn_app};
use crate::redis_harness::free_port;

/// `idgen-server healthcheck args...` with `IDGEN_BIND=bind` and no other IDGEN_* setting.
fn healthcheck(bind: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idgen-server"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IDGEN_") {
            command.env_remove(&name);
        }
    }
    let data = tempfile::tempdir().expect("temp dir");
    command
        .env("IDGEN_BIND", bind)
        .env("IDGEN_DATA_DIR", data.path())
        .arg("healthcheck")
        .args(args)
        .output()
        .expect("run idgen-server healthcheck")
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_exits_0_on_a_serving_server_and_1_where_none_listens() {
    let app = spawn_app(Options::new());
    // The server listens on 127.0.0.1; the image binds 0.0.0.0, which the check maps to it.
    for bind in [format!("127.0.0.1:{}", app.port), format!("0.0.0.0:{}", app.port)] {
        let output = healthcheck(&bind, &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{bind}: {output:?}");
        assert!(stdout.contains("GET /healthz") && stdout.contains(": 200"), "{stdout}");
    }
    let output = healthcheck(&format!("127.0.0.1:{}", app.port), &["--path", "/readyz"]);
    assert!(output.status.success(), "{output:?}");
    // A path that answers 404: not healthy.
    let output = healthcheck(&format!("127.0.0.1:{}", app.port), &["--path", "/nowhere"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("404"), "{output:?}");
    drop(app);
    let output = healthcheck(&format!("127.0.0.1:{}", free_port()), &[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}
