//! The shipped systemd units stay hardened: `systemd-analyze security` scores the exposure of
//! each at 2.0 or less (where systemd-analyze exists; elsewhere a notice says it was not
//! checked). `.ci/deploy` checks them too, with `systemd-analyze verify`.

use std::process::Command;

#[test]
fn the_systemd_units_score_an_exposure_of_at_most_2() {
    for unit in ["idgen-server.service", "idgen-server@.service"] {
        let path = format!("{}/../../deploy/{unit}", env!("CARGO_MANIFEST_DIR"));
        assert_exposure_at_most_2(&path);
    }
}

fn assert_exposure_at_most_2(unit: &str) {
    let output = match Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager", unit])
        .output()
    {
        Ok(output) => output,
        Err(_) => {
            eprintln!("notice: systemd-analyze is missing; the unit's exposure is not checked");
            return;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let line =
        text.lines().find(|line| line.contains("Overall exposure level")).unwrap_or_else(|| {
            panic!("no score in: {text}{}", String::from_utf8_lossy(&output.stderr))
        });
    let score: f64 = line
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("unreadable score line {line:?}"));
    assert!(score <= 2.0, "{line}");
}
