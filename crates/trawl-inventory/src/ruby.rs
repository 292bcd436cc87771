//! Installed Ruby gems: `specifications/*.gemspec` (and the default gems of a
//! Ruby installation, `specifications/default/*.gemspec`).
//!
//! RubyGems records every installed gem as a Ruby source file written by
//! `Gem::Specification#to_ruby` (Debian's `gem2deb` writes the same form):
//!
//! ```ruby
//! # -*- encoding: utf-8 -*-
//! # stub: rack 2.2.6.4 ruby lib
//!
//! Gem::Specification.new do |s|
//!   s.name = "rack".freeze
//!   s.version = "2.2.6.4"
//!   ...
//! ```
//!
//! The file is read, never run: a small Ruby lexer (comments, the string
//! literal forms `"..."`, `'...'`, `%q{...}`/`%Q(...)`/`%(...)`, numbers and
//! punctuation) finds the block variable of `Gem::Specification.new do |s|`
//! (or `{ |s|`) and the assignments `s.name = ...`, `s.version = ...` and
//! `s.platform = ...` whose value is a literal string, optionally
//! `.freeze`d, or `Gem::Version.new("...")`. As in Ruby, a later assignment
//! overrides an earlier one. When the body does not give a literal (older
//! hand-written forms computing the version), the `# stub:` line RubyGems
//! writes for its own fast loading (`# stub: <name> <version> <platform>
//! <paths>`) is used instead. Heredocs are not lexed (RubyGems never writes
//! them).
//!
//! purl: `pkg:gem/<name>@<version>`, with `?platform=<platform>` for a gem
//! built for one (`x86_64-linux`), as the purl spec has it.

use crate::lang::{FilePackage, FileRead, MetadataCataloger};
use crate::package::PackageKind;

/// Longest string literal kept; longer ones are lexed but not copied.
pub const MAX_LITERAL_LEN: usize = 1024;

/// How many lines from the start the `# stub:` line may be on (RubyGems
/// looks at the first line and the one after an encoding comment; Debian
/// puts a banner in front).
const STUB_LINES: usize = 8;

/// What a gemspec says about its gem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gemspec {
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: String,
    /// `platform`, when the gem is built for one (not `ruby`).
    pub platform: Option<String>,
    /// 1-based line of the `name` assignment (or of the stub line).
    pub line: usize,
}

/// Why a gemspec names no gem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GemspecError {
    /// The file is not UTF-8 (RubyGems writes `# -*- encoding: utf-8 -*-`).
    #[error("line {line}: not UTF-8")]
    Encoding {
        /// 1-based line of the first invalid byte.
        line: usize,
    },
    /// A string literal that never ends.
    #[error("line {line}: unterminated string literal")]
    Unterminated {
        /// 1-based line where the literal starts.
        line: usize,
    },
    /// No `Gem::Specification.new do |var|` block.
    #[error("no Gem::Specification.new block")]
    NoSpecification,
    /// The block never assigns the field a literal string, and no stub line
    /// gives it.
    #[error("no literal {field} (line {line})")]
    NotLiteral {
        /// `name` or `version`.
        field: &'static str,
        /// 1-based line of the last assignment, or 0 when there is none.
        line: usize,
    },
}

