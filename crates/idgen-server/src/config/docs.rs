//! The settings tables of docs/configuration.md, generated from the declarations in
//! `settings.rs`; a test keeps the file in step (`UPDATE_DOCS=1` rewrites it).

use super::{Group, Setting};

/// The markdown table of every setting in `group`.
pub fn markdown_table(group: Group) -> String {
    let mut table = String::from("| variable | flag | default | meaning |\n|---|---|---|---|\n");
    for setting in Setting::ALL.iter().filter(|setting| setting.group() == group) {
        table.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            setting.env_var(),
            setting.flag(),
            setting.shown_default(),
            setting.doc()
        ));
    }
    table
}

/// `text` with each group's table (between `<!-- settings:NAME -->` and `<!-- /settings -->`)
/// replaced by the generated one; `None` if a marker is missing.
pub fn with_tables(text: &str) -> Option<String> {
    let mut out = text.to_owned();
    for group in Group::ALL {
        let begin = format!("<!-- settings:{} -->\n", group.marker());
        let start = out.find(&begin)? + begin.len();
        let end = start + out[start..].find("<!-- /settings -->")?;
        out.replace_range(start..end, &markdown_table(group));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::config::Flags;

    const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");

    #[test]
    fn the_configuration_doc_lists_every_setting_as_declared() {
        let text = std::fs::read_to_string(DOC).expect("docs/configuration.md exists");
        let expected = with_tables(&text).expect("docs/configuration.md has every settings marker");
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(DOC, &expected).expect("rewrite docs/configuration.md");
            return;
        }
        assert!(
            text == expected,
            "docs/configuration.md is out of date; run `UPDATE_DOCS=1 cargo test -p idgen-server --lib config` and commit it"
        );
    }

    #[test]
    fn every_flag_is_the_one_clap_parses() {
        let command = Flags::command();
        let longs: Vec<String> = command
            .get_arguments()
            .filter_map(|arg| arg.get_long())
            .map(|long| format!("--{long}"))
            .collect();
        let flags: Vec<String> = Setting::ALL.iter().map(|setting| setting.flag()).collect();
        assert_eq!(longs, flags);
        for setting in Setting::ALL {
            assert!(setting.env_var().starts_with(crate::config::ENV_PREFIX));
            let help = setting.help_line();
            assert!(help.contains(setting.env_var()) && !help.contains('`'), "{help}");
        }
    }
}
