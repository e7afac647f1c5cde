//! `cargo xtask tidy`: the project's shape rules over every tracked `.rs` file, checked from
//! the text alone (nothing is compiled, so it takes well under a second).
//!
//! - a file says what it owns: a `//!` line among its first three lines;
//! - a file under `crates/` or `xtask/` (but not under a `tests/` directory) has at most
//!   [`MAX_FILE_LINES`] lines before its `#[cfg(test)]` module;
//! - a function, tests included, spans at most [`MAX_FUNCTION_LINES`] lines from its `fn` line
//!   to its closing brace;
//! - comments stand on their own: they neither send the reader to the tracker by number nor
//!   to files outside the repository, both of which a reader of the source may not have.

mod scan;

use std::fmt;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

pub const MAX_FILE_LINES: usize = 600;
pub const MAX_FUNCTION_LINES: usize = 80;

/// Comment text that points outside the repository, to the folder shared beside it.
const OUTSIDE_REFERENCES: [&str; 3] = ["../shared", "shared/DEPENDENCIES", "shared/STYLE"];

/// One broken rule, shown as `path:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offence {
    pub path: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Offence {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}: {}", self.path, self.line, self.message)
    }
}

/// Checks every file `git ls-files '*.rs'` lists under `root` and prints each offence;
/// failure when there is any.
pub fn run(root: &Path) -> anyhow::Result<ExitCode> {
    let paths = tracked_rust_files(root)?;
    let mut offences = Vec::new();
    for path in &paths {
        let text = match std::fs::read(root.join(path)) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            // Tracked but deleted in the work tree: nothing left to check.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error).with_context(|| format!("read {path}")),
        };
        offences.extend(check_file(path, &text));
    }
    for offence in &offences {
        println!("{offence}");
    }
    if offences.is_empty() {
        eprintln!("tidy: {} files, no offences", paths.len());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("tidy: {} offence(s) in {} files checked", offences.len(), paths.len());
        Ok(ExitCode::FAILURE)
    }
}