impl GemspecError {
    /// Whether the file is well-formed Ruby that names no gem at a version (a
    /// skipped entry), rather than damaged (an unreadable file).
    pub fn is_missing_field(&self) -> bool {
        matches!(
            self,
            GemspecError::NotLiteral { .. } | GemspecError::NoSpecification
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(Lit),
    /// `.`
    Dot,
    /// `::`
    Colons,
    /// `=` alone (not `==`, `=~`, `=>`).
    Assign,
    /// `|`
    Bar,
    /// `(`
    Open,
    /// `)`
    Close,
    /// `{`
    Brace,
    /// A statement end: newline, `;` or `}`.
    End,
    /// Anything else.
    Other,
}

/// A string literal's value, when it is a plain one of reasonable length.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lit {
    Plain(String),
    /// Interpolated, too long, or not UTF-8.
    Dynamic,
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
}

/// Longest identifier kept; longer ones are never `name`/`version`/... anyway.
const MAX_IDENT: usize = 64;

impl<'a> Lexer<'a> {
    fn new(src: &'a [u8]) -> Self {
        Lexer {
            src,
            pos: 0,
            line: 1,
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek(0)?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    fn at_line_start(&self) -> bool {
        self.pos == 0 || self.src[self.pos - 1] == b'\n'
    }

    /// The next token and the line it starts on.
    fn next_token(&mut self) -> Result<Option<(usize, Tok)>, GemspecError> {
        loop {
            let Some(b) = self.peek(0) else {
                return Ok(None);
            };
            let line = self.line;
            match b {
                b' ' | b'\t' | b'\r' => {
                    self.bump();
                }
                b'\\' if self.peek(1) == Some(b'\n') => {
                    self.bump();
                    self.bump();
                }
                // A closing brace ends a `{ |s| ... }` block's last statement.
                b'\n' | b';' | b'}' => {
                    self.bump();
                    return Ok(Some((line, Tok::End)));
                }
                b'#' => {
                    while self.peek(0).is_some_and(|c| c != b'\n') {
                        self.bump();
                    }
                }
                b'=' if self.at_line_start() && self.src[self.pos..].starts_with(b"=begin") => {
                    // An embedded document runs to a line starting `=end`.
                    loop {
                        while self.peek(0).is_some_and(|c| c != b'\n') {
                            self.bump();
                        }
                        if self.bump().is_none() {
                            return Ok(None);
                        }
                        if self.src[self.pos..].starts_with(b"=end") {
                            break;
                        }
                    }
                    while self.peek(0).is_some_and(|c| c != b'\n') {
                        self.bump();
                    }
                }
                b'"' | b'\'' | b'`' => {
                    self.bump();
                    let lit = self.string(b, b, b != b'\'', line)?;
                    return Ok(Some((line, Tok::Str(lit))));
                }
                b'%' if self.percent_literal().is_some() => {
                    let (skip, open, interpolates) =
                        self.percent_literal().unwrap_or((0, 0, false));
                    for _ in 0..skip {
                        self.bump();
                    }
                    let close = match open {
                        b'(' => b')',
                        b'[' => b']',
                        b'{' => b'}',
                        b'<' => b'>',
                        c => c,
                    };
                    let lit = self.string(open, close, interpolates, line)?;
                    return Ok(Some((line, Tok::Str(lit))));
                }
                b'=' => {
                    self.bump();
                    if matches!(self.peek(0), Some(b'=' | b'~' | b'>')) {
                        self.bump();
                        return Ok(Some((line, Tok::Other)));
                    }
                    return Ok(Some((line, Tok::Assign)));
                }
                b':' if self.peek(1) == Some(b':') => {
                    self.bump();
                    self.bump();
                    return Ok(Some((line, Tok::Colons)));
                }
                b'.' => {
                    self.bump();
                    return Ok(Some((line, Tok::Dot)));
                }
                b'|' => {
                    self.bump();
                    return Ok(Some((line, Tok::Bar)));
                }
                b'(' => {
                    self.bump();
                    return Ok(Some((line, Tok::Open)));
                }
                b')' => {
                    self.bump();
                    return Ok(Some((line, Tok::Close)));
                }
                b'{' => {
                    self.bump();
                    return Ok(Some((line, Tok::Brace)));
                }
                c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                    let start = self.pos;
                    while self
                        .peek(0)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80)
                    {
                        self.bump();
                    }
                    if matches!(self.peek(0), Some(b'?' | b'!')) && self.peek(1) != Some(b'=') {
                        self.bump();
                    }
                    let word = &self.src[start..self.pos];
                    let tok = match std::str::from_utf8(word) {
                        Ok(w) if w.len() <= MAX_IDENT => Tok::Ident(w.to_string()),
                        _ => Tok::Other,
                    };
                    return Ok(Some((line, tok)));
                }
                _ => {
                    self.bump();
                    return Ok(Some((line, Tok::Other)));
                }
            }
        }
    }

