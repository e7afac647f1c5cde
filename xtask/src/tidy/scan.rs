//! A Rust source scanner just precise enough for tidy: the braces, brackets, semicolons and
//! words of the code (what lies inside string literals, raw strings, char literals and comments
//! left out), the text of every comment line, and the `fn` items found from them.
//!
//! It is no parser: a function is the `fn NAME` tokens up to the first `{` outside parentheses
//! and brackets, and its end is the brace that balances that one. That is all tidy's length
//! rule needs, and it keeps the check free of any compilation.

/// What tidy needs of a token of code; everything else (operators, numbers, literals) is
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// An identifier or keyword, raw identifiers with their `r#`.
    Word(String),
    /// One of `{ } ( ) [ ] ;`.
    Punctuation(char),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// 1-based.
    pub line: usize,
    pub kind: TokenKind,
}

/// One line of a comment: the text after `//` (so a doc comment's starts with `/` or `!`), or
/// one line of a block comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentLine {
    /// 1-based.
    pub line: usize,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Scan {
    pub tokens: Vec<Token>,
    pub comments: Vec<CommentLine>,
}

/// A `fn` item with a body: from the line of its `fn` keyword to that of its closing brace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub first_line: usize,
    pub last_line: usize,
}

impl Function {
    /// Both ends included.
    pub fn line_count(&self) -> usize {
        self.last_line - self.first_line + 1
    }
}

pub fn scan(source: &str) -> Scan {
    let mut scanner = Scanner { chars: source.chars().collect(), at: 0, line: 1 };
    let mut scan = Scan::default();
    while let Some(c) = scanner.peek(0) {
        match c {
            '/' if scanner.peek(1) == Some('/') => {
                let line = scanner.line;
                scanner.advance(2);
                let text = scanner.take_while(|c| c != '\n');
                scan.comments.push(CommentLine { line, text });
            }
            '/' if scanner.peek(1) == Some('*') => scan.comments.extend(scanner.block_comment()),
            '"' => {
                scanner.advance(1);
                scanner.skip_quoted_string();
            }
            '\'' => scanner.skip_char_literal_or_lifetime(),
            c if c.is_alphabetic() || c == '_' => {
                let line = scanner.line;
                if let Some(word) = scanner.word_or_raw_string() {
                    scan.tokens.push(Token { line, kind: TokenKind::Word(word) });
                }
            }
            c if c.is_ascii_digit() => {
                // Numbers matter to no rule; taking the whole of `1_000u64` or `0x1f` keeps
                // their letters from being read as words.
                scanner.take_while(|c| c.is_alphanumeric() || c == '_');
            }
            '{' | '}' | '(' | ')' | '[' | ']' | ';' => {
                scan.tokens.push(Token { line: scanner.line, kind: TokenKind::Punctuation(c) });
                scanner.advance(1);
            }
            _ => scanner.advance(1),
        }
    }
    scan
}

struct Scanner {
    chars: Vec<char>,
    at: usize,
    /// The line of `chars[at]`.
    line: usize,
}