fn tracked_rust_files(root: &Path) -> anyhow::Result<Vec<String>> {
    let output = Command::new("git")
        .args(["ls-files", "-z", "--", "*.rs"])
        .current_dir(root)
        .output()
        .context("could not run git ls-files")?;
    if !output.status.success() {
        bail!("git ls-files failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let listing = String::from_utf8(output.stdout).context("git ls-files printed non-UTF-8")?;
    Ok(listing.split('\0').filter(|path| !path.is_empty()).map(str::to_owned).collect())
}

/// Every offence of one file; `path` is relative to the workspace root, with `/`.
pub fn check_file(path: &str, text: &str) -> Vec<Offence> {
    let scan = scan::scan(text);
    let mut offences = Vec::new();
    let mut offend = |line: usize, message: String| {
        offences.push(Offence { path: path.to_owned(), line, message });
    };
    if !text.lines().take(3).any(|line| line.starts_with("//!")) {
        offend(1, "no `//!` line among the first 3: say what this file owns".to_owned());
    }
    if let Some(lines) = lines_before_tests(path, text).filter(|&lines| lines > MAX_FILE_LINES) {
        offend(
            MAX_FILE_LINES + 1,
            format!(
                "{lines} lines before `#[cfg(test)]` (at most {MAX_FILE_LINES}): split the file \
                 by concern"
            ),
        );
    }
    for function in scan::functions(&scan) {
        let lines = function.line_count();
        if lines > MAX_FUNCTION_LINES {
            offend(
                function.first_line,
                format!(
                    "fn {} spans {lines} lines (at most {MAX_FUNCTION_LINES}): split it",
                    function.name
                ),
            );
        }
    }
    for comment in &scan.comments {
        if let Some(reference) = tracker_reference(&comment.text) {
            offend(
                comment.line,
                format!(
                    "comment cites the tracker ({reference:?}): say what is meant instead, the \
                     reader may not have the tracker"
                ),
            );
        }
        if let Some(reference) = outside_reference(&comment.text) {
            offend(
                comment.line,
                format!(
                    "comment points outside the repository ({reference:?}): say what is meant \
                     instead"
                ),
            );
        }
    }
    offences.sort_by_key(|offence| offence.line);
    offences
}

/// The lines before the first line that starts with `#[cfg(test)]` (all of them without one),
/// for the files the length rule covers: under `crates/` or `xtask/`, not under `tests/`.
fn lines_before_tests(path: &str, text: &str) -> Option<usize> {
    let covered = (path.starts_with("crates/") || path.starts_with("xtask/"))
        && !path.split('/').any(|component| component == "tests");
    covered.then(|| text.lines().take_while(|line| !line.starts_with("#[cfg(test)]")).count())
}

/// The first match of `\bissue \d+` in `comment`, in any case (capitalised at the start of a
/// sentence it is the same reference). `\(issue \d+` is covered by it: a parenthesis is a word
/// boundary.
fn tracker_reference(comment: &str) -> Option<String> {
    const WORD: &str = "issue ";
    let lower = comment.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(WORD) {
        let start = from + found;
        let after_word = start + WORD.len();
        let boundary = lower[..start]
            .chars()
            .next_back()
            .is_none_or(|before| !(before.is_alphanumeric() || before == '_'));
        let digits = lower[after_word..].chars().take_while(char::is_ascii_digit).count();
        if boundary && digits > 0 {
            return Some(comment[start..after_word + digits].to_owned());
        }
        from = after_word;
    }
    None
}

fn outside_reference(comment: &str) -> Option<&'static str> {
    OUTSIDE_REFERENCES.into_iter().find(|reference| comment.contains(reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "//! What this file owns.\n";

    fn messages(path: &str, text: &str) -> Vec<(usize, String)> {
        check_file(path, text).into_iter().map(|offence| (offence.line, offence.message)).collect()
    }

    /// A function of `lines` lines (its `fn` line and closing brace included).
    fn function_of(lines: usize) -> String {
        let mut function = "fn long() {\n".to_owned();
        function.push_str(&"    step();\n".repeat(lines - 2));
        function.push_str("}\n");
        function
    }

    #[test]
    fn offences_show_as_path_line_message() {
        let offence = Offence { path: "a/b.rs".to_owned(), line: 7, message: "m".to_owned() };
        assert_eq!(offence.to_string(), "a/b.rs:7: m");
    }

    #[test]
    fn a_file_opens_by_saying_what_it_owns() {
        assert_eq!(check_file("src/a.rs", HEADER), []);
        assert_eq!(check_file("src/a.rs", "#![allow(dead_code)]\n\n//! Owns a.\n"), []);
        let found = messages("src/a.rs", "// plain\n\n\n//! too late\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 1);
        assert!(found[0].1.contains("`//!`"), "{found:?}");
        assert_eq!(messages("src/a.rs", " //! indented\n").len(), 1);
    }

    #[test]
    fn counts_the_lines_before_the_test_module() {
        let body = |lines: usize| format!("{HEADER}{}", "const A: u8 = 0;\n".repeat(lines - 1));
        assert_eq!(check_file("crates/a/src/lib.rs", &body(MAX_FILE_LINES)), []);
        let long = body(MAX_FILE_LINES + 1);
        let found = messages("xtask/src/main.rs", &long);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, MAX_FILE_LINES + 1);
        assert!(found[0].1.starts_with("601 lines before `#[cfg(test)]`"), "{found:?}");
        // Tests after the cut do not count; an indented attribute is no cut.
        let with_tests = format!("{}#[cfg(test)]\n{}", body(10), "const B: u8 = 0;\n".repeat(700));
        assert_eq!(check_file("crates/a/src/lib.rs", &with_tests), []);
        let indented =
            format!("{}    #[cfg(test)]\n{}", body(10), "const B: u8 = 0;\n".repeat(700));
        assert_eq!(messages("crates/a/src/lib.rs", &indented).len(), 1);
        // Only crates/ and xtask/, and not their tests/ directories.
        assert_eq!(check_file("crates/a/tests/api.rs", &long), []);
        assert_eq!(check_file("xtask/tests/cli.rs", &long), []);
        assert_eq!(check_file("examples/long.rs", &long), []);
    }

    #[test]
    fn a_function_spans_at_most_80_lines() {
        let fits = format!("{HEADER}{}", function_of(MAX_FUNCTION_LINES));
        assert_eq!(check_file("crates/a/tests/api.rs", &fits), []);
        let long = format!("{HEADER}\n{}", function_of(MAX_FUNCTION_LINES + 1));
        // Tests included, and in any directory.
        for path in ["crates/a/tests/api.rs", "xtask/src/a.rs", "other/b.rs"] {
            assert_eq!(
                messages(path, &long),
                [(3, "fn long spans 81 lines (at most 80): split it".to_owned())],
                "{path}"
            );
        }
        let nested = format!("{HEADER}mod tests {{\n    #[test]\n{}}}\n", function_of(90));
        assert_eq!(messages("src/a.rs", &nested).len(), 1);
    }

    #[test]
    fn braces_in_literals_and_comments_do_not_stretch_a_function() {
        // Counted, the opening braces of the first function's literals would be closed by those
        // of the last line, 82 lines on.
        let source = format!(
            "{HEADER}fn short() {{\n    \
             let s = \"{{\"; let r = r#\"{{\"#; let c = '{{'; // {{\n}}\n\
             {}const S: &str = \"}}\"; const R: &str = r#\"}}\"#; const C: char = '}}'; // }}\n",
            function_of(78)
        );
        assert_eq!(check_file("src/a.rs", &source), []);
        let code = source[HEADER.len()..].replace(['"', '\'', '#', '/'], " ");
        assert_eq!(
            messages("src/a.rs", &format!("{HEADER}{code}")),
            [(2, "fn short spans 82 lines (at most 80): split it".to_owned())],
            "the same braces as code"
        );
    }

    #[test]
    fn comments_do_not_cite_the_tracker() {
        for comment in ["// see issue 4", "/// Issue 12's targets", "//! (issue 3, item 1)"] {
            let found = messages("src/a.rs", &format!("{HEADER}{comment}\n"));
            assert_eq!(found.len(), 1, "{comment}");
            assert_eq!(found[0].0, 2);
            assert!(found[0].1.contains("tracker"), "{found:?}");
        }
        for fine in ["// the issue's targets", "// tissue 4", "// issue #4", "// issues 4"] {
            assert_eq!(check_file("src/a.rs", &format!("{HEADER}{fine}\n")), [], "{fine}");
        }
        // Code and strings are not comments; a trailing comment and a block comment are.
        assert_eq!(check_file("src/a.rs", &format!("{HEADER}let s = \"issue 4\";\n")), []);
        assert_eq!(messages("src/a.rs", &format!("{HEADER}f(); // issue 4\n")).len(), 1);
        assert_eq!(messages("src/a.rs", &format!("{HEADER}/*\n issue 4 */\n"))[0].0, 3);
    }

    #[test]
    fn comments_do_not_point_outside_the_repository() {
        for comment in
            ["// ../shared/notes.md", "/// see shared/DEPENDENCIES", "// shared/STYLE.md"]
        {
            let found = messages("src/a.rs", &format!("{HEADER}{comment}\n"));
            assert_eq!(found.len(), 1, "{comment}");
            assert!(found[0].1.contains("outside the repository"), "{found:?}");
        }
        assert_eq!(check_file("src/a.rs", &format!("{HEADER}// a shared cache\n")), []);
        assert_eq!(
            check_file("src/a.rs", &format!("{HEADER}const P: &str = \"../shared\";\n")),
            []
        );
    }

    #[test]
    fn tracker_references_are_whole_words_followed_by_a_number() {
        assert_eq!(tracker_reference("issue 4, item 3"), Some("issue 4".to_owned()));
        assert_eq!(tracker_reference("see (Issue 42)"), Some("Issue 42".to_owned()));
        assert_eq!(tracker_reference("an issue 1st"), Some("issue 1".to_owned()));
        assert_eq!(tracker_reference("reissue 4 and my_issue 5"), None);
        assert_eq!(tracker_reference("issue four, issue"), None);
        assert_eq!(tracker_reference("the issue, then issue 9"), Some("issue 9".to_owned()));
    }
}