    /// At a `%`: the length of the literal's opening (`%q{` = 3), its opening
    /// delimiter and whether it interpolates, when it is a string literal.
    fn percent_literal(&self) -> Option<(usize, u8, bool)> {
        let next = self.peek(1)?;
        match next {
            b'q' | b'Q' | b'w' | b'W' | b'i' | b'I' => {
                let open = self.peek(2)?;
                (open.is_ascii_punctuation()).then_some((
                    3,
                    open,
                    matches!(next, b'Q' | b'W' | b'I'),
                ))
            }
            b'(' | b'[' | b'{' | b'<' | b'|' | b'!' | b'/' => Some((2, next, true)),
            _ => None,
        }
    }

    /// Reads a literal's body after its opening delimiter, through `close`
    /// (nested `open`/`close` pairs count, as in Ruby's `%q{a{b}}`).
    fn string(
        &mut self,
        open: u8,
        close: u8,
        interpolates: bool,
        line: usize,
    ) -> Result<Lit, GemspecError> {
        let mut value = Vec::new();
        let mut dynamic = false;
        let mut depth = 0usize;
        loop {
            let Some(c) = self.bump() else {
                return Err(GemspecError::Unterminated { line });
            };
            let piece: &[u8] = match c {
                b'\\' => {
                    let Some(e) = self.bump() else {
                        return Err(GemspecError::Unterminated { line });
                    };
                    if interpolates {
                        match e {
                            b'n' => b"\n",
                            b't' => b"\t",
                            b's' => b" ",
                            b'0' => b"\0",
                            b'e' => b"\x1b",
                            b'u' | b'x' => {
                                // Escapes of code points: not in a name or version.
                                dynamic = true;
                                b""
                            }
                            _ => &self.src[self.pos - 1..self.pos],
                        }
                    } else if e == close || e == b'\\' || e == open {
                        &self.src[self.pos - 1..self.pos]
                    } else {
                        &self.src[self.pos - 2..self.pos]
                    }
                }
                b'#' if interpolates && matches!(self.peek(0), Some(b'{' | b'@' | b'$')) => {
                    dynamic = true;
                    b"#"
                }
                c if c == close && depth == 0 => break,
                c if c == close => {
                    depth -= 1;
                    &self.src[self.pos - 1..self.pos]
                }
                c if c == open && open != close => {
                    depth += 1;
                    &self.src[self.pos - 1..self.pos]
                }
                _ => &self.src[self.pos - 1..self.pos],
            };
            if !dynamic {
                if value.len() + piece.len() > MAX_LITERAL_LEN {
                    dynamic = true;
                    value = Vec::new();
                } else {
                    value.extend_from_slice(piece);
                }
            }
        }
        if dynamic {
            return Ok(Lit::Dynamic);
        }
        Ok(String::from_utf8(value).map_or(Lit::Dynamic, Lit::Plain))
    }
}

/// The `# stub: <name> <version> <platform> <paths>` line, when present in the
/// first lines.
fn stub_line(src: &str) -> Option<(usize, Vec<&str>)> {
    src.lines().take(STUB_LINES).enumerate().find_map(|(i, l)| {
        let rest = l.strip_prefix("# stub: ")?;
        let fields: Vec<&str> = rest.split(' ').take(3).collect();
        (fields.len() >= 2 && fields.iter().all(|f| !f.is_empty())).then_some((i + 1, fields))
    })
}

/// An assignment's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Literal(String),
    Other,
}