impl Scanner {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    /// Moves on by `count` characters (fewer at the end), counting the newlines passed.
    fn advance(&mut self, count: usize) {
        for _ in 0..count {
            match self.peek(0) {
                Some('\n') => self.line += 1,
                Some(_) => {}
                None => return,
            }
            self.at += 1;
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let mut taken = String::new();
        while let Some(c) = self.peek(0).filter(|&c| keep(c)) {
            taken.push(c);
            self.advance(1);
        }
        taken
    }

    /// From `/*` to its matching `*/` (block comments nest in Rust), one entry per line.
    fn block_comment(&mut self) -> Vec<CommentLine> {
        let mut lines = vec![CommentLine { line: self.line, text: String::new() }];
        self.advance(2);
        let mut depth = 1;
        while let Some(c) = self.peek(0) {
            if c == '*' && self.peek(1) == Some('/') {
                depth -= 1;
                self.advance(2);
                if depth == 0 {
                    break;
                }
            } else if c == '/' && self.peek(1) == Some('*') {
                depth += 1;
                self.advance(2);
            } else if c == '\n' {
                self.advance(1);
                lines.push(CommentLine { line: self.line, text: String::new() });
            } else {
                lines.last_mut().expect("starts with one line").text.push(c);
                self.advance(1);
            }
        }
        lines
    }

    /// Just past the opening `"`: up to and past the closing one, escapes skipped.
    fn skip_quoted_string(&mut self) {
        while let Some(c) = self.peek(0) {
            self.advance(if c == '\\' { 2 } else { 1 });
            if c == '"' {
                return;
            }
        }
    }

    /// Just past `r`, `br` or `cr`, at the first `#` or the `"`: up to and past the `"`
    /// followed by as many `#` as opened it.
    fn skip_raw_string(&mut self) {
        let hashes = self.take_while(|c| c == '#').len();
        self.advance(1);
        while let Some(c) = self.peek(0) {
            self.advance(1);
            if c == '"' && (0..hashes).all(|index| self.peek(index) == Some('#')) {
                self.advance(hashes);
                return;
            }
        }
    }

    /// `'x'`, `'\n'`, `'\u{7f}'` and `'\''` are char literals (a `b` before them was taken as
    /// a word already); `'a` and `'static` are lifetimes or labels, of which only the quote is
    /// skipped (the name is a harmless word).
    fn skip_char_literal_or_lifetime(&mut self) {
        if self.peek(1) == Some('\\') {
            // The quote, the backslash and the escaped character (a quote, perhaps), then on
            // to the closing quote.
            self.advance(3);
            self.take_while(|c| c != '\'');
            self.advance(1);
        } else if self.peek(2) == Some('\'') {
            self.advance(3);
        } else {
            self.advance(1);
        }
    }

    /// A word; or, when the word is a raw string's prefix, the raw string, skipped (`None`).
    fn word_or_raw_string(&mut self) -> Option<String> {
        let word = self.take_while(|c| c.is_alphanumeric() || c == '_');
        let prefix = matches!(word.as_str(), "r" | "br" | "cr");
        if prefix && matches!(self.peek(0), Some('"' | '#')) {
            let mut ahead = 0;
            while self.peek(ahead) == Some('#') {
                ahead += 1;
            }
            if self.peek(ahead) == Some('"') {
                self.skip_raw_string();
                return None;
            }
            if word == "r" && ahead == 1 {
                // A raw identifier such as `r#type`.
                self.advance(1);
                let name = self.take_while(|c| c.is_alphanumeric() || c == '_');
                return Some(format!("r#{name}"));
            }
        }
        Some(word)
    }
}

/// Every `fn` item with a body, nested ones included, in source order. A `fn` without a body
/// (a trait method's declaration) and `fn(..)` pointer types are not items with a body and are
/// left out; so is a function whose braces never balance (a source that does not compile).
pub fn functions(scan: &Scan) -> Vec<Function> {
    let tokens = &scan.tokens;
    let mut found = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        if token.kind != TokenKind::Word("fn".to_owned()) {
            continue;
        }
        let Some(TokenKind::Word(name)) = tokens.get(index + 1).map(|next| &next.kind) else {
            continue;
        };
        let Some(body) = body_start(&tokens[index + 2..]) else { continue };
        let Some(last_line) = closing_brace_line(&tokens[index + 2 + body..]) else { continue };
        found.push(Function { name: name.clone(), first_line: token.line, last_line });
    }
    found
}

/// The index of the body's `{` in the tokens after `fn NAME`: the first `{` outside
/// parentheses and brackets. `None` at a `;` there first (no body).
fn body_start(tokens: &[Token]) -> Option<usize> {
    let mut depth = 0_i32;
    for (index, token) in tokens.iter().enumerate() {
        match token.kind {
            TokenKind::Punctuation('(' | '[') => depth += 1,
            TokenKind::Punctuation(')' | ']') => depth -= 1,
            TokenKind::Punctuation('{') if depth <= 0 => return Some(index),
            TokenKind::Punctuation(';') if depth <= 0 => return None,
            _ => {}
        }
    }
    None
}