/// Reads a gem's name, version and platform from a gemspec.
///
/// ```
/// use trawl_inventory::ruby::parse_gemspec;
/// let g = parse_gemspec(b"# -*- encoding: utf-8 -*-\n# stub: rake 13.0.6 ruby lib\n\n\
///     Gem::Specification.new do |s|\n  s.name = \"rake\".freeze\n  s.version = \"13.0.6\"\n\
///     s.summary = %q{s.version = \"evil\"}\nend\n").unwrap();
/// assert_eq!((g.name.as_str(), g.version.as_str(), g.line), ("rake", "13.0.6", 5));
/// ```
pub fn parse_gemspec(data: &[u8]) -> Result<Gemspec, GemspecError> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let src = std::str::from_utf8(data).map_err(|e| GemspecError::Encoding {
        line: 1 + data[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
    })?;
    let mut lexer = Lexer::new(data);
    // The last few tokens, enough for `Gem :: Specification . new do | s |`.
    let mut window: Vec<(usize, Tok)> = Vec::with_capacity(16);
    let mut var: Option<String> = None;
    let (mut name, mut version, mut platform) = (None, None, None);
    while let Some(tok) = lexer.next_token()? {
        window.push(tok);
        if window.len() > 12 {
            window.remove(0);
        }
        match &var {
            None => var = block_variable(&window),
            Some(v) => {
                let Some((line, field)) = attribute_assignment(&window, v) else {
                    continue;
                };
                let value = assigned_value(&mut lexer)?;
                match field {
                    "name" => name = Some((line, value)),
                    "version" => version = Some((line, value)),
                    _ => platform = Some(value),
                }
                window.clear();
            }
        }
    }
    let stub = stub_line(src);
    let pick = |field: &'static str,
                assigned: Option<(usize, Value)>,
                stub_index: usize|
     -> Result<(usize, String), GemspecError> {
        match assigned {
            Some((line, Value::Literal(s))) if !s.trim().is_empty() => Ok((line, s)),
            other => match &stub {
                Some((line, fields)) => Ok((*line, fields[stub_index].to_string())),
                None if var.is_none() => Err(GemspecError::NoSpecification),
                None => Err(GemspecError::NotLiteral {
                    field,
                    line: other.map_or(0, |(l, _)| l),
                }),
            },
        }
    };
    let (line, name) = pick("name", name, 0)?;
    let (_, version) = pick("version", version, 1)?;
    let platform = match platform {
        Some(Value::Literal(p)) => Some(p),
        _ => stub
            .as_ref()
            .and_then(|(_, f)| f.get(2).map(|p| p.to_string())),
    }
    .filter(|p| p != "ruby" && !p.is_empty());
    Ok(Gemspec {
        name,
        version,
        platform,
        line,
    })
}

fn ident(t: &Tok, want: &str) -> bool {
    matches!(t, Tok::Ident(w) if w == want)
}

/// `Gem :: Specification . new [( )] (do | {) | VAR |` at the end of `w`.
fn block_variable(w: &[(usize, Tok)]) -> Option<String> {
    let n = w.len();
    if n < 8 || w[n - 1].1 != Tok::Bar || w[n - 3].1 != Tok::Bar {
        return None;
    }
    let Tok::Ident(var) = &w[n - 2].1 else {
        return None;
    };
    let opener = &w[n - 4].1;
    if !(ident(opener, "do") || *opener == Tok::Brace) {
        return None;
    }
    let mut i = n - 5;
    if w[i].1 == Tok::Close && i > 0 && w[i - 1].1 == Tok::Open {
        i = i.checked_sub(2)?;
    }
    let head: [fn(&Tok) -> bool; 5] = [
        |t: &Tok| ident(t, "Gem"),
        |t: &Tok| *t == Tok::Colons,
        |t: &Tok| ident(t, "Specification"),
        |t: &Tok| *t == Tok::Dot,
        |t: &Tok| ident(t, "new"),
    ];
    let start = (i + 1).checked_sub(head.len())?;
    head.iter()
        .zip(&w[start..=i])
        .all(|(f, (_, t))| f(t))
        .then(|| var.clone())
}

/// `VAR . (name|version|platform) =` at the end of `w`, at a statement start.
fn attribute_assignment(w: &[(usize, Tok)], var: &str) -> Option<(usize, &'static str)> {
    let n = w.len();
    if n < 4 || w[n - 1].1 != Tok::Assign || w[n - 3].1 != Tok::Dot || !ident(&w[n - 4].1, var) {
        return None;
    }
    // `x.s.name =` is someone else's attribute.
    if n >= 5 && matches!(w[n - 5].1, Tok::Dot | Tok::Colons) {
        return None;
    }
    let field = match &w[n - 2].1 {
        Tok::Ident(f) if f == "name" => "name",
        Tok::Ident(f) if f == "version" => "version",
        Tok::Ident(f) if f == "platform" => "platform",
        _ => return None,
    };
    Some((w[n - 4].0, field))
}

/// The value after `=`: `"lit"[.freeze]` or `Gem::Version.new("lit"[.freeze])`,
/// up to the end of the statement.
fn assigned_value(lexer: &mut Lexer<'_>) -> Result<Value, GemspecError> {
    let mut toks = Vec::new();
    while let Some((_, t)) = lexer.next_token()? {
        if t == Tok::End {
            break;
        }
        // A literal value is a handful of tokens; skip the rest of longer ones.
        if toks.len() < 12 {
            toks.push(t);
        } else {
            toks.push(Tok::Other);
            toks.truncate(12);
        }
    }
    let strip_freeze = |t: &[Tok]| -> Option<String> {
        match t {
            [Tok::Str(Lit::Plain(s))] => Some(s.clone()),
            [Tok::Str(Lit::Plain(s)), Tok::Dot, Tok::Ident(f)] if f == "freeze" => Some(s.clone()),
            _ => None,
        }
    };
    if let Some(s) = strip_freeze(&toks) {
        return Ok(Value::Literal(s));
    }
    if let [
        Tok::Ident(g),
        Tok::Colons,
        Tok::Ident(v),
        Tok::Dot,
        Tok::Ident(new),
        Tok::Open,
        inner @ ..,
        Tok::Close,
    ] = &toks[..]
        && g == "Gem"
        && v == "Version"
        && new == "new"
        && let Some(s) = strip_freeze(inner)
    {
        return Ok(Value::Literal(s));
    }
    Ok(Value::Other)
}

/// Whether `path` is a gemspec RubyGems would load: directly in a
/// `specifications` directory, or in its `default` subdirectory.
///
/// ```
/// use trawl_inventory::ruby::is_gemspec_path;
/// assert!(is_gemspec_path("usr/local/bundle/specifications/rack-2.2.6.4.gemspec"));
/// assert!(is_gemspec_path("usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec"));
/// assert!(!is_gemspec_path("app/rack.gemspec"));
/// ```
pub fn is_gemspec_path(path: &str) -> bool {
    let mut comps = path.rsplit('/');
    let (Some(file), Some(dir)) = (comps.next(), comps.next()) else {
        return false;
    };
    if file.len() <= ".gemspec".len() || !file.ends_with(".gemspec") {
        return false;
    }
    dir == "specifications" || (dir == "default" && comps.next() == Some("specifications"))
}

/// Ruby gems in `specifications` directories.
#[derive(Debug, Clone, Copy, Default)]
pub struct GemCataloger;

/// Globs of the files [`GemCataloger`] reads.
pub const GLOBS: &[&str] = &[
    "**/specifications/*.gemspec",
    "**/specifications/default/*.gemspec",
];

impl MetadataCataloger for GemCataloger {
    fn name(&self) -> &'static str {
        "gem"
    }

    fn globs(&self) -> &'static [&'static str] {
        GLOBS
    }

    fn wants(&self, path: &str) -> bool {
        is_gemspec_path(path)
    }

    fn read(&self, _path: &str, data: &[u8]) -> Result<FileRead, String> {
        match parse_gemspec(data) {
            Ok(g) => Ok(FileRead {
                packages: vec![FilePackage {
                    kind: PackageKind::Gem,
                    purl: gem_purl(&g),
                    name: g.name,
                    version: g.version,
                    found_by: "gemspec",
                    arch: g.platform,
                    line: Some(g.line),
                }],
                skipped: Vec::new(),
            }),
            Err(e) if e.is_missing_field() => Ok(FileRead {
                packages: Vec::new(),
                skipped: vec![(0, format!("gemspec: {e}"))],
            }),
            Err(e) => Err(format!("gemspec: {e}")),
        }
    }
}

fn gem_purl(g: &Gemspec) -> String {
    let Ok(mut p) = packageurl::PackageUrl::new("gem", g.name.as_str()) else {
        return format!("pkg:gem/{}@{}", g.name, g.version);
    };
    let _ = p.with_version(g.version.as_str());
    if let Some(platform) = &g.platform {
        let _ = p.add_qualifier("platform", platform.as_str());
    }
    p.to_string()
}