/// `tokens` start at an opening brace: the line of the brace that balances it.
fn closing_brace_line(tokens: &[Token]) -> Option<usize> {
    let mut depth = 0_usize;
    for token in tokens {
        match token.kind {
            TokenKind::Punctuation('{') => depth += 1,
            TokenKind::Punctuation('}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(token.line);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn braces(source: &str) -> String {
        scan(source)
            .tokens
            .iter()
            .filter_map(|token| match token.kind {
                TokenKind::Punctuation(c @ ('{' | '}')) => Some(c),
                _ => None,
            })
            .collect()
    }

    fn spans(source: &str) -> Vec<(String, usize, usize)> {
        functions(&scan(source))
            .into_iter()
            .map(|function| (function.name, function.first_line, function.last_line))
            .collect()
    }

    #[test]
    fn braces_inside_literals_and_comments_do_not_count() {
        assert_eq!(braces(r#"fn f() { let s = "{ \" }"; }"#), "{}");
        assert_eq!(braces(r##"fn f() { let s = r#"{ "} "#; }"##), "{}");
        assert_eq!(braces(r###"{ r##"a "# }"## }"###), "{}");
        assert_eq!(braces(r#"{ br"}" b"}" c"{" }"#), "{}");
        assert_eq!(braces("{ let c = '{'; let d = '}'; let e = b'{'; }"), "{}");
        assert_eq!(braces(r"{ let q = '\''; let b = '\\'; let u = '\u{7d}'; }"), "{}");
        assert_eq!(braces("{ // } a comment\n}"), "{}");
        assert_eq!(braces("{ /* } /* { nested */ } */ }"), "{}");
        assert_eq!(braces("{ \"a string\n over lines {\" }"), "{}");
    }

    #[test]
    fn lifetimes_and_labels_are_not_char_literals() {
        assert_eq!(braces("fn f<'a>(x: &'a str) -> &'a str { x }"), "{}");
        assert_eq!(braces("{ 'outer: loop { break 'outer; } }"), "{{}}");
        assert_eq!(braces("impl<'a, 'b> T for S<'a, 'b> { }"), "{}");
    }

    #[test]
    fn raw_identifiers_and_numbers_are_single_words() {
        let words: Vec<String> = scan("let r#type = 0x1f + 1e6 + r;")
            .tokens
            .into_iter()
            .filter_map(|token| match token.kind {
                TokenKind::Word(word) => Some(word),
                TokenKind::Punctuation(_) => None,
            })
            .collect();
        assert_eq!(words, ["let", "r#type", "r"]);
    }

    #[test]
    fn lines_are_counted_through_literals_and_comments() {
        let source = "let s = \"\n\n\";\n/* \n */ let r = r#\"\n\"#;\nfn f() {\n}\n";
        assert_eq!(spans(source), [("f".to_owned(), 7, 8)]);
    }

    #[test]
    fn comment_lines_keep_their_text_and_line() {
        let found = scan("let a = \"// not one\"; // one\n/// doc\n/* two\nthree */\n").comments;
        let lines: Vec<(usize, &str)> =
            found.iter().map(|comment| (comment.line, comment.text.as_str())).collect();
        assert_eq!(lines, [(1, " one"), (2, "/ doc"), (3, " two"), (4, "three ")]);
    }

    #[test]
    fn finds_nested_functions_and_skips_bodiless_ones() {
        let source = "trait T {\n    fn declared(&self);\n}\n\
                      fn outer(f: fn(u64) -> u64) -> impl Fn() {\n    fn inner() {\n    }\n    \
                      move || { f(1); }\n}\n";
        assert_eq!(spans(source), [("outer".to_owned(), 4, 8), ("inner".to_owned(), 5, 6)]);
    }

    #[test]
    fn where_clauses_and_array_lengths_come_before_the_body() {
        let source = "fn f<T>(x: [u8; 4]) -> T\nwhere\n    T: Default,\n{\n    T::default()\n}\n";
        assert_eq!(spans(source), [("f".to_owned(), 1, 6)]);
    }

    #[test]
    fn an_unbalanced_function_is_left_out() {
        assert_eq!(spans("fn broken() {\n  {\n"), []);
    }
}