crate::lang::metadata_cataloger!(GemCataloger);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Gemspec, GemspecError> {
        parse_gemspec(s.as_bytes())
    }

    #[test]
    fn rubygems_forms() {
        let g = parse(
            "Gem::Specification.new do |spec|\n  spec.name = %q{old-style}\n  \
             spec.version = Gem::Version.new(\"1.2.3\".freeze)\n  spec.platform = \"x86_64-linux\"\nend\n",
        )
        .unwrap();
        assert_eq!(
            g,
            Gemspec {
                name: "old-style".into(),
                version: "1.2.3".into(),
                platform: Some("x86_64-linux".into()),
                line: 2
            }
        );
        assert_eq!(
            gem_purl(&g),
            "pkg:gem/old-style@1.2.3?platform=x86_64-linux"
        );
        // One line, semicolons, braces; the last assignment wins.
        let g =
            parse("Gem::Specification.new { |s| s.name = 'x'; s.version = '1'; s.version = '2' }")
                .unwrap();
        assert_eq!((g.name.as_str(), g.version.as_str()), ("x", "2"));
        // Strings and comments do not fool it.
        let g = parse(
            "# s.name = \"c\"\nGem::Specification.new do |s|\n s.description = \"s.name = \\\"d\\\"\"\n\
             =begin\n s.name = \"e\"\n=end\n s.name = \"real\" # s.name = \"f\"\n s.version = \"1\"\n \
             s.authors = [\"a\"]\n t.s.name = \"g\"\nend\n",
        )
        .unwrap();
        assert_eq!(g.name, "real");
        assert_eq!(g.line, 7);
        // Comparison is not assignment.
        let g = parse(
            "Gem::Specification.new do |s|\n s.name = \"a\"\n s.version == \"9\"\n s.version = \"1\"\nend",
        )
        .unwrap();
        assert_eq!(g.version, "1");
    }

    #[test]
    fn stub_line_fallback() {
        let g = parse(
            "# -*- encoding: utf-8 -*-\n# stub: nokogiri 1.15.4 x86_64-linux lib\n\
             Gem::Specification.new do |s|\n  s.name = \"nokogiri\"\n  s.version = Nokogiri::VERSION\nend\n",
        )
        .unwrap();
        assert_eq!(
            (g.name.as_str(), g.version.as_str(), g.platform.as_deref()),
            ("nokogiri", "1.15.4", Some("x86_64-linux"))
        );
        assert_eq!(
            parse("Gem::Specification.new do |s|\n  s.name = \"a\"\n  s.version = V\nend\n"),
            Err(GemspecError::NotLiteral {
                field: "version",
                line: 3
            })
        );
        assert_eq!(parse("puts 1\n"), Err(GemspecError::NoSpecification));
    }

    #[test]
    fn damaged_files() {
        assert_eq!(
            parse("Gem::Specification.new do |s|\n s.name = \"abc"),
            Err(GemspecError::Unterminated { line: 2 })
        );
        assert_eq!(
            parse_gemspec(b"Gem::Specification.new do |s|\n\n s.name = \"\xff\""),
            Err(GemspecError::Encoding { line: 3 })
        );
        // An over-long or interpolated literal is not a literal.
        let long = format!(
            "Gem::Specification.new do |s|\n s.name = \"{}\"\n s.version = \"#{{x}}\"\nend",
            "n".repeat(MAX_LITERAL_LEN + 1)
        );
        assert_eq!(
            parse(&long),
            Err(GemspecError::NotLiteral {
                field: "name",
                line: 2
            })
        );
    }

    #[test]
    fn paths() {
        assert!(is_gemspec_path("specifications/a-1.gemspec"));
        assert!(!is_gemspec_path("specifications/x/a-1.gemspec"));
        assert!(!is_gemspec_path("default/a-1.gemspec"));
        assert!(!is_gemspec_path("specifications/.gemspec"));
    }
}
